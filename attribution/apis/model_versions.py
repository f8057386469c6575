"""REST API of model versions (under ``/attribution/api/model-versions/``).

Every signed-in user may read which model versions exist, their training sets and the
status of their artifacts; catalog admins register them and queue their artifacts, start an
unlearning of opted-out recordings (``/unlearn/``), watch it and promote its derived version
(``/attribution/api/unlearnings/``). Every write calls one service.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from attribution.models import ModelArtifact, ModelVersion, Unlearning
from attribution.selectors.model_versions import (
    model_version_artifact_statuses,
    model_versions_visible_to,
    training_set_entries,
)
from attribution.selectors.unlearning import unlearning_status, unlearnings_of
from attribution.services import (
    model_version_artifacts_queue,
    model_version_register,
    unlearning_promote,
    unlearning_request,
)
from catalog.apis import FILTER_BACKENDS, IsCatalogAdmin, IsCatalogAdminOrReadOnly
from catalog.models import Recording
from core.exceptions import ApplicationError


class ModelArtifactSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelArtifact
        fields = ["kind", "status", "progress_percent", "path", "sha256", "error", "updated_at"]


class ModelVersionOutputSerializer(serializers.ModelSerializer):
    artifacts = ModelArtifactSerializer(many=True)
    training_set_size = serializers.IntegerField(source="training_set_entries.count")

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "checkpoint_sha256",
            "checkpoint_path",
            "manifest_sha256",
            "manifest_seed",
            "trained_at",
            "config",
            "opt_out_override_reason",
            "in_use_since",
            "retired_at",
            "training_set_size",
            "artifacts",
            "created_at",
        ]


class ModelVersionInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    checkpoint_dir = serializers.CharField(max_length=1000)
    override_reason = serializers.CharField(required=False, allow_blank=True)


class TrainingSetEntrySerializer(serializers.Serializer):
    position = serializers.IntegerField()
    recording = serializers.IntegerField(source="recording_id")
    isrc = serializers.CharField(source="recording.isrc")
    title = serializers.CharField(source="recording.title")
    track_id = serializers.CharField()


class ArtifactStatusSerializer(serializers.Serializer):
    key = serializers.CharField()
    kind = serializers.ChoiceField(choices=ModelArtifact.Kind.choices)
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=ModelArtifact.Status.choices)
    percent = serializers.IntegerField(min_value=0, max_value=100)
    label = serializers.CharField()
    detail = serializers.CharField(help_text="Why it failed (empty otherwise)")
    done = serializers.BooleanField(help_text="False while it is being computed")


class UnlearningInputSerializer(serializers.Serializer):
    method = serializers.ChoiceField(
        choices=["gradient_ascent", "random_labels", "fisher"], default="fisher"
    )
    isrcs = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="The forget set (default: the training set's opted-out recordings)",
    )
    config = serializers.DictField(required=False, help_text="ForgettingConfig fields")
    thresholds = serializers.DictField(required=False, help_text="ValidationThresholds fields")
    retrained_reference = serializers.CharField(
        required=False, help_text="Name of a model version retrained without the forget set"
    )
    reason = serializers.CharField(required=False, allow_blank=True)


class UnlearningSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=Unlearning.Status.choices)
    label = serializers.CharField()
    percent = serializers.IntegerField(min_value=0, max_value=100)
    stage = serializers.CharField()
    done = serializers.BooleanField()
    error = serializers.CharField()
    parent = serializers.CharField()
    derived = serializers.CharField(allow_null=True)
    method = serializers.CharField()
    config = serializers.DictField()
    thresholds = serializers.DictField()
    forget_isrcs = serializers.ListField(child=serializers.CharField())
    checkpoint_sha256 = serializers.CharField()
    validation_passed = serializers.BooleanField(allow_null=True)
    metrics = serializers.DictField(help_text="checks (value, passed, rule, note), loss means")
    override_reason = serializers.CharField()
    promoted_at = serializers.DateTimeField(allow_null=True)


class PromoteInputSerializer(serializers.Serializer):
    override_reason = serializers.CharField(
        required=False, allow_blank=True, help_text="Required when the validation failed"
    )


class ModelVersionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    permission_classes = [IsCatalogAdminOrReadOnly]
    serializer_class = ModelVersionOutputSerializer
    filter_backends = FILTER_BACKENDS
    filterset_fields = ["checkpoint_sha256", "name"]
    search_fields = ["name", "checkpoint_sha256"]
    ordering_fields = ["created_at", "trained_at", "name"]

    def get_queryset(self):
        return model_versions_visible_to(self.request.user).prefetch_related("artifacts")

    @extend_schema(request=ModelVersionInputSerializer, responses=ModelVersionOutputSerializer)
    def create(self, request, *args, **kwargs):
        data = ModelVersionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        model = model_version_register(
            name=data.validated_data["name"],
            checkpoint_dir=data.validated_data["checkpoint_dir"],
            override_reason=data.validated_data.get("override_reason") or None,
            actor=request.user,
        )
        return Response(ModelVersionOutputSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=ArtifactStatusSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def artifacts(self, request, pk=None, **kwargs):
        """Status and progress of the model version's artifacts (Fisher, base losses)."""
        model = self.get_object()
        return Response(
            ArtifactStatusSerializer(model_version_artifact_statuses(model), many=True).data
        )

    @extend_schema(request=None, responses={202: ArtifactStatusSerializer(many=True)})
    @action(
        detail=True,
        methods=["post"],
        url_path="compute-artifacts",
        permission_classes=[IsCatalogAdmin],
    )
    def compute_artifacts(self, request, pk=None, **kwargs):
        """Queue the computation of the artifacts not ready yet (catalog admins)."""
        model = self.get_object()
        model_version_artifacts_queue(model_version=model, actor=request.user)
        return Response(
            ArtifactStatusSerializer(model_version_artifact_statuses(model), many=True).data,
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(responses=TrainingSetEntrySerializer(many=True))
    @action(detail=True, methods=["get"], url_path="training-set")
    def training_set(self, request, pk=None, **kwargs):
        model = self.get_object()
        page = self.paginate_queryset(training_set_entries(model))
        return self.get_paginated_response(TrainingSetEntrySerializer(page, many=True).data)

    @extend_schema(responses=UnlearningSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None, url_name="api-unlearnings")
    def unlearnings(self, request, pk=None, **kwargs):
        """The unlearnings started from this model version, newest first."""
        model = self.get_object()
        return Response(
            UnlearningSerializer(
                [unlearning_status(u) for u in unlearnings_of(model)], many=True
            ).data
        )

    @extend_schema(request=UnlearningInputSerializer, responses={202: UnlearningSerializer})
    @action(
        detail=True, methods=["post"], permission_classes=[IsCatalogAdmin], url_name="api-unlearn"
    )
    def unlearn(self, request, pk=None, **kwargs):
        """Start deriving a version without the forget set (catalog admins; a gpu job)."""
        model = self.get_object()
        data = UnlearningInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        recordings = None
        if values.get("isrcs"):
            recordings = list(Recording.objects.filter(isrc__in=values["isrcs"]))
            unknown = sorted(set(values["isrcs"]) - {r.isrc for r in recordings})
            if unknown:
                raise ApplicationError(f"Unknown ISRC(s): {', '.join(unknown)}", field="isrcs")
        reference = None
        if values.get("retrained_reference"):
            reference = ModelVersion.objects.filter(name=values["retrained_reference"]).first()
            if reference is None:
                raise ApplicationError(
                    "No model version of that name.", field="retrained_reference"
                )
        unlearning = unlearning_request(
            parent=model,
            actor=request.user,
            method=values["method"],
            recordings=recordings,
            config=values.get("config"),
            thresholds=values.get("thresholds"),
            retrained_reference=reference,
            reason=values.get("reason", ""),
        )
        return Response(
            UnlearningSerializer(unlearning_status(unlearning)).data,
            status=status.HTTP_202_ACCEPTED,
        )


class UnlearningViewSet(viewsets.GenericViewSet):
    """An unlearning job: its progress and validation; promotion of its derived version."""

    permission_classes = [IsCatalogAdmin]
    serializer_class = UnlearningSerializer
    queryset = Unlearning.objects.select_related("parent", "derived")

    def retrieve(self, request, pk=None, **kwargs):
        return Response(UnlearningSerializer(unlearning_status(self.get_object())).data)

    @extend_schema(request=PromoteInputSerializer, responses=UnlearningSerializer)
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None, **kwargs):
        """Put the derived version in use now and retire its parent (a failed validation
        needs ``override_reason``)."""
        data = PromoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        unlearning = unlearning_promote(
            unlearning=self.get_object(),
            actor=request.user,
            override_reason=data.validated_data.get("override_reason", ""),
        )
        return Response(UnlearningSerializer(unlearning_status(unlearning)).data)
