"""REST API of the ledger (under ``/ledger/api/``; token or session auth).

Finance (and superusers) read everything, create and close statement periods and run
payout batches; a rights holder's users read the balances and statements of the rights
holders they act for and generate those statements (another holder's is 404). Writes go
through ``ledger.services``, which audit them.
"""

import json

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import FINANCE, user_has_role
from ledger import selectors, services
from ledger.exports import CONTENT_TYPES, statement_csv, statement_pdf
from ledger.filters import AccountFilter, JournalEntryFilter, StatementPeriodFilter
from ledger.models import (
    Account,
    JournalEntry,
    PayoutBatch,
    PayoutLine,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
    Statement,
    StatementPeriod,
)
from ledger.money import accrual_to_text, minor_to_decimal
from ledger.views import file_response, statement_for

XLSX = CONTENT_TYPES["xlsx"]


MAX_ID = 2**63 - 1  # ids are bigint at most: larger input is a 400, not a database error


class IsFinance(permissions.BasePermission):
    message = "Only finance users may use this."

    def has_permission(self, request, view):
        return user_has_role(request.user, FINANCE)


class _FileRenderer(BaseRenderer):
    """Lets a client ask for a download's media type in ``Accept``; the file views return
    the bytes themselves, and errors come out as JSON text."""

    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return json.dumps(data).encode()


class CSVRenderer(_FileRenderer):
    media_type = "text/csv"
    format = "csv"


class PDFRenderer(_FileRenderer):
    media_type = "application/pdf"
    format = "pdf"


class XLSXRenderer(_FileRenderer):
    media_type = XLSX
    format = "xlsx"


# --- accounts and the journal ----------------------------------------------------------------


class AccountSerializer(serializers.ModelSerializer):
    balance = serializers.IntegerField(
        read_only=True, help_text="Accrual units, debit-positive (holder payables are negative)"
    )
    balance_display = serializers.SerializerMethodField(help_text="Exact, in major units")

    class Meta:
        model = Account
        fields = [
            "id",
            "key",
            "kind",
            "currency",
            "rights_holder",
            "balance",
            "balance_display",
            "created_at",
        ]

    def get_balance_display(self, account) -> str:
        return accrual_to_text(account.balance, account.currency)


class AccountViewSet(viewsets.ReadOnlyModelViewSet):
    """Every account with its balance (the sum of its postings). Finance only."""

    serializer_class = AccountSerializer
    permission_classes = [IsFinance]
    queryset = Account.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"
    filterset_class = AccountFilter
    ordering_fields = ["key", "balance"]

    def get_queryset(self):
        return selectors.accounts_with_balances()


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
        fields = ["rights_holder", "rights_holder_name", "amount", "tracks"]
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


# --- statements ------------------------------------------------------------------------------


class StatementSerializer(serializers.ModelSerializer):
    class Meta:
        model = Statement
        fields = [
            "id",
            "rights_holder",
            "period",
            "currency",
            "opening_balance",
            "closing_balance",
            "content",
            "content_sha256",
            "generated_at",
        ]


class StatementRowSerializer(serializers.Serializer):
    rights_holder = serializers.IntegerField(source="rights_holder.pk")
    period = serializers.IntegerField(source="period.pk")
    period_starts_at = serializers.DateTimeField(source="period.starts_at")
    period_ends_at = serializers.DateTimeField(source="period.ends_at")
    currency = serializers.CharField()
    statement = serializers.IntegerField(
        source="statement.pk",
        allow_null=True,
        help_text="The frozen statement's id; null until it is first generated",
    )


class StatementAvailableQuerySerializer(serializers.Serializer):
    rights_holder = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID, help_text="Default: those you act for"
    )
    period = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", required=False)

    def validate_currency(self, value: str) -> str:
        return value.upper()


class StatementGenerateSerializer(serializers.Serializer):
    rights_holder = serializers.IntegerField(min_value=1, max_value=MAX_ID)
    period = serializers.IntegerField(
        min_value=1, max_value=MAX_ID, help_text="A closed statement period"
    )
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", help_text="ISO 4217 code")

    def validate_currency(self, value: str) -> str:
        return value.upper()


class StatementViewSet(viewsets.ReadOnlyModelViewSet):
    """Frozen statements: finance reads all, a rights holder's users their holders' own
    (other users: an empty list, 404 for one). ``available/`` lists every statement
    there is to read (one per closed period and currency, frozen or not),
    ``generate/`` freezes one (or returns it as first frozen), ``csv/`` and ``pdf/``
    download one."""

    serializer_class = StatementSerializer
    filterset_fields = ["rights_holder", "period", "currency"]
    queryset = Statement.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Statement.objects.none()
        return (
            Statement.objects.filter(
                rights_holder__in=selectors.holders_visible_to(user=self.request.user)
            )
            .select_related("period")
            .order_by("-period__starts_at", "rights_holder_id")
        )

    @extend_schema(
        parameters=[StatementAvailableQuerySerializer],
        responses=StatementRowSerializer(many=True),
    )
    @action(detail=False, methods=["get"], filter_backends=[])
    def available(self, request, **kwargs):
        """One row per closed period and currency of the rights holders you act for (or
        of ``?rights_holder=``: finance any, others one they act for; else 404), newest
        period first, with the frozen statement's id or null; ``period`` and ``currency``
        narrow the list. A null statement is generated by ``POST generate/``."""
        params = StatementAvailableQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        holder_id = params.validated_data.get("rights_holder")
        if holder_id is None:
            holders = selectors.rights_holders_for_user(user=request.user)
        else:
            holders = selectors.holders_visible_to(user=request.user).filter(pk=holder_id)
            if not holders.exists():
                raise NotFound("No such rights holder.")
        rows = selectors.statement_rows_for(
            holders=holders,
            period_id=params.validated_data.get("period"),
            currency=params.validated_data.get("currency"),
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(StatementRowSerializer(page, many=True).data)

    @extend_schema(request=StatementGenerateSerializer, responses=StatementSerializer)
    @action(detail=False, methods=["post"], filter_backends=[])
    def generate(self, request, **kwargs):
        """The statement of a rights holder for a closed period in a currency, frozen the
        first time (as opening it on its page does) and identical every time after: the
        same service, the same rule (a holder you do not act for is 404; finance: any).
        404 also for a period that is not closed or a currency the holder has no account
        in; 400 if the ledger no longer yields the frozen content."""
        params = StatementGenerateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        statement = statement_for(
            user=request.user,
            holder_id=params.validated_data["rights_holder"],
            period_id=params.validated_data["period"],
            currency=params.validated_data["currency"],
        )
        return Response(StatementSerializer(statement).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def csv(self, request, pk=None, **kwargs):
        statement = self.get_object()
        return file_response(
            statement_csv(statement=statement),
            content_type=CONTENT_TYPES["csv"],
            filename=f"statement-{statement.pk}.csv",
        )

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None, **kwargs):
        statement = self.get_object()
        return file_response(
            statement_pdf(statement=statement),
            content_type=CONTENT_TYPES["pdf"],
            filename=f"statement-{statement.pk}.pdf",
        )


# --- balances --------------------------------------------------------------------------------


class BalanceRowSerializer(serializers.Serializer):
    """One holder's payable account (``selectors.holder_balances``)."""

    rights_holder = serializers.IntegerField(source="rights_holder_id")
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="Accrual units the platform owes the holder")
    balance_display = serializers.SerializerMethodField(help_text="Exact, in major units")

    def get_balance_display(self, account) -> str:
        return accrual_to_text(account.balance, account.currency)


class BalancesSerializer(serializers.Serializer):
    """A page of balances: the standard page (``count``, ``next``, ``previous``,
    ``results``) plus the ``currency`` asked for."""

    count = serializers.IntegerField(help_text="Rows on all pages together")
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    currency = serializers.CharField()
    results = BalanceRowSerializer(many=True)


class BalanceApi(GenericAPIView):
    """What the platform owes each visible rights holder in ``?currency=`` (default USD),
    by rights holder id, 50 a page (``?page=``): finance sees every holder with an account
    in the currency, a rights holder's users the holders they act for."""

    serializer_class = BalanceRowSerializer
    filter_backends: list = []
    queryset = Account.objects.none()  # for the schema; get serves requests

    @extend_schema(
        parameters=[
            OpenApiParameter("currency", str, description="ISO 4217, default USD"),
            OpenApiParameter("page", int, description="Page number, from 1"),
        ],
        responses=BalancesSerializer,
    )
    def get(self, request):
        currency = request.query_params.get("currency", "USD").upper()
        accounts = selectors.holder_balances(
            currency=currency, holders=selectors.holders_visible_to(user=request.user)
        )
        page = self.paginate_queryset(accounts)
        paged = self.get_paginated_response(self.get_serializer(page, many=True).data).data
        return Response(
            {
                "count": paged["count"],
                "next": paged["next"],
                "previous": paged["previous"],
                "currency": currency,
                "results": paged["results"],
            }
        )


# --- verification ----------------------------------------------------------------------------


class VerifyInputSerializer(serializers.Serializer):
    expect = serializers.ListField(
        child=serializers.RegexField(r"^\d{1,18}:[0-9A-Fa-f]{64}$", max_length=83),
        required=False,
        default=list,
        max_length=1000,
        help_text="SEQ:HASH heads recorded earlier: each must still be in the chain",
    )

    def validate_expect(self, value: list[str]) -> dict[int, str]:
        return {int(seq): digest.lower() for seq, _, digest in (v.partition(":") for v in value)}


class VerifyReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    entries_checked = serializers.IntegerField()
    postings_checked = serializers.IntegerField()
    settlements_checked = serializers.IntegerField()
    first_break = serializers.CharField(allow_null=True, help_text="Null when the ledger is OK")
    break_seq = serializers.IntegerField(allow_null=True)
    head_seq = serializers.IntegerField()
    head_hash = serializers.CharField(help_text="With head_seq: an anchor for a later run")
    trial_balance = serializers.DictField(
        child=serializers.IntegerField(), help_text="Per currency, accrual units (must be 0)"
    )


class VerifyApi(APIView):
    """Run ``verify_ledger`` (hash chain, balances, provenance) and record the run in the
    audit trail, as the Verify page does. Finance only."""

    permission_classes = [IsFinance]

    @extend_schema(request=VerifyInputSerializer, responses=VerifyReportSerializer)
    def post(self, request):
        params = VerifyInputSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        report = services.ledger_verification_run(
            actor=request.user, anchors=params.validated_data["expect"]
        )
        return Response(VerifyReportSerializer(report).data)


# --- statement periods -----------------------------------------------------------------------


class StatementPeriodSerializer(serializers.ModelSerializer):
    state = serializers.SerializerMethodField(
        help_text="future, current, ended (over but open: it may be closed) or closed"
    )

    class Meta:
        model = StatementPeriod
        fields = ["id", "starts_at", "ends_at", "closed_at", "state", "created_at"]

    def get_state(self, period) -> str:
        return selectors.statement_period_state(period=period, now=timezone.now())


class StatementPeriodCreateSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField(help_text="Included; without a time zone: UTC")
    ends_at = serializers.DateTimeField(help_text="Excluded: the next period starts here")


class StatementPeriodViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Statement periods (finance only), newest first: create one (it must not overlap
    another), close one that has ended (no entry can be dated in it after that, and its
    statements can be generated). Both are audited; refusals are 400 with the reason."""

    serializer_class = StatementPeriodSerializer
    permission_classes = [IsFinance]
    queryset = StatementPeriod.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"
    filterset_class = StatementPeriodFilter
    ordering_fields = ["starts_at"]

    def get_queryset(self):
        return selectors.statement_periods()

    @extend_schema(
        request=StatementPeriodCreateSerializer, responses={201: StatementPeriodSerializer}
    )
    def create(self, request, *args, **kwargs):
        params = StatementPeriodCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        period = services.statement_period_create(**params.validated_data, actor=request.user)
        return Response(self.get_serializer(period).data, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=StatementPeriodSerializer)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None, **kwargs):
        """Close a period that has ended (400 if it has not, or is already closed)."""
        period = services.statement_period_close(period=self.get_object(), actor=request.user)
        return Response(self.get_serializer(period).data)


# --- payout batches --------------------------------------------------------------------------


class PayoutLineSerializer(serializers.ModelSerializer):
    rights_holder_name = serializers.CharField(source="rights_holder.legal_name", read_only=True)
    amount = serializers.SerializerMethodField(help_text="Exact, in major units")

    class Meta:
        model = PayoutLine
        fields = [
            "id",
            "rights_holder",
            "rights_holder_name",
            "amount_minor",
            "amount",
            "status",
            "failure_reason",
        ]

    def get_amount(self, line) -> str:
        return str(minor_to_decimal(line.amount_minor, line.batch.currency))


class PayoutBatchSerializer(serializers.ModelSerializer):
    lines = PayoutLineSerializer(many=True, read_only=True)
    total_minor = serializers.IntegerField(read_only=True)
    entries = serializers.SerializerMethodField(
        help_text="Journal entries booked for the batch: the payout, then failed lines"
    )

    class Meta:
        model = PayoutBatch
        fields = [
            "id",
            "currency",
            "threshold_minor",
            "period",
            "status",
            "created_by",
            "created_at",
            "paid_at",
            "total_minor",
            "lines",
            "entries",
        ]

    def get_entries(self, batch) -> list[int]:
        return [entry.seq for entry in batch.entries.all()]


class PayoutBatchCreateSerializer(serializers.Serializer):
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", help_text="ISO 4217 code")
    threshold_minor = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Minimum payout in minor units; default: the configured minimum",
    )
    period = serializers.PrimaryKeyRelatedField(
        queryset=StatementPeriod.objects.all(),
        required=False,
        allow_null=True,
        help_text="A closed period: pay only what was earned by its end",
    )

    def validate_currency(self, value: str) -> str:
        return value.upper()


class PayoutLineFailSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Id of a line of this batch")
    reason = serializers.CharField(max_length=500)


class PayoutBatchViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Payout batches (finance only): create a draft, export the payment file (audited),
    mark it paid, fail a line that did not arrive."""

    serializer_class = PayoutBatchSerializer
    permission_classes = [IsFinance]
    queryset = PayoutBatch.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"
    filterset_fields = ["currency", "status", "period"]
    ordering_fields = ["created_at", "id"]

    def get_queryset(self):
        return selectors.payout_batches().prefetch_related(
            "lines__rights_holder", "lines__batch", "entries"
        )

    def _respond(self, batch: PayoutBatch, code: int = status.HTTP_200_OK) -> Response:
        return Response(self.get_serializer(self.get_queryset().get(pk=batch.pk)).data, code)

    @extend_schema(request=PayoutBatchCreateSerializer, responses={201: PayoutBatchSerializer})
    def create(self, request, *args, **kwargs):
        params = PayoutBatchCreateSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        batch = services.payout_batch_create(**params.validated_data, actor=request.user)
        return self._respond(batch, status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("fmt", str, enum=["csv", "xlsx"], default="csv")],
        responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, XLSX): OpenApiTypes.BINARY},
    )
    @action(
        detail=True, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer, XLSXRenderer]
    )
    def export(self, request, pk=None, **kwargs):
        """The payment file, ``?fmt=csv`` (default) or ``xlsx``; every export is audited."""
        batch = self.get_object()
        fmt = request.query_params.get("fmt", "csv")
        data = services.payout_batch_file_export(batch=batch, fmt=fmt, actor=request.user)
        return file_response(
            data, content_type=CONTENT_TYPES[fmt], filename=f"payout-batch-{batch.pk}.{fmt}"
        )

    @extend_schema(request=None, responses=PayoutBatchSerializer)
    @action(detail=True, methods=["post"], url_path="mark-paid")
    def mark_paid(self, request, pk=None, **kwargs):
        """Book the batch as paid (one journal entry)."""
        entry = services.payout_batch_mark_paid(batch=self.get_object(), actor=request.user)
        return self._respond(entry.payout_batch)

    @extend_schema(request=PayoutLineFailSerializer, responses=PayoutBatchSerializer)
    @action(detail=True, methods=["post"], url_path="fail-line")
    def fail_line(self, request, pk=None, **kwargs):
        """A line whose payment did not arrive: a paid line is reversed (its amount
        carries forward), a draft line is excluded."""
        batch = self.get_object()
        params = PayoutLineFailSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        line = get_object_or_404(PayoutLine, pk=params.validated_data["line"], batch=batch)
        services.payout_line_fail(
            line=line, reason=params.validated_data["reason"], actor=request.user
        )
        return self._respond(batch)
