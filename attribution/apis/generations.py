"""REST API of generations and their attribution runs (token or session auth).

Scoping is the pages' (``attribution.selectors.generations_for_user``): catalog admins
and finance see every generation; a rights holder's users see the generations that paid
the holders they act for (another holder's generation, its audio and runs are 404);
the generating service sees what it recorded. Only catalog admins re-run. One
generation with what it paid (``GET .../generations/<id>/``) is the ledger's
(``ledger.apis.generations``).
"""

import json
from decimal import Decimal, InvalidOperation

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import permissions, serializers, status
from rest_framework.generics import ListAPIView, RetrieveAPIView
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from attribution import selectors, services
from attribution.models import AttributionRun, Generation, ModelVersion
from attribution.streaming import ranged_file_response
from catalog.apis import IsCatalogAdmin
from core.exceptions import ApplicationError

MAX_UPLOAD_BYTES = 50 * 1024 * 1024


class CanRecordGenerations(permissions.BasePermission):
    """The generating service's account: the ``attribution.add_generation`` permission."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.has_perm("attribution.add_generation"))


class AttributionRunSerializer(serializers.ModelSerializer):
    label = serializers.SerializerMethodField(help_text="The state in words, e.g. with the ETA")

    class Meta:
        model = AttributionRun
        fields = [
            "id",
            "generation",
            "model_version",
            "purpose",
            "method",
            "status",
            "label",
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

    def get_label(self, run: AttributionRun) -> str:
        return selectors.run_status(run)["label"]


class TopTrackSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    position = serializers.IntegerField()
    isrc = serializers.CharField()
    title = serializers.CharField()
    score = serializers.FloatField()


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

    @extend_schema_field(TopTrackSerializer(many=True))
    def get_top_tracks(self, generation: Generation) -> list[dict]:
        """The five highest-scored training tracks: for catalog admins, finance and the
        account that recorded the generation (a rights holder sees only its own tracks,
        in the detail's ``attributed_tracks``)."""
        request = self.context.get("request")
        user = getattr(request, "user", None)
        if user is None or not (
            selectors.user_sees_all_generations(user) or generation.requested_by_id == user.pk
        ):
            return []
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
    references = serializers.CharField(
        required=False,
        help_text="JSON list of the catalog recordings the audio was conditioned on: "
        '[{"audio_sha256": "<SHA-256 of the reference audio>", "noise_level": 2.5, '
        '"isrc": "optional"}]. Each hash must be a catalog recording\'s and its use licensed.',
    )


def _declarations(text: str) -> list[services.ReferenceDeclaration]:
    """The ``references`` form field (a JSON list) as declarations; refuses bad JSON."""
    try:
        items = json.loads(text)
    except ValueError:
        raise ApplicationError("references must be a JSON list.", field="references") from None
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ApplicationError("references must be a JSON list of objects.", field="references")
    declarations = []
    for number, item in enumerate(items, start=1):
        unknown = set(item) - {"audio_sha256", "noise_level", "isrc"}
        sha, noise, isrc = item.get("audio_sha256"), item.get("noise_level"), item.get("isrc", "")
        if unknown or not isinstance(sha, str) or not isinstance(isrc, str):
            raise ApplicationError(
                f"Reference {number}: give audio_sha256 (text), optional noise_level (number) "
                "and isrc (text), nothing else.",
                field="references",
            )
        if noise is not None and (isinstance(noise, bool) or not isinstance(noise, int | float)):
            raise ApplicationError(
                f"Reference {number}: noise_level must be a number.", field="references"
            )
        declarations.append(
            services.ReferenceDeclaration(audio_sha256=sha, noise_level=noise, isrc=isrc)
        )
    return declarations


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
            references=_declarations(data["references"]) if data.get("references") else (),
        )
        return Response(
            GenerationSerializer(generation, context=self.get_serializer_context()).data,
            status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED,
        )


class AudioRenderer(BaseRenderer):
    """Lets clients ask for ``audio/*``; error bodies are still JSON."""

    media_type = "audio/wav"
    format = "wav"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else json.dumps(data).encode("utf-8")


class GenerationAudioApi(APIView):
    """The generated audio (WAV); ``Range: bytes=...`` gets a 206 partial response."""

    renderer_classes = [JSONRenderer, AudioRenderer]

    @extend_schema(
        responses={
            (200, "audio/wav"): OpenApiTypes.BINARY,
            (206, "audio/wav"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="No such generation, or not yours"),
        }
    )
    def get(self, request, pk: int):
        generation = get_object_or_404(selectors.generations_for_user(request.user), pk=pk)
        return ranged_file_response(
            request, generation.audio, filename=f"generation-{generation.pk}.wav"
        )


class AttributionRunListApi(ListAPIView):
    """Attribution runs of the generations you may see, newest first."""

    serializer_class = AttributionRunSerializer
    filterset_fields = ["status", "generation", "model_version"]
    ordering_fields = ["created_at", "finished_at", "progress_percent"]

    def get_queryset(self):
        return selectors.runs_for_user(self.request.user)


class AttributionRunDetailApi(RetrieveAPIView):
    """One run's status: progress, stage, ETA, retries, the reason it failed."""

    serializer_class = AttributionRunSerializer

    def get_queryset(self):
        return selectors.runs_for_user(self.request.user)


class AttributionRunRerunApi(APIView):
    """POST: re-run a failed attribution run (catalog admins)."""

    permission_classes = [permissions.IsAuthenticated, IsCatalogAdmin]

    @extend_schema(request=None, responses={201: AttributionRunSerializer})
    def post(self, request, pk: int):
        run = get_object_or_404(selectors.runs_for_user(request.user), pk=pk)
        rerun = services.attribution_run_rerun(
            run=run, actor=request.user, reason=str(request.data.get("reason", ""))
        )
        return Response(AttributionRunSerializer(rerun).data, status=status.HTTP_201_CREATED)


class IsFinanceOrCatalogAdmin(permissions.BasePermission):
    message = "Only finance and catalog admins may do this."

    def has_permission(self, request, view):
        return bool(request.user and selectors.user_may_audit(request.user))


class GenerationAuditApi(APIView):
    """POST: re-attribute a settled generation with the exact method (finance, catalog
    admins). The audit run pays nothing; the generation's page and API show both."""

    permission_classes = [permissions.IsAuthenticated, IsFinanceOrCatalogAdmin]

    @extend_schema(request=None, responses={201: AttributionRunSerializer})
    def post(self, request, pk: int):
        generation = get_object_or_404(selectors.generations_for_user(request.user), pk=pk)
        run = services.attribution_run_audit(
            generation=generation, actor=request.user, reason=str(request.data.get("reason", ""))
        )
        return Response(AttributionRunSerializer(run).data, status=status.HTTP_201_CREATED)


class SecondOpinionRequestSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="A registered method, e.g. audio_similarity")
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    force = serializers.BooleanField(
        required=False, default=False, help_text="Run it even if this method already ran"
    )


class GenerationSecondOpinionApi(APIView):
    """POST: re-attribute a settled generation with any registered method (finance, catalog
    admins). The run is an audit run: it pays nothing; the generation's page and API show
    what each method would have paid."""

    permission_classes = [permissions.IsAuthenticated, IsFinanceOrCatalogAdmin]

    @extend_schema(
        request=SecondOpinionRequestSerializer, responses={201: AttributionRunSerializer}
    )
    def post(self, request, pk: int):
        generation = get_object_or_404(selectors.generations_for_user(request.user), pk=pk)
        params = SecondOpinionRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        run = services.attribution_run_second_opinion(
            generation=generation,
            actor=request.user,
            **params.validated_data,
        )
        return Response(AttributionRunSerializer(run).data, status=status.HTTP_201_CREATED)
