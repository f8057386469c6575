"""REST API of the catalog (under ``/catalog/api/``).

Everyone signed in may read; what they see is scoped: catalog admins and finance see the
whole catalog, a rights holder's users see that holder and its recordings and opt-outs.
Only catalog admins write, except that a rights holder's users may request (and
withdraw) opt-outs for that holder. Every write calls one service.
"""

from datetime import date
from pathlib import Path

from django.db.models import Prefetch
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter, SearchFilter
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.importing import KINDS
from catalog.models import (
    ModelArtifact,
    ModelVersion,
    OptOut,
    OwnershipShare,
    Recording,
    RightsHolder,
)
from catalog.selectors import (
    holders_for_user,
    model_version_artifact_statuses,
    model_versions_visible_to,
    opt_outs_visible_to,
    recordings_opted_out,
    recordings_visible_to,
    rights_holders_visible_to,
    staged_import_get,
    training_set_entries,
)
from catalog.services import (
    ShareSpec,
    catalog_import_confirm,
    catalog_import_files,
    catalog_import_folder,
    catalog_import_stage,
    import_upload_check,
    model_version_register,
    opt_out_create,
    opt_out_withdraw,
    recording_shares_set,
    recording_update,
    rights_holder_create,
    rights_holder_update,
)
from core.exceptions import ApplicationError
from core.roles import CATALOG_ADMIN, user_has_role

FILTER_BACKENDS = [filters.DjangoFilterBackend, SearchFilter, OrderingFilter]


class IsCatalogAdminOrReadOnly(permissions.BasePermission):
    message = "Only catalog admins may change the catalog."

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return user_has_role(request.user, CATALOG_ADMIN)


class IsCatalogAdmin(permissions.BasePermission):
    message = "Only catalog admins may do this."

    def has_permission(self, request, view):
        return user_has_role(request.user, CATALOG_ADMIN)


# --- rights holders -----------------------------------------------------------------------


class RightsHolderOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = RightsHolder
        fields = [
            "id",
            "legal_name",
            "kind",
            "isni",
            "ipi",
            "payout_currency",
            "contact_email",
            "payout_details",
            "is_active",
            "users",
            "created_at",
            "updated_at",
        ]


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


# --- recordings ---------------------------------------------------------------------------


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


# --- opt-outs -----------------------------------------------------------------------------


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


def _may_act_for(user, holder: RightsHolder) -> bool:
    return (
        user_has_role(user, CATALOG_ADMIN) or holders_for_user(user).filter(pk=holder.pk).exists()
    )


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
        if not _may_act_for(request.user, holder):
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
        if not _may_act_for(request.user, opt_out.rights_holder):
            return Response(
                {"detail": "You may only withdraw opt-outs of rights holders you act for."},
                status=status.HTTP_403_FORBIDDEN,
            )
        opt_out = opt_out_withdraw(opt_out=opt_out, actor=request.user)
        return Response(OptOutOutputSerializer(opt_out).data)


# --- model versions -----------------------------------------------------------------------


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
        from attribution.services import model_version_artifacts_queue

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


# --- imports ------------------------------------------------------------------------------


class ImportApi(APIView):
    """Import catalog files (multipart fields named after the kinds), or a server folder.

    ``dry_run=true`` checks only. Answers 200 with the report when the files are (or would
    be) applied, 400 with the same report when any row has a problem (nothing changed).
    """

    permission_classes = [IsCatalogAdmin]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    class InputSerializer(serializers.Serializer):
        dry_run = serializers.BooleanField(required=False, default=False)
        folder = serializers.CharField(required=False)
        base_dir = serializers.CharField(required=False, help_text="folder for relative audio")

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    **{kind: {"type": "string", "format": "binary"} for kind in KINDS},
                    "dry_run": {"type": "boolean"},
                    "folder": {"type": "string"},
                    "base_dir": {"type": "string"},
                },
            }
        },
        responses={
            200: OpenApiResponse(description="The import report (applied or dry run)"),
            400: OpenApiResponse(description="The import report listing problems by row"),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        dry_run = data.validated_data["dry_run"]
        files = {kind: request.FILES[kind] for kind in KINDS if kind in request.FILES}
        for kind, upload in files.items():
            import_upload_check(kind=kind, upload=upload)
        if data.validated_data.get("folder"):
            if files:
                raise ApplicationError("send files or a folder, not both", field="folder")
            report = catalog_import_folder(
                folder=data.validated_data["folder"], actor=request.user, dry_run=dry_run
            )
        else:
            if not files:
                raise ApplicationError(
                    f"send at least one file field named {', '.join(KINDS)}", field="files"
                )
            base_dir = data.validated_data.get("base_dir")
            report = catalog_import_files(
                files=files,
                actor=request.user,
                dry_run=dry_run,
                base_dirs={kind: Path(base_dir) for kind in files} if base_dir else None,
            )
        return Response(
            report.as_dict(),
            status=status.HTTP_200_OK if report.ok else status.HTTP_400_BAD_REQUEST,
        )


class ImportProblemSerializer(serializers.Serializer):
    file = serializers.CharField(help_text="rights_holders, recordings or ownership_shares")
    row = serializers.IntegerField(
        allow_null=True, help_text="Spreadsheet row (header = 1); null for the whole file"
    )
    column = serializers.CharField()
    problem = serializers.CharField()


class ImportReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    dry_run = serializers.BooleanField()
    applied = serializers.BooleanField()
    kinds = serializers.ListField(child=serializers.CharField())
    rows = serializers.IntegerField()
    created = serializers.DictField(child=serializers.IntegerField())
    updated = serializers.DictField(child=serializers.IntegerField())
    unchanged = serializers.DictField(child=serializers.IntegerField())
    batch_id = serializers.IntegerField(allow_null=True)
    problems = ImportProblemSerializer(many=True)


class StagedFileSerializer(serializers.Serializer):
    name = serializers.CharField()
    sha256 = serializers.CharField()
    bytes = serializers.IntegerField()


class StagedImportSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Names this check; confirm it with this token")
    state = serializers.ChoiceField(choices=["checked", "applied"])
    ok = serializers.BooleanField()
    can_confirm = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    audio_folder = serializers.CharField()
    files = serializers.DictField(child=StagedFileSerializer())
    summary = serializers.CharField()
    report = ImportReportSerializer()
    isrcs = serializers.ListField(child=serializers.CharField())
    batch_id = serializers.IntegerField(allow_null=True)
    replaces = serializers.CharField()


def _staged_or_404(request, token: str):
    staged = staged_import_get(token=token, user=request.user)
    if staged is None:
        raise Http404("No such checked import.")
    return staged


class ImportCheckApi(APIView):
    """Step 1 of an import: upload CSV/XLSX files (multipart fields named after the kinds);
    they are checked row by row and kept on the server; nothing is imported.

    With ``replaces`` (the token of an earlier check), kinds not uploaded again are taken
    from that check, so a corrected file can be sent alone. Confirm with
    ``POST /catalog/api/imports/<token>/confirm/``.
    """

    permission_classes = [IsCatalogAdmin]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        audio_folder = serializers.CharField(required=False, allow_blank=True)
        replaces = serializers.CharField(required=False, allow_blank=True)

    @extend_schema(
        request={
            "multipart/form-data": {
                "type": "object",
                "properties": {
                    **{kind: {"type": "string", "format": "binary"} for kind in KINDS},
                    "audio_folder": {"type": "string"},
                    "replaces": {"type": "string"},
                },
            }
        },
        responses={201: StagedImportSerializer},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        replaces = data.validated_data.get("replaces")
        staged = catalog_import_stage(
            files={kind: request.FILES[kind] for kind in KINDS if kind in request.FILES},
            actor=request.user,
            audio_folder=data.validated_data.get("audio_folder", ""),
            replacing=_staged_or_404(request, replaces) if replaces else None,
        )
        return Response(StagedImportSerializer(staged).data, status=status.HTTP_201_CREATED)


class StagedImportApi(APIView):
    """A check you made: its per-row report, and whether it can be (or was) confirmed."""

    permission_classes = [IsCatalogAdmin]

    @extend_schema(responses=StagedImportSerializer)
    def get(self, request, token: str):
        return Response(StagedImportSerializer(_staged_or_404(request, token)).data)


class ImportConfirmApi(APIView):
    """Step 2: import exactly the files that were checked (all or nothing; idempotent).

    200 when imported (or already imported); 400 with the new report when the catalog
    changed since the check and a row now has a problem (nothing imported).
    """

    permission_classes = [IsCatalogAdmin]

    @extend_schema(
        request=None,
        responses={200: StagedImportSerializer, 400: StagedImportSerializer},
    )
    def post(self, request, token: str):
        staged = catalog_import_confirm(staged=_staged_or_404(request, token), actor=request.user)
        return Response(
            StagedImportSerializer(staged).data,
            status=status.HTTP_200_OK if staged.applied else status.HTTP_400_BAD_REQUEST,
        )
