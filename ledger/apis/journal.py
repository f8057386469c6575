"""The journal: entries with postings and, for settlements, their provenance (finance)."""

from rest_framework import serializers, viewsets
from rest_framework.response import Response

from ledger import selectors
from ledger.apis.common import IsFinance
from ledger.filters import JournalEntryFilter
from ledger.models import (
    JournalEntry,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
)


class PostingSerializer(serializers.ModelSerializer):
    account = serializers.CharField(source="account.key")

    class Meta:
        model = Posting
        fields = ["index", "account", "currency", "amount"]


class SettlementSerializer(serializers.ModelSerializer):
    """What decided a settlement's split: the provenance hashed into ``provenance_sha256``
    (amounts in accrual units, ``revenue_minor`` in minor units)."""

    class Meta:
        model = Settlement
        fields = [
            "generation",
            "attribution_run",
            "currency",
            "revenue_minor",
            "revenue",
            "pool",
            "platform",
            "residue",
            "policy",
            "score_count",
            "scores_sha256",
            "run_scores_sha256",
            "checkpoint_sha256",
            "manifest_sha256",
            "provenance_sha256",
        ]
        read_only_fields = fields


class SettlementTrackSerializer(serializers.ModelSerializer):
    isrc = serializers.CharField(source="recording.isrc", read_only=True)
    title = serializers.CharField(source="recording.title", read_only=True)

    class Meta:
        model = SettlementTrackLine
        fields = ["position", "recording", "isrc", "title", "weight", "amount"]
        read_only_fields = fields


class SettlementHolderSerializer(serializers.ModelSerializer):
    rights_holder_name = serializers.CharField(source="rights_holder.legal_name", read_only=True)

    class Meta:
        model = SettlementHolderLine
        fields = ["rights_holder", "rights_holder_name", "amount", "tracks", "reference_parts"]
        read_only_fields = fields


class SettlementDetailSerializer(SettlementSerializer):
    """The provenance with everything else the entry page shows: the prompt, the
    ownership snapshot, the paid tracks and the rights holders' lines."""

    prompt = serializers.CharField(source="generation.prompt", read_only=True)
    tracks = SettlementTrackSerializer(many=True, read_only=True)
    holders = SettlementHolderSerializer(many=True, read_only=True)

    class Meta(SettlementSerializer.Meta):
        fields = [
            *SettlementSerializer.Meta.fields,
            "prompt",
            "ownership_snapshot",
            "reference_lines",
            "tracks",
            "holders",
        ]
        read_only_fields = fields


class JournalEntrySerializer(serializers.ModelSerializer):
    postings = PostingSerializer(many=True, read_only=True)
    settlement = SettlementSerializer(
        read_only=True, allow_null=True, help_text="Settlements only: the split's provenance"
    )

    class Meta:
        model = JournalEntry
        fields = [
            "seq",
            "kind",
            "currency",
            "effective_at",
            "memo",
            "generation",
            "attribution_run",
            "checkpoint_sha256",
            "reverses",
            "payout_batch",
            "payout_line",
            "provenance_sha256",
            "settlement",
            "prev_hash",
            "hash",
            "postings",
        ]


class JournalEntryDetailSerializer(JournalEntrySerializer):
    """One journal entry as its page shows it: the settlement's paid tracks and rights
    holders, and the entry's and the provenance's hashes recomputed."""

    # The view passes context["detail"]: selectors.journal_entry_detail(entry=...).

    settlement = SettlementDetailSerializer(
        read_only=True, allow_null=True, help_text="Settlements only: the split's provenance"
    )
    reversed_by = serializers.PrimaryKeyRelatedField(
        many=True, read_only=True, help_text="Entries that reverse or correct this one"
    )
    hash_ok = serializers.SerializerMethodField(
        help_text="The hash recomputes from prev_hash, the content and the postings"
    )
    provenance_ok = serializers.SerializerMethodField(
        help_text="Settlements: the stored lines still hash to provenance_sha256 (else null)"
    )

    class Meta(JournalEntrySerializer.Meta):
        fields = [*JournalEntrySerializer.Meta.fields, "reversed_by", "hash_ok", "provenance_ok"]

    def get_hash_ok(self, entry) -> bool:
        return self.context["detail"].hash_ok

    def get_provenance_ok(self, entry) -> bool | None:
        return self.context["detail"].provenance_ok


class JournalEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The journal, in chain order, with postings (amounts in accrual units) and, for a
    settlement, its provenance (generation, attribution run, checkpoint, manifest and
    scores hashes, split policy); the detail adds the paid tracks and holders and
    recomputes the entry's and the provenance's hashes. Filter by kind, currency,
    generation, attribution run and booking date (``date_from``, ``date_to``: UTC days,
    included)."""

    serializer_class = JournalEntrySerializer
    permission_classes = [IsFinance]
    queryset = JournalEntry.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"
    filterset_class = JournalEntryFilter
    ordering_fields = ["seq"]

    def get_serializer_class(self):
        return JournalEntryDetailSerializer if self.action == "retrieve" else JournalEntrySerializer

    def get_queryset(self):
        entries = (
            JournalEntry.objects.select_related("settlement")
            .prefetch_related("postings__account")
            .order_by("seq")
        )
        if self.action == "retrieve":
            entries = entries.select_related("settlement__generation").prefetch_related(
                "settlement__tracks__recording", "settlement__holders__rights_holder"
            )
        return entries

    def retrieve(self, request, *args, **kwargs):
        entry = self.get_object()
        detail = selectors.journal_entry_detail(entry=entry)
        context = {**self.get_serializer_context(), "detail": detail}
        return Response(JournalEntryDetailSerializer(entry, context=context).data)
