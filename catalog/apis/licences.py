"""Reference licences: catalog admins, and a rights holder's own users, may grant and
withdraw them."""

from datetime import date

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from catalog.apis.common import FILTER_BACKENDS, may_act_for_holder
from catalog.models import Recording, ReferenceLicence, RightsHolder
from catalog.selectors import reference_licences_visible_to, reference_share_default
from catalog.services import reference_licence_grant, reference_licence_withdraw


class ReferenceLicenceOutputSerializer(serializers.ModelSerializer):
    rights_holder_name = serializers.CharField(source="rights_holder.legal_name")
    isrc = serializers.CharField(source="recording.isrc", default=None)
    scope = serializers.CharField()
    pool_share_percent = serializers.DecimalField(max_digits=7, decimal_places=4)

    class Meta:
        model = ReferenceLicence
        fields = [
            "id",
            "rights_holder",
            "rights_holder_name",
            "recording",
            "isrc",
            "scope",
            "permits_reference_use",
            "pool_share_percent",
            "valid_from",
            "valid_until",
            "created_at",
            "withdrawn_at",
        ]


class ReferenceLicenceInputSerializer(serializers.Serializer):
    rights_holder = serializers.PrimaryKeyRelatedField(queryset=RightsHolder.objects.all())
    recording = serializers.PrimaryKeyRelatedField(
        queryset=Recording.objects.all(), required=False, allow_null=True
    )
    permits_reference_use = serializers.BooleanField(required=False, default=True)
    pool_share_percent = serializers.DecimalField(
        max_digits=7,
        decimal_places=4,
        required=False,
        help_text="Default: CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT",
    )
    valid_from = serializers.DateField(required=False)
    valid_until = serializers.DateField(required=False, allow_null=True)


class ReferenceLicenceFilter(filters.FilterSet):
    active = filters.BooleanFilter(field_name="withdrawn_at", lookup_expr="isnull")

    class Meta:
        model = ReferenceLicence
        fields = ["rights_holder", "recording", "permits_reference_use"]


class ReferenceLicenceViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Reference licences: catalog admins, and a rights holder's own users, may grant them."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = ReferenceLicenceOutputSerializer
    filter_backends = FILTER_BACKENDS
    filterset_class = ReferenceLicenceFilter
    ordering_fields = ["valid_from", "created_at"]

    def get_queryset(self):
        return reference_licences_visible_to(self.request.user)

    @extend_schema(
        request=ReferenceLicenceInputSerializer, responses=ReferenceLicenceOutputSerializer
    )
    def create(self, request, *args, **kwargs):
        data = ReferenceLicenceInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        holder = data.validated_data["rights_holder"]
        if not may_act_for_holder(request.user, holder):
            return Response(
                {"detail": "You may only license recordings of rights holders you act for."},
                status=status.HTTP_403_FORBIDDEN,
            )
        licence = reference_licence_grant(
            rights_holder=holder,
            recording=data.validated_data.get("recording"),
            permits_reference_use=data.validated_data["permits_reference_use"],
            pool_share_percent=data.validated_data.get(
                "pool_share_percent", reference_share_default()
            ),
            valid_from=data.validated_data.get("valid_from") or date.today(),
            valid_until=data.validated_data.get("valid_until"),
            actor=request.user,
        )
        return Response(
            ReferenceLicenceOutputSerializer(licence).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=None, responses=ReferenceLicenceOutputSerializer)
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None, **kwargs):
        licence = self.get_object()
        if not may_act_for_holder(request.user, licence.rights_holder):
            return Response(
                {"detail": "You may only withdraw licences of rights holders you act for."},
                status=status.HTTP_403_FORBIDDEN,
            )
        licence = reference_licence_withdraw(licence=licence, actor=request.user)
        return Response(ReferenceLicenceOutputSerializer(licence).data)
