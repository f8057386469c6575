"""Recordings: read (scoped), change a title or ISWC and replace the ownership shares
(catalog admins). Recordings are created by the import.

The list is paged by cursor (keyset): each page starts after the last row of the one
before, read off the ordering's index, and nothing counts the whole list, so a rights
holder of 100,000 recordings gets any page as fast as the first.
"""

from django.db.models import Prefetch
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from catalog.apis.common import FILTER_BACKENDS, IsCatalogAdminOrReadOnly
from catalog.models import OwnershipShare, Recording, RightsHolder
from catalog.selectors import recordings_opted_out, recordings_visible_to
from catalog.services import ShareSpec, recording_shares_set, recording_update
from core.pagination import KeysetPagination


class ShareOutputSerializer(serializers.ModelSerializer):
    rights_holder_name = serializers.CharField(source="rights_holder.legal_name")

    class Meta:
        model = OwnershipShare
        fields = ["rights_holder", "rights_holder_name", "percent"]


class RecordingOutputSerializer(serializers.ModelSerializer):
    ownership_shares = ShareOutputSerializer(many=True)

    class Meta:
        model = Recording
        fields = [
            "id",
            "isrc",
            "title",
            "iswc",
            "duration_seconds",
            "sample_rate",
            "channels",
            "audio_sha256",
            "audio_bytes",
            "ownership_shares",
            "created_at",
        ]


class RecordingFilter(filters.FilterSet):
    title = filters.CharFilter(lookup_expr="icontains")
    rights_holder = filters.NumberFilter(field_name="ownership_shares__rights_holder")
    opted_out = filters.BooleanFilter(method="filter_opted_out")

    class Meta:
        model = Recording
        fields = ["isrc", "iswc", "audio_sha256", "sample_rate"]

    def filter_opted_out(self, queryset, name, value):
        opted = recordings_opted_out().values("pk")
        return queryset.filter(pk__in=opted) if value else queryset.exclude(pk__in=opted)


class RecordingPagination(KeysetPagination):
    """50 a page, by ``?ordering=`` then ISRC (ISRC alone by default)."""

    unique_field = "isrc"
    default_ordering = "isrc"


class RecordingUpdateSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=255, required=False)
    iswc = serializers.CharField(required=False, allow_blank=True)
    reason = serializers.CharField(required=False, allow_blank=True)


class ShareInputSerializer(serializers.Serializer):
    rights_holder = serializers.PrimaryKeyRelatedField(queryset=RightsHolder.objects.all())
    percent = serializers.DecimalField(max_digits=7, decimal_places=4)


class SharesInputSerializer(serializers.Serializer):
    ownership_shares = ShareInputSerializer(many=True)
    reason = serializers.CharField(required=False, allow_blank=True)


class RecordingViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Recordings are created by the import (``/catalog/api/imports/``)."""

    permission_classes = [IsCatalogAdminOrReadOnly]
    serializer_class = RecordingOutputSerializer
    filter_backends = FILTER_BACKENDS
    pagination_class = RecordingPagination
    filterset_class = RecordingFilter
    search_fields = ["isrc", "title", "iswc"]
    ordering_fields = ["isrc", "title", "created_at", "duration_seconds"]
    ordering = ["isrc"]

    def get_queryset(self):
        return recordings_visible_to(self.request.user).prefetch_related(
            Prefetch(
                "ownership_shares",
                queryset=OwnershipShare.objects.select_related("rights_holder"),
            )
        )

    @extend_schema(request=RecordingUpdateSerializer, responses=RecordingOutputSerializer)
    def update(self, request, *args, **kwargs):
        recording = self.get_object()
        data = RecordingUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        reason = values.pop("reason", "")
        recording = recording_update(
            recording=recording, data=values, actor=request.user, reason=reason
        )
        return Response(RecordingOutputSerializer(self.get_queryset().get(pk=recording.pk)).data)

    @extend_schema(request=SharesInputSerializer, responses=RecordingOutputSerializer)
    @action(detail=True, methods=["put"], url_path="shares")
    def shares(self, request, pk=None, **kwargs):
        """Replace the recording's ownership shares (they must sum to 100)."""
        recording = self.get_object()
        data = SharesInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        recording_shares_set(
            recording=recording,
            shares=[
                ShareSpec(share["rights_holder"], share["percent"])
                for share in data.validated_data["ownership_shares"]
            ],
            actor=request.user,
            reason=data.validated_data.get("reason", ""),
        )
        return Response(RecordingOutputSerializer(self.get_queryset().get(pk=recording.pk)).data)
