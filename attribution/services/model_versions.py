"""Model versions: registering a checkpoint with its ordered training set, and the status
of its per-checkpoint artifacts (``artifacts`` computes them).

A model version's training set is the ordered list of recordings in its training manifest:
position ``i`` is the manifest's ``tracks[i]``, and every track must be a registered
recording with the same audio hash. A model trained on or after an opt-out's date whose
training set holds an opted-out recording is refused unless overridden with a reason.
"""

import json
from collections import Counter
from datetime import datetime
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from attribution.methods import artifact_kinds
from attribution.models import ModelArtifact, ModelVersion, TrainingSetEntry
from catalog.audio import file_sha256
from catalog.models import Recording
from catalog.selectors import opt_outs_covering
from catalog.services.common import full_clean, is_folder, snapshot
from catalog.validators import isrc_normalize
from core.exceptions import ApplicationError
from core.services import audit_record

User = AbstractBaseUser

CONFIG_FILE = "model_config.json"
CHECKPOINT_FILE = "model.safetensors"
CHECKPOINT_FILES = (CHECKPOINT_FILE, "model.ckpt")  # as stable-audio-tools releases ship them
MANIFEST_FILE = "training_manifest.json"


def _read_json(path: Path, what: str) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApplicationError(f"{what} {path.name} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ApplicationError(f"{what} {path.name} must contain a JSON object")
    return data


def _manifest_tracks(manifest: dict) -> list[dict]:
    tracks = manifest.get("tracks")
    if not isinstance(tracks, list) or not tracks:
        raise ApplicationError("training manifest has no 'tracks' list", field="manifest")
    for index, track in enumerate(tracks):
        if not isinstance(track, dict) or not track.get("isrc") or not track.get("sha256"):
            raise ApplicationError(
                f"training manifest track {index} needs an 'isrc' and a 'sha256'",
                field="manifest",
            )
    return tracks


def _manifest_trained_at(manifest: dict) -> datetime:
    raw = manifest.get("created_at")
    parsed = parse_datetime(raw) if isinstance(raw, str) else None
    if parsed is None:
        raise ApplicationError(
            f"training manifest 'created_at' {raw!r} is not an ISO datetime", field="manifest"
        )
    if timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.UTC)
    return parsed


def model_version_register(
    *,
    name: str,
    checkpoint_dir: str | Path,
    actor: User | None,
    override_reason: str | None = None,
) -> ModelVersion:
    """Register a stable-audio-tools checkpoint and its ordered training set.

    Reads ``model_config.json``, ``model.safetensors`` or ``model.ckpt`` (SHA-256 of its bytes) and
    ``training_manifest.json`` from ``checkpoint_dir``. Every manifest track must be a
    registered recording (by ISRC) with the same audio hash. A model trained on or after
    an opt-out's date whose training set contains an opted-out recording is refused unless
    ``override_reason`` is given; the override is recorded in the audit trail.
    Registering the same checkpoint under the same name again returns the existing one.
    """
    name = " ".join(str(name).split())
    if not name:
        raise ApplicationError("a model version needs a name", field="name")
    try:
        folder = Path(checkpoint_dir).expanduser().resolve()
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        folder = Path(str(checkpoint_dir))
    if not is_folder(folder):
        raise ApplicationError(f"{str(folder)!r} is not a folder", field="checkpoint_dir")
    weights = next((folder / f for f in CHECKPOINT_FILES if (folder / f).is_file()), None)
    missing = [file for file in (CONFIG_FILE, MANIFEST_FILE) if not (folder / file).is_file()]
    if weights is None:
        missing.insert(1, " or ".join(CHECKPOINT_FILES))
    if missing:
        raise ApplicationError(
            f"checkpoint folder lacks {', '.join(missing)}",
            field="checkpoint_dir",
            extra={"missing_files": missing},
        )
    config = _read_json(folder / CONFIG_FILE, "model config")
    manifest_path = folder / MANIFEST_FILE
    manifest = _read_json(manifest_path, "training manifest")
    tracks = _manifest_tracks(manifest)
    trained_at = _manifest_trained_at(manifest)
    try:
        seed = int(manifest.get("seed", 0))
    except (TypeError, ValueError):
        raise ApplicationError("training manifest 'seed' is not an integer") from None
    checkpoint_sha256 = file_sha256(weights)
    manifest_sha256 = file_sha256(manifest_path)

    # Hashing a checkpoint of gigabytes holds no transaction; the checks and writes below
    # run in one.
    with transaction.atomic():
        return _model_version_save(
            name=name,
            folder=folder,
            weights=weights,
            config=config,
            tracks=tracks,
            trained_at=trained_at,
            seed=seed,
            checkpoint_sha256=checkpoint_sha256,
            manifest_sha256=manifest_sha256,
            actor=actor,
            override_reason=override_reason,
        )


def _model_version_save(
    *,
    name: str,
    folder: Path,
    weights: Path,
    config: dict,
    tracks: list[dict],
    trained_at: datetime,
    seed: int,
    checkpoint_sha256: str,
    manifest_sha256: str,
    actor: User | None,
    override_reason: str | None,
) -> ModelVersion:
    existing = ModelVersion.objects.filter(checkpoint_sha256=checkpoint_sha256).first()
    if existing is not None:
        if existing.name == name and existing.manifest_sha256 == manifest_sha256:
            return existing
        raise ApplicationError(
            f"this checkpoint is already registered as {existing.name!r}",
            field="checkpoint_dir",
        )
    if ModelVersion.objects.filter(name=name).exists():
        raise ApplicationError(f"a model version named {name!r} already exists", field="name")

    isrcs = []
    for track in tracks:
        try:
            isrcs.append(isrc_normalize(track["isrc"]))
        except ValidationError:
            isrcs.append(str(track["isrc"]))  # malformed: reported as unknown below
    recordings = {r.isrc: r for r in Recording.objects.filter(isrc__in=isrcs)}
    unknown = [isrc for isrc in isrcs if isrc not in recordings]
    if unknown:
        raise ApplicationError(
            f"the training manifest names {len(unknown)} unknown recording(s): "
            f"{', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}",
            field="manifest",
            extra={"unknown_isrcs": unknown},
        )
    duplicates = sorted(isrc for isrc, count in Counter(isrcs).items() if count > 1)
    if duplicates:
        raise ApplicationError(
            f"the training manifest lists {', '.join(duplicates)} more than once",
            field="manifest",
            extra={"duplicate_isrcs": duplicates},
        )
    mismatched = [
        isrc
        for isrc, track in zip(isrcs, tracks, strict=True)
        if str(track["sha256"]).lower() != recordings[isrc].audio_sha256
    ]
    if mismatched:
        raise ApplicationError(
            "the audio trained on differs from the registered audio for "
            f"{', '.join(mismatched[:20])}",
            field="manifest",
            extra={"hash_mismatch_isrcs": mismatched},
        )

    opted_out = opt_outs_covering(
        recording_ids=[recordings[isrc].pk for isrc in isrcs], at=trained_at
    )
    override_reason = (override_reason or "").strip()
    if opted_out and not override_reason:
        listed = sorted({recordings_isrc for recordings_isrc, _ in opted_out})
        raise ApplicationError(
            f"{len(listed)} recording(s) in the training set were opted out before this "
            f"model was trained ({trained_at:%Y-%m-%d}): {', '.join(listed[:20])}. Retrain "
            "without them, or a catalog admin may override with a reason.",
            field="manifest",
            extra={"opted_out_isrcs": listed},
        )

    model_version = ModelVersion(
        name=name,
        checkpoint_sha256=checkpoint_sha256,
        checkpoint_path=str(weights),
        config=config,
        manifest_sha256=manifest_sha256,
        manifest_seed=seed,
        trained_at=trained_at,
        registered_by=actor if getattr(actor, "is_authenticated", False) else None,
        opt_out_override_reason=override_reason if opted_out else "",
    )
    full_clean(model_version)
    try:
        with transaction.atomic():
            model_version.save()
    except IntegrityError:
        raise ApplicationError(
            f"model version {name!r} or its checkpoint was registered at the same time"
        ) from None
    TrainingSetEntry.objects.bulk_create(
        [
            TrainingSetEntry(
                model_version=model_version,
                position=position,
                recording=recordings[isrc],
                track_id=str(track.get("track_id", ""))[:255],
                manifest_entry=track,
            )
            for position, (isrc, track) in enumerate(zip(isrcs, tracks, strict=True))
        ]
    )
    ModelArtifact.objects.bulk_create(
        [ModelArtifact(model_version=model_version, kind=kind) for kind in artifact_kinds()]
    )
    audit_record(
        actor=actor,
        action="model_version.register",
        obj=model_version,
        after={
            "checkpoint_sha256": checkpoint_sha256,
            "manifest_sha256": manifest_sha256,
            "checkpoint_path": model_version.checkpoint_path,
            "trained_at": trained_at.isoformat(),
            "training_set_size": len(isrcs),
        },
    )
    if opted_out:
        audit_record(
            actor=actor,
            action="model_version.opt_out_override",
            obj=model_version,
            after={
                "opted_out": [
                    {"isrc": isrc, "opt_out": opt_out_id} for isrc, opt_out_id in opted_out
                ]
            },
            reason=override_reason,
        )
    return model_version


_COMPUTING = ModelArtifact.Status.COMPUTING
_READY = ModelArtifact.Status.READY
_FAILED = ModelArtifact.Status.FAILED
# Computing may start from any state (a recompute); ready needs the file, which may also
# be registered directly (computed elsewhere); a ready artifact cannot become failed.
ARTIFACT_TRANSITIONS = {
    ModelArtifact.Status.MISSING: {_COMPUTING, _READY},
    _COMPUTING: {_COMPUTING, _READY, _FAILED},
    # ready -> missing: a run found none for the engine configuration it records (stale)
    _READY: {ModelArtifact.Status.MISSING, _COMPUTING, _READY},
    _FAILED: {_COMPUTING, _READY},
}


@transaction.atomic
def model_artifact_update(
    *,
    model_version: ModelVersion,
    kind: str,
    status: str,
    actor: User | None = None,
    progress_percent: int | None = None,
    path: str | None = None,
    sha256: str | None = None,
    error: str = "",
) -> ModelArtifact:
    """Move an artifact through missing -> computing -> ready | failed (and recompute); a
    ready artifact goes back to missing when it no longer fits the engine configuration.

    ``ready`` needs the file's ``path``; its SHA-256 is computed here unless given.
    Progress updates (computing -> computing) are not audited, status changes are.
    """
    artifact, _ = ModelArtifact.objects.select_for_update().get_or_create(
        model_version=model_version, kind=kind
    )
    status = ModelArtifact.Status(status)
    if status not in ARTIFACT_TRANSITIONS[ModelArtifact.Status(artifact.status)]:
        raise ApplicationError(
            f"artifact {kind} of {model_version} cannot go from {artifact.status} to {status}",
            field="status",
        )
    before = snapshot(artifact, ("status", "path", "sha256", "progress_percent", "error"))
    if status == ModelArtifact.Status.READY:
        if not path or not Path(path).is_file():
            raise ApplicationError(f"artifact file {path!r} does not exist", field="path")
        artifact.path = str(path)
        artifact.sha256 = sha256 or file_sha256(Path(path))
        artifact.progress_percent = 100
        artifact.error = ""
    elif status == ModelArtifact.Status.COMPUTING:
        if artifact.status != ModelArtifact.Status.COMPUTING:  # a new computation
            artifact.progress_percent = 0
            artifact.error = ""
            artifact.dispatched_at = artifact.heartbeat_at = None
            artifact.redispatches = 0
        if progress_percent is not None:
            if not 0 <= int(progress_percent) <= 100:
                raise ApplicationError("progress must be between 0 and 100", field="progress")
            artifact.progress_percent = int(progress_percent)
    elif status == ModelArtifact.Status.FAILED:
        artifact.error = error or "failed without a message"
    elif status == ModelArtifact.Status.MISSING:
        artifact.progress_percent = 0
        artifact.error = error
    status_changed = artifact.status != status
    artifact.status = status
    full_clean(artifact)
    artifact.save()
    if status_changed:
        audit_record(
            actor=actor,
            action=f"model_artifact.{status}",
            obj=artifact,
            before=before,
            after=snapshot(artifact, ("status", "path", "sha256", "progress_percent", "error")),
        )
    return artifact
