"""REST API of the ledger (under ``/ledger/api/``; token or session auth).

Finance (and superusers) read everything and run payout batches; a rights holder's users
read the balances and statements of the rights holders they act for (another holder's
statement is 404). Writes go through ``ledger.services``, which audit them.
"""

import json

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core.roles import FINANCE, user_has_role
from ledger import selectors, services
from ledger.exports import statement_csv, statement_pdf
from ledger.filters import AccountFilter, JournalEntryFilter
from ledger.models import (
    Account,
    JournalEntry,
    PayoutBatch,
    PayoutLine,
    Posting,
    Statement,
    StatementPeriod,
)
from ledger.money import accrual_to_text, minor_to_decimal
from ledger.views import file_response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class IsFinance(permissions.BasePermission):
    message = "Only finance may read the journal."

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


class JournalEntrySerializer(serializers.ModelSerializer):
    postings = PostingSerializer(many=True, read_only=True)

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
            "prev_hash",
            "hash",
            "postings",
        ]


class JournalEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """The journal, in chain order, with postings (amounts in accrual units). Filter by
    kind, currency, generation, attribution run and booking date (``date_from``,
    ``date_to``: UTC days, included)."""

    serializer_class = JournalEntrySerializer
    permission_classes = [IsFinance]
    queryset = JournalEntry.objects.none()  # for the schema; get_queryset serves requests
    lookup_value_regex = r"\d+"
    filterset_class = JournalEntryFilter
    ordering_fields = ["seq"]

    def get_queryset(self):
        return JournalEntry.objects.prefetch_related("postings__account").order_by("seq")


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


class StatementViewSet(viewsets.ReadOnlyModelViewSet):
    """Frozen statements: finance reads all, a rights holder's users their holders' own
    (other roles: 403).
        ``csv/`` and ``pdf/`` download one."""

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

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, CSVRenderer])
    def csv(self, request, pk=None, **kwargs):
        statement = self.get_object()
        return file_response(
            statement_csv(statement=statement),
            content_type="text/csv; charset=utf-8",
            filename=f"statement-{statement.pk}.csv",
        )

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], renderer_classes=[JSONRenderer, PDFRenderer])
    def pdf(self, request, pk=None, **kwargs):
        statement = self.get_object()
        return file_response(
            statement_pdf(statement=statement),
            content_type="application/pdf",
            filename=f"statement-{statement.pk}.pdf",
        )


# --- balances --------------------------------------------------------------------------------


class BalanceRowSerializer(serializers.Serializer):
    rights_holder = serializers.IntegerField()
    currency = serializers.CharField()
    balance = serializers.IntegerField(help_text="Accrual units")
    balance_display = serializers.CharField()


class BalancesSerializer(serializers.Serializer):
    currency = serializers.CharField()
    results = BalanceRowSerializer(many=True)


class BalanceApi(APIView):
    """What the platform owes each visible rights holder in ``?currency=`` (default USD)."""

    @extend_schema(
        parameters=[OpenApiParameter("currency", str, description="ISO 4217, default USD")],
        responses=BalancesSerializer,
    )
    def get(self, request):
        currency = request.query_params.get("currency", "USD").upper()
        visible = set(selectors.holders_visible_to(user=request.user).values_list("pk", flat=True))
        balances = selectors.holder_payable_balances(currency=currency)
        rows = [
            {
                "rights_holder": holder_id,
                "currency": currency,
                "balance": amount,
                "balance_display": accrual_to_text(amount, currency),
            }
            for holder_id, amount in sorted(balances.items())
            if holder_id in visible
        ]
        return Response({"currency": currency, "results": rows})


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
        content_type = "text/csv; charset=utf-8" if fmt == "csv" else XLSX
        return file_response(
            data, content_type=content_type, filename=f"payout-batch-{batch.pk}.{fmt}"
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
