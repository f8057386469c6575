"""One generation with what it paid (``GET /attribution/api/generations/<id>/``): the
generation as the generations API lists it, plus the tracks its settlement paid (a rights
holder's user: only the holders they act for) and their total. Scoping is the pages'
(``attribution.selectors.generations_for_user``)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.generics import RetrieveAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution.apis import GenerationSerializer
from attribution.models import Generation
from attribution.selectors import generations_for_user
from ledger.selectors.evidence import generation_evidence
from ledger.selectors.generations import GenerationDetail, generation_detail


class AttributedTrackSerializer(serializers.Serializer):
    rank = serializers.IntegerField(help_text="1 = the highest score in the training set")
    position = serializers.IntegerField(help_text="Position in the model's training set")
    isrc = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField(help_text="Attribution score (Eq. 2): loss increase")
    pool_share_percent = serializers.DecimalField(
        max_digits=7, decimal_places=2, help_text="The track's share of the royalty pool"
    )
    amount = serializers.CharField(help_text="Exact amount in major units (a decimal string)")
    amount_accrual = serializers.IntegerField(help_text="The same in ledger accrual units")
    rights_holder = serializers.CharField(help_text="The holder paid (holders' view only)")
    ownership_percent = serializers.DecimalField(
        max_digits=7, decimal_places=4, allow_null=True, help_text="The holder's share"
    )


class AuditHolderSerializer(serializers.Serializer):
    rights_holder_id = serializers.IntegerField()
    rights_holder = serializers.CharField()
    paid = serializers.DecimalField(max_digits=30, decimal_places=12, coerce_to_string=True)
    audit = serializers.DecimalField(
        max_digits=30,
        decimal_places=12,
        coerce_to_string=True,
        help_text="What the exact method's scores would have paid (never booked)",
    )


class AuditSerializer(serializers.Serializer):
    audit_run = serializers.IntegerField(source="audit_run.pk")
    settlement_run = serializers.IntegerField(source="settlement_run.pk")
    spearman = serializers.FloatField()
    top10_overlap = serializers.IntegerField()
    holder_l1 = serializers.FloatField()
    holders = AuditHolderSerializer(many=True)


class MethodAmountSerializer(serializers.Serializer):
    run = serializers.IntegerField(source="run_id")
    method = serializers.CharField()
    amount = serializers.CharField(help_text="What this run's scores would have paid (major units)")
    amount_accrual = serializers.IntegerField(help_text="The same in ledger accrual units")


class MethodHolderSerializer(serializers.Serializer):
    rights_holder_id = serializers.IntegerField()
    rights_holder = serializers.CharField()
    paid = serializers.CharField(help_text="What the settlement booked (major units)")
    paid_accrual = serializers.IntegerField()
    amounts = MethodAmountSerializer(many=True, help_text="One per run, in the runs' order")


class MethodColumnSerializer(serializers.Serializer):
    run = serializers.IntegerField(source="run.pk")
    method = serializers.CharField(source="run.method")
    purpose = serializers.CharField(source="run.purpose")
    label = serializers.CharField()
    paying = serializers.BooleanField(help_text="The run whose scores paid the settlement")
    total = serializers.CharField(help_text="The column's sum over the holders shown")
    total_accrual = serializers.IntegerField()
    spearman = serializers.FloatField(allow_null=True, help_text="Against the paying run")
    top10_overlap = serializers.IntegerField(allow_null=True)
    holder_l1 = serializers.FloatField(allow_null=True)


class MethodPaymentsSerializer(serializers.Serializer):
    settlement_entry = serializers.IntegerField(source="settlement.journal_entry_id")
    currency = serializers.CharField()
    runs = MethodColumnSerializer(source="columns", many=True)
    holders = MethodHolderSerializer(source="rows", many=True)
    paid_total = serializers.CharField()
    paid_total_accrual = serializers.IntegerField()


class ReferenceSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    isrc = serializers.CharField()
    title = serializers.CharField()
    noise_level = serializers.FloatField(allow_null=True)
    share_percent = serializers.DecimalField(max_digits=7, decimal_places=4)
    licence = serializers.IntegerField()
    paid = serializers.BooleanField(allow_null=True)
    reason = serializers.CharField()
    amount = serializers.CharField(allow_null=True)
    amount_accrual = serializers.IntegerField(allow_null=True)


class GenerationDetailSerializer(GenerationSerializer):
    references = serializers.SerializerMethodField()
    attributed_tracks = serializers.SerializerMethodField()
    attributed_total = serializers.SerializerMethodField()
    attribution_method = serializers.SerializerMethodField()
    audit = serializers.SerializerMethodField()
    method_payments = serializers.SerializerMethodField()

    class Meta(GenerationSerializer.Meta):
        fields = [
            *GenerationSerializer.Meta.fields,
            "references",
            "attributed_tracks",
            "attributed_total",
            "attribution_method",
            "audit",
            "method_payments",
        ]

    def _detail(self, generation: Generation) -> GenerationDetail:
        cache = self.context.setdefault("_details", {})
        if generation.pk not in cache:
            cache[generation.pk] = generation_detail(
                generation=generation, user=self.context["request"].user
            )
        return cache[generation.pk]

    @extend_schema_field(ReferenceSerializer(many=True))
    def get_references(self, generation: Generation) -> list[dict]:
        """The catalog recordings the generation was conditioned on (reference use), paid
        their licence's share of the pool first: terms, whether still licensed at
        settlement, and the amount (a rights holder's user: its own part; only references
        its holders own)."""
        return ReferenceSerializer(self._detail(generation).references, many=True).data

    @extend_schema_field(AttributedTrackSerializer(many=True))
    def get_attributed_tracks(self, generation: Generation) -> list[dict]:
        """From the settlement: for a rights holder's user, the tracks that paid the
        holders they act for (one row per track and holder, with the holder's ownership
        share and amount); for admins and finance, every paid track and its amount."""
        return AttributedTrackSerializer(self._detail(generation).rows, many=True).data

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_attributed_total(self, generation: Generation) -> str | None:
        """What ``attributed_tracks`` add up to (major units), null before settlement."""
        total = self._detail(generation).total
        return None if total is None else str(total)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_attribution_method(self, generation: Generation) -> str | None:
        """The method whose scores are shown and paid (``unlearning``, ``first_order``)."""
        run = self._detail(generation).run
        return None if run is None else run.method

    @extend_schema_field(AuditSerializer(allow_null=True))
    def get_audit(self, generation: Generation) -> dict | None:
        """The exact method's audit beside the scores that paid, once it has succeeded."""
        audit = self._detail(generation).audit
        return None if audit is None else AuditSerializer(audit).data

    @extend_schema_field(MethodPaymentsSerializer(allow_null=True))
    def get_method_payments(self, generation: Generation) -> dict | None:
        """What each succeeded run's method would have paid beside what was paid (null
        before settlement and until a run besides the paying one has succeeded; a rights
        holder's user: only the holders they act for)."""
        methods = self._detail(generation).methods
        return None if methods is None else MethodPaymentsSerializer(methods).data


class GenerationDetailApi(RetrieveAPIView):
    """A generation with its attributed tracks (a rights holder: only its own)."""

    serializer_class = GenerationDetailSerializer

    def get_queryset(self):
        return generations_for_user(self.request.user)


class GenerationEvidenceApi(APIView):
    """The generation's attribution evidence (``ledger.selectors.evidence``), the same file
    as the page's download: recompute its split with ``python -m ledger.evidence``. A
    rights holder's user gets their own lines only; 404 before the generation is settled."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        generation = get_object_or_404(generations_for_user(request.user), pk=pk)
        evidence = generation_evidence(generation=generation, user=request.user)
        if evidence is None:
            raise NotFound("This generation has not been settled: there is no split to show.")
        return Response(evidence)
