"""Rights holders: read (scoped), create and change (catalog admins)."""

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from catalog.apis.common import FILTER_BACKENDS, IsCatalogAdminOrReadOnly
from catalog.models import RightsHolder
from catalog.selectors import rights_holders_visible_to
from catalog.services import HOLDER_FIELDS, rights_holder_create, rights_holder_update
from core.exceptions import ApplicationError


class RightsHolderOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RightsHolder
        fields = ["id", *HOLDER_FIELDS, "users", "created_at", "updated_at"]


class RightsHolderInputSerializer(serializers.Serializer):
    legal_name = serializers.CharField(max_length=255)
    kind = serializers.ChoiceField(choices=RightsHolder.Kind.choices)
    isni = serializers.CharField(required=False, allow_blank=True)
    ipi = serializers.CharField(required=False, allow_blank=True)
    payout_currency = serializers.CharField(required=False, default="USD")
    contact_email = serializers.EmailField(required=False, allow_blank=True)
    payout_details = serializers.CharField(required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
    users = serializers.ListField(child=serializers.IntegerField(), required=False)
    reason = serializers.CharField(required=False, allow_blank=True)


class RightsHolderFilter(filters.FilterSet):
    class Meta:
        model = RightsHolder
        fields = {"kind": ["exact"], "is_active": ["exact"], "payout_currency": ["exact"]}


def _users(ids):
    from django.contrib.auth import get_user_model

    users = list(get_user_model().objects.filter(pk__in=ids))
    if len(users) != len(set(ids)):
        raise ApplicationError("unknown user id in 'users'", field="users")
    return users


class RightsHolderViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [IsCatalogAdminOrReadOnly]
    serializer_class = RightsHolderOutputSerializer
    filter_backends = FILTER_BACKENDS
    filterset_class = RightsHolderFilter
    search_fields = ["legal_name", "isni", "ipi"]
    ordering_fields = ["legal_name", "created_at"]
    ordering = ["legal_name"]

    def get_queryset(self):
        return rights_holders_visible_to(self.request.user).prefetch_related("users")

    @extend_schema(request=RightsHolderInputSerializer, responses=RightsHolderOutputSerializer)
    def create(self, request, *args, **kwargs):
        data = RightsHolderInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values.pop("reason", None)
        values.pop("is_active", None)
        users = _users(values.pop("users", []))
        holder = rights_holder_create(**values, users=users, actor=request.user)
        return Response(RightsHolderOutputSerializer(holder).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RightsHolderInputSerializer, responses=RightsHolderOutputSerializer)
    def update(self, request, *args, **kwargs):
        holder = self.get_object()
        data = RightsHolderInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason", "")
        users = _users(values.pop("users")) if "users" in values else None
        holder = rights_holder_update(
            holder=holder, data=values, users=users, actor=request.user, reason=reason
        )
        return Response(RightsHolderOutputSerializer(holder).data)
