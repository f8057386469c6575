"""Reads of model versions: which exist, their ordered training sets, which of their
tracks were opted out since, and the status of their artifacts (pages, API, engine)."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from attribution.methods import artifact_kinds
from attribution.models import ModelArtifact, ModelVersion, TrainingSetEntry
from catalog.models import Recording
from catalog.selectors import recordings_opted_out

AnyUser = AbstractBaseUser | AnonymousUser


def model_versions_visible_to(user: AnyUser) -> QuerySet[ModelVersion]:
    """Model versions are not secret: every signed-in user may see which exist."""
    if not user.is_authenticated:
        return ModelVersion.objects.none()
    return ModelVersion.objects.all()


def training_set_for_model_version(model_version: ModelVersion) -> list[Recording]:
    """The recordings a model version was trained on, in manifest order (index = position)."""
    recordings = []
    for expected, entry in enumerate(training_set_entries(model_version)):
        assert entry.position == expected, f"training set of {model_version} has a gap"
        recordings.append(entry.recording)
    return recordings


def training_set_entries(model_version: ModelVersion) -> QuerySet[TrainingSetEntry]:
    return (
        TrainingSetEntry.objects.filter(model_version=model_version)
        .select_related("recording")
        .order_by("position")
    )


def training_set_search(
    entries: QuerySet[TrainingSetEntry], query: str
) -> QuerySet[TrainingSetEntry]:
    """``entries`` whose recording's title contains ``query`` or whose ISRC starts with it
    (ignoring case, and spaces and dashes in the ISRC as people type it)."""
    query = query.strip()
    if not query:
        return entries
    isrc = query.replace("-", "").replace(" ", "").upper()
    return entries.filter(
        Q(recording__title__icontains=query) | Q(recording__isrc__startswith=isrc)
    )


def opted_out_recordings_in_model_version(model_version: ModelVersion) -> list[Recording]:
    """Recordings of this model's training set opted out by now.

    Per the catalog rule they keep being attributed to and paid for while this model is
    in use (their influence is in its weights); a model version without them replaces it.
    """
    opted = recordings_opted_out()
    return [
        entry.recording for entry in training_set_entries(model_version).filter(recording__in=opted)
    ]


def artifact_status(artifact: ModelArtifact) -> dict:
    """An artifact's state in words and numbers (the model version page and its JSON
    status endpoint)."""
    status = ModelArtifact.Status(artifact.status)
    percent = 100 if status == ModelArtifact.Status.READY else int(artifact.progress_percent)
    label = {
        ModelArtifact.Status.MISSING: "Not computed",
        ModelArtifact.Status.COMPUTING: f"Computing: {percent} %",
        ModelArtifact.Status.READY: "Ready",
        ModelArtifact.Status.FAILED: "Failed",
    }[status]
    return {
        "key": f"artifact-{artifact.kind}",
        "kind": artifact.kind,
        "name": ModelArtifact.Kind(artifact.kind).label,
        "status": status.value,
        "percent": percent,
        "label": label,
        "detail": artifact.error if status != ModelArtifact.Status.READY else "",  # why not ready
        "done": status != ModelArtifact.Status.COMPUTING,
    }


def model_version_artifact_statuses(model_version: ModelVersion) -> list[dict]:
    """``artifact_status`` of each artifact kind the deployment's methods read, and of any
    other stored one (missing kinds count as not computed)."""
    stored = {a.kind: a for a in model_version.artifacts.all()}
    kinds = [*artifact_kinds(), *(kind for kind in stored if kind not in artifact_kinds())]
    return [
        artifact_status(stored.get(kind) or ModelArtifact(model_version=model_version, kind=kind))
        for kind in kinds
    ]
