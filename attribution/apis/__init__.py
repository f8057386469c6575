"""REST API of attribution: generations and runs (token or session auth), model versions."""

from attribution.apis.generations import (
    MAX_UPLOAD_BYTES,
    AttributionRunDetailApi,
    AttributionRunListApi,
    AttributionRunRerunApi,
    AttributionRunSerializer,
    AudioRenderer,
    CanRecordGenerations,
    GenerationAudioApi,
    GenerationAuditApi,
    GenerationCreateSerializer,
    GenerationListCreateApi,
    GenerationSerializer,
    TopTrackSerializer,
)
from attribution.apis.model_versions import (
    ArtifactStatusSerializer,
    ModelArtifactSerializer,
    ModelVersionInputSerializer,
    ModelVersionOutputSerializer,
    ModelVersionViewSet,
    TrainingSetEntrySerializer,
    UnlearningViewSet,
)

__all__ = [
    "MAX_UPLOAD_BYTES",
    "ArtifactStatusSerializer",
    "AttributionRunDetailApi",
    "AttributionRunListApi",
    "AttributionRunRerunApi",
    "AttributionRunSerializer",
    "AudioRenderer",
    "CanRecordGenerations",
    "GenerationAudioApi",
    "GenerationAuditApi",
    "GenerationCreateSerializer",
    "GenerationListCreateApi",
    "GenerationSerializer",
    "ModelArtifactSerializer",
    "ModelVersionInputSerializer",
    "ModelVersionOutputSerializer",
    "ModelVersionViewSet",
    "TopTrackSerializer",
    "TrainingSetEntrySerializer",
    "UnlearningViewSet",
]
