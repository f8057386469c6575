"""Opt-outs: catalog admins, and a rights holder's own users, may request and withdraw
them."""

from datetime import date

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from catalog.apis.common import FILTER_BACKENDS, may_act_for_holder
from catalog.models import OptOut, Recording, RightsHolder
from catalog.selectors import opt_outs_visible_to
from catalog.services import opt_out_create, opt_out_withdraw


class OptOutOutputSerializer(serializers.ModelSerializer):
    rights_holder_name = serializers.CharField(source="rights_holder.legal_name")
    isrc = serializers.CharField(source="recording.isrc", default=None)
    scope = serializers.CharField()

    class Meta:
        model = OptOut
        fields = [
            "id",
            "rights_holder",
            "rights_holder_name",
            "recording",
            "isrc",
            "scope",
            "effective_from",
            "reason",
            "created_at",
            "withdrawn_at",
        ]


class OptOutInputSerializer(serializers.Serializer):
    rights_holder = serializers.PrimaryKeyRelatedField(queryset=RightsHolder.objects.all())
    recording = serializers.PrimaryKeyRelatedField(
        queryset=Recording.objects.all(), required=False, allow_null=True
    )
    effective_from = serializers.DateField(required=False)
    reason = serializers.CharField(required=False, allow_blank=True)


class OptOutFilter(filters.FilterSet):
    active = filters.BooleanFilter(field_name="withdrawn_at", lookup_expr="isnull")

    class Meta:
        model = OptOut
        fields = ["rights_holder", "recording"]


class OptOutViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Opt-outs: catalog admins, and a rights holder's own users, may request them."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = OptOutOutputSerializer
    filter_backends = FILTER_BACKENDS
    filterset_class = OptOutFilter
    ordering_fields = ["effective_from", "created_at"]

    def get_queryset(self):
        return opt_outs_visible_to(self.request.user)

    @extend_schema(request=OptOutInputSerializer, responses=OptOutOutputSerializer)
    def create(self, request, *args, **kwargs):
        data = OptOutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        holder = data.validated_data["rights_holder"]
        if not may_act_for_holder(request.user, holder):
            return Response(
                {"detail": "You may only opt out recordings of rights holders you act for."},
                status=status.HTTP_403_FORBIDDEN,
            )
        opt_out = opt_out_create(
            rights_holder=holder,
            recording=data.validated_data.get("recording"),
            effective_from=data.validated_data.get("effective_from") or date.today(),
            reason=data.validated_data.get("reason", ""),
            actor=request.user,
        )
        return Response(OptOutOutputSerializer(opt_out).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=OptOutOutputSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None, **kwargs):
        opt_out = self.get_object()
        if not may_act_for_holder(request.user, opt_out.rights_holder):
            return Response(
                {"detail": "You may only withdraw opt-outs of rights holders you act for."},
                status=status.HTTP_403_FORBIDDEN,
            )
        opt_out = opt_out_withdraw(opt_out=opt_out, actor=request.user)
        return Response(OptOutOutputSerializer(opt_out).data)
