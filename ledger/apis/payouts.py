"""Payout batches: create, export, mark paid, fail a line (finance)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from ledger import selectors, services
from ledger.apis.common import XLSX, CSVRenderer, IsFinance, XLSXRenderer
from ledger.exports import CONTENT_TYPES
from ledger.models import PayoutBatch, PayoutLine, StatementPeriod
from ledger.money import minor_to_decimal
from ledger.views import file_response


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
