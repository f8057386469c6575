"""Statement periods: list, create, close (finance)."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from ledger import selectors, services
from ledger.apis.common import IsFinance
from ledger.filters import StatementPeriodFilter
from ledger.models import StatementPeriod


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
