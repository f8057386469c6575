"""Generations and their attribution: the only door from Django to the engine.

The flow, each step idempotent so that a redelivered task books nothing twice:

1. ``generation_record`` validates the audio and the request, stores the generation and a
   queued ``AttributionRun``, and enqueues ``attribution.prepare_run`` once the
   transaction commits.
2. ``attribution_run_prepare`` (GPU worker) loads the model version once per worker,
   checks its artifacts, encodes the query through the pretransform, unlearns it
   (Eq. 6 of Choi et al.), saves theta' for the shard tasks and returns the shard plan.
3. ``attribution_run_score_shard`` computes L(z_i, theta') for one contiguous slice of
   the training set; shards run on any number of workers (a Celery chord).
4. ``attribution_run_finish`` combines the shards into tau_i = L(z_i, theta') -
   L(z_i, theta0) (Eq. 2), stores the scores with their provenance and settles the
   generation on the ledger, in one transaction.

Scores do not depend on how the training set is sharded: every loss draws its timesteps
and noise from generators keyed by (item id, timestep index) (see ``engine/randomness``).
"""

from __future__ import annotations

import gc
import hashlib
import io
import logging
import math
import socket
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from attribution.models import AttributionRun, AttributionShard, Generation
from catalog.audio import file_sha256
from catalog.models import ModelArtifact, ModelVersion
from core.exceptions import ApplicationError
from core.services import audit_record

logger = logging.getLogger(__name__)

# Share of the progress bar each stage fills: preparing (load, encode, unlearn) then the
# shards; the last percent is the combine-and-settle step.
PREPARE_SHARE = 40
SHARDS_SHARE = 59
SILENCE_PEAK = 1e-4


# --- the engine, once per worker ------------------------------------------------------------


@dataclass
class EngineSession:
    """A loaded model version: model, training set and its encodings, artifact store."""

    model_version_id: int
    checkpoint_sha256: str
    model: Any  # engine.checkpoint.EngineModel
    train_set: Any  # engine.items.TrainingSet
    encoded: list
    store: Any  # engine.artifacts.ArtifactStore
    cfg: Any  # engine.config.EngineConfig


_SESSIONS: dict[str, EngineSession] = {}


def engine_config():
    """The engine configuration: the paper's defaults, overridden by ATTRIBUTION_ENGINE."""
    from attribution.engine.config import EngineConfig

    return EngineConfig(**settings.ATTRIBUTION_ENGINE)


def _artifact_root() -> Path:
    return Path(settings.ARTIFACTS_DIR) / "engine"


def engine_session_for(model_version: ModelVersion, progress=None) -> EngineSession:
    """Load a model version's model and training set, reusing this worker's last one.

    Only one model version is kept per worker process, so memory stays bounded however
    many jobs the worker runs. Raises ``ApplicationError`` naming what is missing or
    inconsistent (checkpoint, manifest, training set).
    """
    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.errors import EngineError
    from attribution.engine.items import encode_items, load_training_set

    key = model_version.checkpoint_sha256
    session = _SESSIONS.get(key)
    if session is not None:
        return session
    _SESSIONS.clear()
    gc.collect()
    if settings.ATTRIBUTION_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.ATTRIBUTION_TORCH_THREADS)

    # The catalog records the weights file; its folder holds the config and manifest.
    checkpoint = Path(model_version.checkpoint_path)
    folder = checkpoint.parent
    manifest = folder / "training_manifest.json"
    missing = [str(path) for path in (checkpoint, manifest) if not path.is_file()]
    if missing:
        raise ApplicationError(
            f"Model version {model_version.name!r} is missing {', '.join(missing)}.",
            field="model_version",
        )
    if file_sha256(checkpoint) != model_version.checkpoint_sha256:
        raise ApplicationError(
            f"The checkpoint file of model version {model_version.name!r} changed after it "
            "was registered (its SHA-256 no longer matches).",
            field="model_version",
        )
    positions = list(
        model_version.training_set_entries.order_by("position").values_list(
            "recording__isrc", flat=True
        )
    )
    if not positions:
        raise ApplicationError(
            f"Model version {model_version.name!r} has no training set registered.",
            field="model_version",
        )
    cfg = engine_config()
    try:
        model = load_engine_model(folder, device=cfg.device)
        train_set = load_training_set(manifest, model)
        manifest_isrcs = [str(item.metadata.get("isrc", "")) for item in train_set.items]
        if manifest_isrcs != positions:
            raise ApplicationError(
                f"The training manifest of model version {model_version.name!r} no longer "
                "matches its registered training set (order or recordings differ).",
                field="model_version",
            )
        encoded = encode_items(model, train_set.items, cfg, progress)
    except EngineError as exc:
        raise ApplicationError(str(exc), field="model_version") from exc
    session = EngineSession(
        model_version_id=model_version.pk,
        checkpoint_sha256=key,
        model=model,
        train_set=train_set,
        encoded=encoded,
        store=ArtifactStore(_artifact_root()),
        cfg=cfg,
    )
    _SESSIONS[key] = session
    return session


def engine_sessions_clear() -> None:
    """Forget the loaded model (tests; a worker that must release memory)."""
    _SESSIONS.clear()
    gc.collect()


# --- model version artifacts (Fisher, theta0 losses) ----------------------------------------


def _time_limit_message() -> str:
    return f"Exceeded its time limit of {settings.ATTRIBUTION_SOFT_TIME_LIMIT} s."


def _deadline() -> float:
    return time.monotonic() + settings.ATTRIBUTION_SOFT_TIME_LIMIT


def _raise_if_past(deadline: float | None) -> None:
    """Fail a run cleanly once its soft time limit has passed (checked between engine batches,
    so no signal has to arrive at a safe moment)."""
    if deadline is not None and time.monotonic() > deadline:
        raise TimeLimitExceededError(_time_limit_message())


class TimeLimitExceededError(ApplicationError):
    """A run took longer than ATTRIBUTION_SOFT_TIME_LIMIT; it fails cleanly, books nothing."""


class _ThrottledProgress:
    """Turns engine progress callbacks into at most one database write per second.

    With ``deadline`` (a ``time.monotonic()`` value) it also stops the work once the time
    limit has passed: the engine calls back between batches, so the run fails cleanly
    without relying on a signal arriving at a safe moment.
    """

    def __init__(
        self,
        write,
        low: int = 0,
        high: int = 100,
        every_seconds: float = 1.0,
        deadline: float | None = None,
    ):
        self.write, self.low, self.high = write, low, high
        self.every_seconds = every_seconds
        self.deadline = deadline
        self.last_write = 0.0
        self.last_percent = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        _raise_if_past(self.deadline)
        percent = self.low + (self.high - self.low) * done // max(total, 1)
        now = time.monotonic()
        if percent != self.last_percent and (
            now - self.last_write >= self.every_seconds or done == total
        ):
            self.last_write, self.last_percent = now, percent
            self.write(stage, percent)


def model_version_artifacts_compute(
    *, model_version: ModelVersion, actor: AbstractBaseUser | None = None, progress=None
) -> dict[str, ModelArtifact]:
    """Compute (or resume, or reuse) the Fisher and the theta0 losses of a model version.

    Both are stored by the engine keyed by the checkpoint's content hash and recorded as
    ``ModelArtifact`` rows whose status and progress the pages show. ``progress(stage,
    done, total)``, if given, is called too (a command's progress bar). Idempotent.
    """
    from attribution.engine.errors import EngineError
    from catalog.services import model_artifact_update

    kinds = (ModelArtifact.Kind.FISHER, ModelArtifact.Kind.BASE_LOSSES)
    current = {a.kind: a for a in model_version.artifacts.all()}
    if all(
        current.get(kind) is not None and current[kind].status == ModelArtifact.Status.READY
        for kind in kinds
    ):
        return current

    def mark(kind: str, status: str, **fields) -> ModelArtifact:
        return model_artifact_update(
            model_version=model_version, kind=kind, status=status, actor=actor, **fields
        )

    for kind in kinds:
        if current.get(kind) is None or current[kind].status != ModelArtifact.Status.READY:
            mark(kind, ModelArtifact.Status.COMPUTING, progress_percent=0)
    try:
        session = engine_session_for(model_version, progress)
        model, train_set, encoded, store, cfg = (
            session.model,
            session.train_set,
            session.encoded,
            session.store,
            session.cfg,
        )
        results: dict[str, ModelArtifact] = {}
        for kind in kinds:

            def write(stage: str, percent: int, kind: str = kind) -> None:
                mark(kind, ModelArtifact.Status.COMPUTING, progress_percent=percent)

            throttled = _ThrottledProgress(write)

            def report(stage: str, done: int, total: int, throttled=throttled) -> None:
                throttled(stage, done, total)
                if progress is not None:
                    progress(stage, done, total)

            if kind == ModelArtifact.Kind.FISHER:
                store.fisher(model, encoded, train_set, cfg, report)
                path = _artifact_file(model, store, "fisher", train_set, cfg)
            else:
                store.base_losses(model, encoded, train_set, cfg, report)
                path = _artifact_file(model, store, "losses", train_set, cfg)
            results[kind] = mark(kind, ModelArtifact.Status.READY, progress_percent=100, path=path)
        return results
    except (ApplicationError, EngineError) as exc:
        for kind in kinds:
            mark(kind, ModelArtifact.Status.FAILED, error=str(exc))
        raise ApplicationError(str(exc), field="model_version") from exc


@transaction.atomic
def model_version_artifacts_queue(
    *, model_version: ModelVersion, actor: AbstractBaseUser, reason: str = ""
) -> list[ModelArtifact]:
    """A catalog admin asks for a model version's Fisher and theta0 losses.

    The artifacts not ready yet are marked computing (0 %) and
    ``attribution.compute_model_artifacts`` is enqueued once the transaction commits (a
    GPU worker then fills in the progress). Refused when both are ready, or while one is
    already being computed (a second job would do the same work twice).
    """
    from catalog.services import model_artifact_update

    ModelVersion.objects.select_for_update().filter(pk=model_version.pk).first()
    kinds = (ModelArtifact.Kind.FISHER, ModelArtifact.Kind.BASE_LOSSES)
    current = {a.kind: a for a in model_version.artifacts.all()}
    busy = [
        k for k in kinds if k in current and current[k].status == ModelArtifact.Status.COMPUTING
    ]
    if busy:
        raise ApplicationError(
            f"Model version {model_version.name!r} is already computing "
            f"{', '.join(ModelArtifact.Kind(k).label for k in busy)}. If no worker is "
            f"working on it, run: manage.py compute_model_artifacts {model_version.pk}"
        )
    pending = [
        kind
        for kind in kinds
        if current.get(kind) is None or current[kind].status != ModelArtifact.Status.READY
    ]
    if not pending:
        raise ApplicationError(
            f"The artifacts of model version {model_version.name!r} are already computed."
        )
    artifacts = [
        model_artifact_update(
            model_version=model_version,
            kind=kind,
            status=ModelArtifact.Status.COMPUTING,
            actor=actor,
            progress_percent=0,
        )
        for kind in pending
    ]
    audit_record(
        actor=actor,
        action="model_version.artifacts_queue",
        obj=model_version,
        after={"kinds": pending},
        reason=reason,
    )

    from attribution.tasks import compute_model_artifacts

    model_version_id = model_version.pk
    transaction.on_commit(lambda: compute_model_artifacts.delay(model_version_id))
    return artifacts


def _artifact_file(model, store, kind: str, train_set, cfg) -> str:
    """Where the engine's artifact store keeps a finished artifact (see engine/artifacts)."""
    key = {"manifest": train_set.manifest_sha256, "n": len(train_set)}
    key.update(cfg.fisher_key() if kind == "fisher" else cfg.scoring_key())
    folder = store.folder(model, kind, key)
    return str(folder / ("fisher.pt" if kind == "fisher" else "losses.npy"))


def _artifacts_missing(model_version: ModelVersion) -> list[str]:
    ready = {
        a.kind
        for a in model_version.artifacts.all()
        if a.status == ModelArtifact.Status.READY and a.path and Path(a.path).is_file()
    }
    labels = dict(ModelArtifact.Kind.choices)
    return [
        labels[kind]
        for kind in (ModelArtifact.Kind.FISHER, ModelArtifact.Kind.BASE_LOSSES)
        if kind not in ready
    ]


# --- recording a generation -----------------------------------------------------------------


@dataclass(frozen=True)
class AudioSummary:
    sha256: str
    sample_rate: int
    frames: int
    channels: int

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate


def _audio_inspect(data: bytes) -> AudioSummary:
    """Decode generated audio; refuse undecodable, empty, non-finite or silent audio."""
    try:
        samples, sample_rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError) as exc:
        raise ApplicationError(
            f"The audio could not be decoded (WAV, FLAC or OGG expected): {exc}", field="audio"
        ) from exc
    if samples.shape[0] == 0:
        raise ApplicationError("The audio is empty.", field="audio")
    if not np.isfinite(samples).all():
        raise ApplicationError("The audio contains NaN or infinite samples.", field="audio")
    if float(np.abs(samples).max()) < SILENCE_PEAK:
        raise ApplicationError("The audio is silent.", field="audio")
    return AudioSummary(
        sha256=hashlib.sha256(data).hexdigest(),
        sample_rate=int(sample_rate),
        frames=int(samples.shape[0]),
        channels=int(samples.shape[1]),
    )


def _model_max_seconds(model_version: ModelVersion) -> float:
    config = model_version.config
    return float(config["sample_size"]) / float(config["sample_rate"])


def _fingerprint(**fields: Any) -> dict[str, str]:
    return {key: str(value) for key, value in fields.items()}


@transaction.atomic
def generation_record(
    *,
    model_version: ModelVersion,
    prompt: str,
    audio: bytes,
    revenue_minor: int,
    currency: str,
    requested_by: AbstractBaseUser,
    idempotency_key: str,
    duration_seconds: Decimal | None = None,
    source: str = Generation.Source.UPLOADED,
    seed: int | None = None,
) -> Generation:
    """Record a generation and queue its attribution (idempotent by ``idempotency_key``).

    The same key with the same request returns the existing generation and queues
    nothing; the same key with a different request is refused.
    """
    idempotency_key = (idempotency_key or "").strip()
    if not idempotency_key or len(idempotency_key) > 128:
        raise ApplicationError(
            "An idempotency key of 1 to 128 characters is required.", field="idempotency_key"
        )
    prompt = (prompt or "").strip()
    if not prompt:
        raise ApplicationError("A generation needs its prompt.", field="prompt")
    if isinstance(revenue_minor, bool) or not isinstance(revenue_minor, int) or revenue_minor < 0:
        raise ApplicationError(
            "Revenue must be a non-negative whole number of minor units.", field="revenue_minor"
        )
    currency = (currency or "").strip().upper()
    if len(currency) != 3 or not currency.isalpha():
        raise ApplicationError("Currency must be a 3-letter ISO 4217 code.", field="currency")
    summary = _audio_inspect(audio)
    measured = Decimal(str(round(summary.seconds, 3)))
    if duration_seconds is not None and abs(Decimal(duration_seconds) - measured) > Decimal("0.5"):
        raise ApplicationError(
            f"The stated duration {duration_seconds} s does not match the audio ({measured} s).",
            field="duration_seconds",
        )
    max_seconds = _model_max_seconds(model_version)
    if summary.seconds > max_seconds + 1e-6:
        raise ApplicationError(
            f"The audio is {summary.seconds:.2f} s long; model version {model_version.name!r} "
            f"generates at most {max_seconds:.2f} s.",
            field="audio",
        )

    request = _fingerprint(
        model_version=model_version.pk,
        prompt=prompt,
        audio_sha256=summary.sha256,
        revenue_minor=revenue_minor,
        currency=currency,
    )
    existing = (
        Generation.objects.select_for_update().filter(idempotency_key=idempotency_key).first()
    )
    if existing is not None:
        stored = _fingerprint(
            model_version=existing.model_version_id,
            prompt=existing.prompt,
            audio_sha256=existing.audio_sha256,
            revenue_minor=existing.revenue_minor,
            currency=existing.currency,
        )
        if stored != request:
            raise ApplicationError(
                "This idempotency key was already used for a different generation.",
                field="idempotency_key",
            )
        return existing

    generation = Generation(
        model_version=model_version,
        prompt=prompt,
        duration_seconds=measured,
        audio_sha256=summary.sha256,
        revenue_minor=revenue_minor,
        currency=currency,
        requested_by=requested_by,
        idempotency_key=idempotency_key,
        source=source,
        seed=seed,
    )
    generation.audio.save(f"{summary.sha256}.wav", ContentFile(audio), save=False)
    generation.full_clean()
    generation.save()
    audit_record(actor=requested_by, action="generation.record", obj=generation, after=request)
    attribution_run_queue(generation=generation, actor=None)
    return generation


def wav_float_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """32-bit float WAV of ``samples`` (frames, channels), the same bytes for the same samples.

    libsndfile adds a PEAK chunk with a wall-clock timestamp to float WAVs. The file's hash
    names the generation's audio and keys its unlearning draws, so the chunk is dropped:
    the same sampled audio must give the same hash, and so the same scores, on every run.
    """
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format="WAV", subtype="FLOAT")
    data = buffer.getvalue()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", data[:12]
    chunks, offset = [], 12
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset + 4 : offset + 8], "little")
        end = offset + 8 + size + (size & 1)  # chunks are padded to an even length
        if data[offset : offset + 4] != b"PEAK":
            chunks.append(data[offset:end])
        offset = end
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def generation_generate(
    *,
    model_version: ModelVersion,
    prompt: str,
    seconds_total: float,
    seed: int,
    revenue_minor: int,
    currency: str,
    requested_by: AbstractBaseUser,
    idempotency_key: str,
    steps: int | None = None,
) -> Generation:
    """Generate audio with the model version's sampler, then record it (idempotent).

    A repeated call with the same key returns the recorded generation without sampling
    again.
    """
    from attribution.engine.sampling import generate

    existing = Generation.objects.filter(idempotency_key=(idempotency_key or "").strip()).first()
    if existing is not None:
        if existing.prompt != prompt.strip() or existing.model_version_id != model_version.pk:
            raise ApplicationError(
                "This idempotency key was already used for a different generation.",
                field="idempotency_key",
            )
        return existing
    max_seconds = _model_max_seconds(model_version)
    if not 0 < seconds_total <= max_seconds:
        raise ApplicationError(
            f"Duration must be between 0 and {max_seconds:.2f} s for this model.",
            field="seconds_total",
        )
    session = engine_session_for(model_version)
    options = {"steps": steps} if steps else {}
    audio, sample_rate = generate(
        session.model.module,
        session.model.config,
        prompt,
        seconds_total,
        seed,
        device=session.cfg.device,
        **options,
    )  # (C, T)
    return generation_record(
        model_version=model_version,
        prompt=prompt,
        audio=wav_float_bytes(audio.detach().cpu().numpy().T, sample_rate),
        revenue_minor=revenue_minor,
        currency=currency,
        requested_by=requested_by,
        idempotency_key=idempotency_key,
        source=Generation.Source.GENERATED,
        seed=seed,
    )


@transaction.atomic
def attribution_run_queue(
    *, generation: Generation, actor: AbstractBaseUser | None, reason: str = ""
) -> AttributionRun:
    """Create a queued run for a generation and enqueue it when the transaction commits.

    A generation that already has a succeeded run, or a run still queued or running, is
    refused: a generation is attributed and paid once.
    """
    Generation.objects.select_for_update().filter(pk=generation.pk).first()
    runs = AttributionRun.objects.filter(generation=generation)
    if runs.filter(status=AttributionRun.Status.SUCCEEDED).exists():
        raise ApplicationError("This generation has already been attributed and settled.")
    active = runs.filter(
        status__in=[
            AttributionRun.Status.QUEUED,
            AttributionRun.Status.RUNNING,
            AttributionRun.Status.RETRYING,
        ]
    ).first()
    if active is not None:
        raise ApplicationError(f"Attribution run {active.pk} for this generation is still active.")
    model_version = generation.model_version
    cfg = engine_config()
    run = AttributionRun.objects.create(
        generation=generation,
        model_version=model_version,
        checkpoint_sha256=model_version.checkpoint_sha256,
        manifest_sha256=model_version.manifest_sha256,
        engine_config=cfg.to_dict(),
        seed=cfg.seed,
        requested_by=actor,
    )
    Generation.objects.filter(pk=generation.pk).update(
        status=Generation.Status.ATTRIBUTING, error=""
    )
    if actor is not None:
        audit_record(actor=actor, action="attribution_run.rerun", obj=run, reason=reason)

    from attribution.tasks import prepare_run

    transaction.on_commit(lambda: prepare_run.delay(run.pk))
    return run


def attribution_run_rerun(
    *, run: AttributionRun, actor: AbstractBaseUser, reason: str = ""
) -> AttributionRun:
    """An admin re-runs a failed run: a new run for the same generation."""
    if run.status != AttributionRun.Status.FAILED:
        raise ApplicationError("Only a failed attribution run can be re-run.")
    return attribution_run_queue(generation=run.generation, actor=actor, reason=reason)


# --- run state --------------------------------------------------------------------------------


def _progress_write(run_id: int, stage: str, percent: int) -> None:
    run = AttributionRun.objects.only("started_at").get(pk=run_id)
    eta = None
    if run.started_at is not None and 0 < percent < 100:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        eta = math.ceil(elapsed * (100 - percent) / percent)
    AttributionRun.objects.filter(pk=run_id, status=AttributionRun.Status.RUNNING).update(
        progress_percent=min(percent, 100), progress_stage=stage[:32], eta_seconds=eta
    )


def attribution_run_fail(*, run_id: int, reason: str) -> None:
    """Mark a run (and its generation) failed with a readable reason; books nothing."""
    with transaction.atomic():
        run = AttributionRun.objects.select_for_update().get(pk=run_id)
        if run.status == AttributionRun.Status.SUCCEEDED:
            return
        run.status = AttributionRun.Status.FAILED
        run.error = reason
        run.eta_seconds = None
        run.finished_at = timezone.now()
        run.save(update_fields=["status", "error", "eta_seconds", "finished_at"])
        Generation.objects.filter(pk=run.generation_id).update(
            status=Generation.Status.FAILED, error=reason
        )
        audit_record(actor=None, action="attribution_run.fail", obj=run, reason=reason)
    logger.warning("attribution run %s failed: %s", run_id, reason)


def attribution_run_mark_retrying(*, run_id: int, reason: str) -> None:
    """A transient error: the task will be retried with backoff."""
    AttributionRun.objects.filter(
        pk=run_id, status__in=[AttributionRun.Status.QUEUED, AttributionRun.Status.RUNNING]
    ).update(status=AttributionRun.Status.RETRYING, error=f"Retrying after: {reason}")
    AttributionRun.objects.filter(pk=run_id).update(retries=F("retries") + 1)


@dataclass(frozen=True)
class ShardPlan:
    run_id: int
    shard_count: int


def _shard_bounds(n_items: int, shard_size: int, index: int) -> tuple[int, int]:
    start = index * shard_size
    return start, min(start + shard_size, n_items)


def attribution_run_prepare(*, run_id: int) -> ShardPlan | None:
    """Unlearn the generation (Eq. 6) and plan the shards; ``None`` when nothing is left.

    Safe to repeat: a run that already succeeded or failed is left alone, and theta'
    already saved by an earlier delivery is reused.
    """
    from attribution.engine.errors import EngineError
    from attribution.engine.items import encode_item, make_query
    from attribution.engine.unlearn import unlearn

    with transaction.atomic():
        run = AttributionRun.objects.select_for_update().get(pk=run_id)
        if run.status in (AttributionRun.Status.SUCCEEDED, AttributionRun.Status.FAILED):
            return None
        run.status = AttributionRun.Status.RUNNING
        run.attempts += 1
        run.error = ""
        if run.started_at is None:
            run.started_at = timezone.now()
        run.save(update_fields=["status", "attempts", "error", "started_at"])

    generation = run.generation
    model_version = run.model_version
    missing = _artifacts_missing(model_version)
    if missing:
        attribution_run_fail(
            run_id=run_id,
            reason=(
                f"Model version {model_version.name!r} is missing: {', '.join(missing)}. "
                f"Compute them with: manage.py compute_model_artifacts {model_version.pk}"
            ),
        )
        return None
    progress = _ThrottledProgress(
        lambda stage, percent: _progress_write(run_id, stage, percent),
        0,
        PREPARE_SHARE,
        deadline=_deadline(),
    )
    try:
        session = engine_session_for(model_version)
        n_items = len(session.train_set)
        shard_size = max(1, int(settings.ATTRIBUTION_SHARD_SIZE))
        shard_count = math.ceil(n_items / shard_size)
        weights_path = Path(settings.ARTIFACTS_DIR) / "runs" / str(run.pk) / "theta_prime.pt"
        if not (
            run.unlearned_weights_sha256
            and weights_path.is_file()
            and file_sha256(weights_path) == run.unlearned_weights_sha256
        ):
            with generation.audio.open("rb") as handle:
                samples, sample_rate = soundfile.read(handle, dtype="float32", always_2d=True)
            query = make_query(
                samples.T,  # (C, T)
                sample_rate,
                generation.prompt,
                session.model,
                # Keyed by content: the same query gives the same draws, hence the same scores.
                item_id=f"generation-audio:{generation.audio_sha256}",
            )
            fisher = session.store.fisher(
                session.model, session.encoded, session.train_set, session.cfg
            )
            encoded_query = encode_item(session.model, query, session.cfg)
            theta_prime = unlearn(
                session.model, encoded_query, fisher, session.cfg, n_items, progress
            )
            sha = _save_tensors(theta_prime, weights_path)
            AttributionRun.objects.filter(pk=run_id).update(
                unlearned_weights_path=str(weights_path), unlearned_weights_sha256=sha
            )
        AttributionRun.objects.filter(pk=run_id).update(shard_count=shard_count)
        _progress_write(run_id, "scoring", PREPARE_SHARE)
        return ShardPlan(run_id=run_id, shard_count=shard_count)
    except (ApplicationError, EngineError) as exc:
        attribution_run_fail(run_id=run_id, reason=str(exc))
        return None


def _save_tensors(tensors: dict, path: Path) -> str:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(
        {name: tensor.detach().cpu().contiguous() for name, tensor in tensors.items()}, buffer
    )
    data = buffer.getvalue()
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(path)
    return hashlib.sha256(data).hexdigest()


def _load_theta_prime(run: AttributionRun) -> dict:
    import torch

    path = Path(run.unlearned_weights_path)
    if not path.is_file() or file_sha256(path) != run.unlearned_weights_sha256:
        raise ApplicationError(
            f"The unlearned weights of run {run.pk} are missing or corrupted; re-run it."
        )
    return torch.load(path, map_location="cpu", weights_only=True)


def attribution_run_score_shard(*, run_id: int, shard_index: int) -> int | None:
    """L(z_i, theta') for one slice of the training set (Eq. 2, first term); idempotent."""
    from attribution.engine.errors import EngineError
    from attribution.engine.loss import dataset_losses
    from attribution.engine.unlearn import parameters_swapped

    run = AttributionRun.objects.select_related("model_version").get(pk=run_id)
    if run.status not in (AttributionRun.Status.RUNNING, AttributionRun.Status.RETRYING):
        return None
    existing = AttributionShard.objects.filter(run_id=run_id, index=shard_index).first()
    if existing is not None:
        return existing.pk
    try:
        session = engine_session_for(run.model_version)
        start, stop = _shard_bounds(
            len(session.train_set), int(settings.ATTRIBUTION_SHARD_SIZE), shard_index
        )
        if start >= stop:
            raise ApplicationError(f"Shard {shard_index} of run {run_id} is out of range.")
        theta_prime = _load_theta_prime(run)
        deadline = _deadline()

        def check_deadline(stage: str, done: int, total: int) -> None:
            _raise_if_past(deadline)

        with parameters_swapped(session.model, theta_prime):
            losses = dataset_losses(
                session.model,
                session.encoded[start:stop],
                session.cfg,
                check_deadline,
                stream="score",
            )
    except (ApplicationError, EngineError) as exc:
        attribution_run_fail(run_id=run_id, reason=str(exc))
        return None
    with transaction.atomic():
        shard, _ = AttributionShard.objects.get_or_create(
            run_id=run_id,
            index=shard_index,
            defaults={
                "start": start,
                "stop": stop,
                "unlearned_losses": [float(x) for x in losses],
                "worker": socket.gethostname(),
            },
        )
    done = AttributionShard.objects.filter(run_id=run_id).count()
    total = max(run.shard_count, 1)
    _progress_write(run_id, "scoring", PREPARE_SHARE + SHARDS_SHARE * done // total)
    return shard.pk


def attribution_run_finish(*, run_id: int):
    """Combine the shards into Eq. 2 scores, store them and settle, in one transaction.

    Returns the ledger's journal entry (``None`` when the run failed). Repeating it after
    success returns the same entry and books nothing.
    """
    from attribution.engine.errors import EngineError
    from attribution.engine.scoring import library_versions
    from ledger.services import generation_settle

    run = AttributionRun.objects.select_related("model_version", "generation").get(pk=run_id)
    if run.status == AttributionRun.Status.FAILED:
        return None
    if run.status == AttributionRun.Status.SUCCEEDED:
        return generation_settle(attribution_run=run)
    try:
        session = engine_session_for(run.model_version)
        base = session.store.base_losses(
            session.model, session.encoded, session.train_set, session.cfg
        )
    except (ApplicationError, EngineError) as exc:
        attribution_run_fail(run_id=run_id, reason=str(exc))
        return None
    shards = list(AttributionShard.objects.filter(run_id=run_id).order_by("index"))
    unlearned: list[float] = []
    for expected, shard in enumerate(shards):
        if shard.index != expected or shard.start != len(unlearned):
            break
        unlearned.extend(shard.unlearned_losses)
    if len(unlearned) != len(base) or len(shards) != run.shard_count:
        attribution_run_fail(
            run_id=run_id,
            reason=f"Only {len(shards)} of {run.shard_count} shards were scored; re-run it.",
        )
        return None
    tau = np.asarray(unlearned, dtype=np.float64) - np.asarray(base, dtype=np.float64)  # (N,)
    scores = [float(x) for x in tau]
    with transaction.atomic():
        locked = AttributionRun.objects.select_for_update().get(pk=run_id)
        if locked.status == AttributionRun.Status.SUCCEEDED:
            return generation_settle(attribution_run=locked)
        locked.scores = scores
        locked.scores_sha256 = hashlib.sha256(np.ascontiguousarray(tau).tobytes()).hexdigest()
        locked.library_versions = library_versions()
        locked.engine_config = {
            **session.cfg.to_dict(),
            "engine_checkpoint_state_sha256": session.model.checkpoint_sha256,
            "training_manifest_sha256": session.train_set.manifest_sha256,
            "shard_size": int(settings.ATTRIBUTION_SHARD_SIZE),
        }
        locked.status = AttributionRun.Status.SUCCEEDED
        locked.progress_percent = 100
        locked.progress_stage = "done"
        locked.eta_seconds = 0
        locked.finished_at = timezone.now()
        locked.save(
            update_fields=[
                "scores",
                "scores_sha256",
                "library_versions",
                "engine_config",
                "status",
                "progress_percent",
                "progress_stage",
                "eta_seconds",
                "finished_at",
            ]
        )
        entry = generation_settle(attribution_run=locked)
        Generation.objects.filter(pk=locked.generation_id).update(
            status=Generation.Status.SETTLED, error=""
        )
        audit_record(
            actor=None,
            action="attribution_run.succeed",
            obj=locked,
            after={"scores_sha256": locked.scores_sha256, "journal_entry": entry.pk},
        )
    return entry
