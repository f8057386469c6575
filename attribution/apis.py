"""REST API of generations and their attribution runs (token or session auth)."""

from decimal import Decimal, InvalidOperation

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution import selectors, services
from attribution.models import AttributionRun, Generation
from catalog.apis import IsCatalogAdmin
from catalog.models import ModelVersion
from core.exceptions import ApplicationError

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class CanRecordGenerations(permissions.BasePermission):
    """The generating service's account: the ``attribution.add_generation`` permission."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("attribution.add_generation"))


class AttributionRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = AttributionRun
        fields = [
            "id",
            "status",
            "progress_percent",
            "progress_stage",
            "eta_seconds",
            "attempts",
            "retries",
            "shard_count",
            "error",
            "checkpoint_sha256",
            "manifest_sha256",
            "scores_sha256",
            "created_at",
            "started_at",
            "finished_at",
        ]


class GenerationSerializer(serializers.ModelSerializer):
    model_version = serializers.SlugRelatedField(slug_field="name", read_only=True)
    latest_run = serializers.SerializerMethodField()
    top_tracks = serializers.SerializerMethodField()

    class Meta:
        model = Generation
        fields = [
            "id",
            "model_version",
            "prompt",
            "duration_seconds",
            "audio_sha256",
            "revenue_minor",
            "currency",
            "idempotency_key",
            "source",
            "status",
            "error",
            "created_at",
            "latest_run",
            "top_tracks",
        ]

    @extend_schema_field(AttributionRunSerializer(allow_null=True))
    def get_latest_run(self, generation: Generation) -> dict | None:
        run = selectors.latest_run(generation)
        return AttributionRunSerializer(run).data if run is not None else None

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_top_tracks(self, generation: Generation) -> list[dict]:
        run = selectors.latest_run(generation)
        return selectors.top_attributed_tracks(run) if run is not None else []


class GenerationCreateSerializer(serializers.Serializer):
    model_version = serializers.CharField(help_text="model version id or name")
    prompt = serializers.CharField()
    audio = serializers.FileField(help_text="WAV, FLAC or OGG")
    revenue_minor = serializers.IntegerField(min_value=0)
    currency = serializers.CharField(max_length=3, min_length=3)
    idempotency_key = serializers.CharField(max_length=128)
    duration_seconds = serializers.CharField(required=False)


class GenerationListCreateApi(ListAPIView):
    """GET: generations you may see. POST: record a generation (idempotent by key)."""

    serializer_class = GenerationSerializer
    parser_classes = [MultiPartParser, FormParser]
    filterset_fields = ["status", "currency", "model_version"]
    ordering_fields = ["created_at", "revenue_minor"]

    def get_queryset(self):
        return selectors.generations_for_user(self.request.user).order_by("-created_at", "-id")

    def get_permissions(self):
        if self.request.method == "POST":
            return [permissions.IsAuthenticated(), CanRecordGenerations()]
        return [permissions.IsAuthenticated()]

    @extend_schema(request=GenerationCreateSerializer, responses={201: GenerationSerializer})
    def post(self, request):
        payload = GenerationCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        reference = data["model_version"]
        lookup = {"pk": int(reference)} if reference.isdigit() else {"name": reference}
        model_version = ModelVersion.objects.filter(**lookup).first()
        if model_version is None:
            raise ApplicationError(f"Unknown model version {reference!r}.", field="model_version")
        upload = data["audio"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise ApplicationError("The audio file is larger than 50 MB.", field="audio")
        duration = None
        if data.get("duration_seconds"):
            try:
                duration = Decimal(data["duration_seconds"])
            except InvalidOperation as exc:
                raise ApplicationError(
                    "duration_seconds must be a number.", field="duration_seconds"
                ) from exc
        existed = Generation.objects.filter(idempotency_key=data["idempotency_key"]).exists()
        generation = services.generation_record(
            model_version=model_version,
            prompt=data["prompt"],
            audio=upload.read(),
            revenue_minor=data["revenue_minor"],
            currency=data["currency"],
            requested_by=request.user,
            idempotency_key=data["idempotency_key"],
            duration_seconds=duration,
        )
        return Response(
            GenerationSerializer(generation).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class GenerationDetailApi(RetrieveAPIView):
    serializer_class = GenerationSerializer

    def get_queryset(self):
        return selectors.generations_for_user(self.request.user)


class AttributionRunRerunApi(APIView):
    """POST: re-run a failed attribution run (catalog admins)."""

    permission_classes = [permissions.IsAuthenticated, IsCatalogAdmin]

    @extend_schema(request=None, responses={201: AttributionRunSerializer})
    def post(self, request, pk: int):
        run = get_object_or_404(AttributionRun, pk=pk)
        rerun = services.attribution_run_rerun(
            run=run, actor=request.user, reason=str(request.data.get("reason", ""))
        )
        return Response(AttributionRunSerializer(rerun).data, status=status.HTTP_201_CREATED)
