"""Attribution runs: the engine's pipeline stages as Celery-sized steps, each idempotent so that
a redelivered task books nothing twice.

1. ``attribution_run_queue`` records a queued run with the method and engine configuration
   every later step uses, and enqueues ``attribution.prepare_run`` once the transaction commits.
2. ``attribution_run_prepare`` (GPU worker) loads the model version once per worker, finds its
   prepared artifacts, computes the query state (for unlearning: theta' of Eq. 6), saves it for
   the shard tasks, and fixes the shard plan.
3. ``attribution_run_score_shard`` scores one contiguous slice of the training set; shards run
   on any number of workers (a Celery chord).
4. ``attribution_run_finish`` combines the shards into ``Scores`` (the engine's ``combine``:
   tau, its hash and the provenance), stores them and sends ``run_succeeded`` in the same
   transaction; the ledger settles the generation on that signal, so scores and money are
   committed together or not at all.

These are the stages ``attribution.engine.pipeline.attribute`` composes in one process, so the
scores are the same bytes either way. Every draw of the engine is keyed by (seed, stream, item
id, timestep index), never by worker or batch.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import soundfile
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from attribution.methods import AUDIT_METHOD
from attribution.models import AttributionRun, AttributionShard, Generation
from attribution.services.artifacts import (
    model_version_artifacts_mark_stale,
    model_version_artifacts_missing,
)
from attribution.services.dispatch import run_step_send_on_commit
from attribution.services.progress import (
    Heartbeat,
    ThrottledProgress,
    deadline,
    raise_if_past,
)
from attribution.services.workers import (
    ArtifactsNotReadyError,
    LoadedModel,
    configured_method,
    engine_config,
    loaded_model_for,
    method_for,
    run_engine_config,
)
from attribution.signals import run_succeeded
from catalog.audio import file_sha256
from core.exceptions import ApplicationError
from core.services import audit_record

if TYPE_CHECKING:  # the engine (torch) is imported where it runs, not when Django starts
    from attribution.engine.config import EngineConfig
    from attribution.engine.pipeline import AttributionMethod, Prepared

logger = logging.getLogger(__name__)

# Share of the progress bar each stage fills: preparing (load, encode, unlearn) then the
# shards; the last percent is the combine-and-settle step.
PREPARE_SHARE = 40
SHARDS_SHARE = 59


@transaction.atomic
def attribution_run_queue(
    *, generation: Generation, actor: AbstractBaseUser | None, reason: str = ""
) -> AttributionRun:
    """Create a queued settlement run for a generation (the configured method) and enqueue it
    when the transaction commits.

    A generation that already has a succeeded settlement run, or one still queued or running,
    is refused: a generation is attributed and paid once.
    """
    Generation.objects.select_for_update().filter(pk=generation.pk).first()
    runs = AttributionRun.objects.filter(
        generation=generation, purpose=AttributionRun.Purpose.SETTLEMENT
    )
    if runs.filter(status=AttributionRun.Status.SUCCEEDED).exists():
        raise ApplicationError("This generation has already been attributed and settled.")
    _refuse_active(runs)
    run = _run_create(
        generation, configured_method().name, AttributionRun.Purpose.SETTLEMENT, actor
    )
    Generation.objects.filter(pk=generation.pk).update(
        status=Generation.Status.ATTRIBUTING, error=""
    )
    if actor is not None:
        audit_record(actor=actor, action="attribution_run.rerun", obj=run, reason=reason)
    # Sent by name (the tasks module imports this one) once the run is committed; a broker
    # that cannot take it leaves the run queued for the reconciler, and the caller no error.
    run_step_send_on_commit(run_id=run.pk)
    return run


@transaction.atomic
def attribution_run_audit(
    *, generation: Generation, actor: AbstractBaseUser, reason: str = ""
) -> AttributionRun:
    """Finance or a catalog admin re-attributes a settled generation with the exact method
    (``AUDIT_METHOD``). The audit run books nothing; its scores stand beside the settlement's.

    Refused before the generation is settled, when the settlement itself used the exact
    method, while an audit is active, and once an audit has succeeded (the method is
    deterministic: a second audit would give the same bytes).
    """
    Generation.objects.select_for_update().filter(pk=generation.pk).first()
    runs = AttributionRun.objects.filter(generation=generation)
    settled = runs.filter(
        purpose=AttributionRun.Purpose.SETTLEMENT, status=AttributionRun.Status.SUCCEEDED
    ).first()
    if settled is None:
        raise ApplicationError("Only a settled generation can be audited.")
    if settled.method == AUDIT_METHOD:
        raise ApplicationError("This generation was paid by the exact method already.")
    audits = runs.filter(purpose=AttributionRun.Purpose.AUDIT, method=AUDIT_METHOD)
    if audits.filter(status=AttributionRun.Status.SUCCEEDED).exists():
        raise ApplicationError("This generation has already been audited.")
    _refuse_active(audits)
    run = _run_create(generation, AUDIT_METHOD, AttributionRun.Purpose.AUDIT, actor)
    audit_record(actor=actor, action="attribution_run.audit", obj=run, reason=reason)
    run_step_send_on_commit(run_id=run.pk)
    return run


@transaction.atomic
def attribution_run_second_opinion(
    *,
    generation: Generation,
    method: str,
    actor: AbstractBaseUser,
    reason: str = "",
    force: bool = False,
) -> AttributionRun:
    """Finance or a catalog admin re-attributes a settled generation with any registered
    method (``attribution.engine.methods.METHODS``) as an audit run: it goes through the same
    staged pipeline, books nothing, and the generation page shows what it would have paid.

    Refused for an unknown method, before the generation is settled, while a run of that
    method for this generation is still active, (unless ``force``) when one has succeeded (the
    paying run included: every method is deterministic, a repeat gives the same scores), and
    when the model version lacks the artifacts the method reads.
    """
    name = method_for(method).name  # an unknown name is refused, listing the known ones
    Generation.objects.select_for_update().filter(pk=generation.pk).first()
    runs = AttributionRun.objects.filter(generation=generation)
    if not runs.filter(
        purpose=AttributionRun.Purpose.SETTLEMENT, status=AttributionRun.Status.SUCCEEDED
    ).exists():
        raise ApplicationError("Only a settled generation can be given a second opinion.")
    same = runs.filter(method=name)
    _refuse_active(same)  # even when forced: two identical runs at once would only race
    done = same.filter(status=AttributionRun.Status.SUCCEEDED).first()
    if done is not None and not force:
        raise ApplicationError(
            f"Run {done.pk} already attributed this generation with {name}; "
            "force a new run to repeat it.",
            field="method",
        )
    missing = model_version_artifacts_missing(generation.model_version, name)
    if missing:
        # compute_model_artifacts computes the configured method's artifacts and the exact one's
        configured = "" if name == AUDIT_METHOD else f" with ATTRIBUTION_METHOD={name}"
        raise ApplicationError(
            f"Model version {generation.model_version.name!r} lacks what {name} reads: "
            f"{', '.join(missing)}. Compute them{configured}: manage.py "
            f"compute_model_artifacts {generation.model_version_id}",
            field="method",
        )
    run = _run_create(generation, name, AttributionRun.Purpose.AUDIT, actor)
    audit_record(
        actor=actor,
        action="attribution_run.second_opinion",
        obj=run,
        after={"method": name, "force": force},
        reason=reason,
    )
    run_step_send_on_commit(run_id=run.pk)
    return run


def _refuse_active(runs) -> None:
    active = runs.filter(
        status__in=[
            AttributionRun.Status.QUEUED,
            AttributionRun.Status.RUNNING,
            AttributionRun.Status.RETRYING,
        ]
    ).first()
    if active is not None:
        raise ApplicationError(f"Attribution run {active.pk} for this generation is still active.")


def _run_create(
    generation: Generation, method_name: str, purpose: str, actor: AbstractBaseUser | None
) -> AttributionRun:
    model_version = generation.model_version
    cfg, method = engine_config(), method_for(method_name)
    return AttributionRun.objects.create(
        generation=generation,
        model_version=model_version,
        method=method.name,
        purpose=purpose,
        checkpoint_sha256=model_version.checkpoint_sha256,
        manifest_sha256=model_version.manifest_sha256,
        engine_config=cfg.to_dict(),
        seed=cfg.seed,
        requested_by=actor,
    )


def attribution_run_rerun(
    *, run: AttributionRun, actor: AbstractBaseUser, reason: str = ""
) -> AttributionRun:
    """An admin re-runs a failed run: a new run for the same generation (and purpose)."""
    if run.status != AttributionRun.Status.FAILED:
        raise ApplicationError("Only a failed attribution run can be re-run.")
    if run.purpose == AttributionRun.Purpose.AUDIT and run.method == AUDIT_METHOD:
        return attribution_run_audit(generation=run.generation, actor=actor, reason=reason)
    if run.purpose == AttributionRun.Purpose.AUDIT:
        return attribution_run_second_opinion(
            generation=run.generation, method=run.method, actor=actor, reason=reason
        )
    return attribution_run_queue(generation=run.generation, actor=actor, reason=reason)


# --- run state --------------------------------------------------------------------------------


def _progress_write(run_id: int, stage: str, percent: int) -> None:
    run = AttributionRun.objects.only("started_at").get(pk=run_id)
    eta = None
    if run.started_at is not None and 0 < percent < 100:
        elapsed = (timezone.now() - run.started_at).total_seconds()
        eta = math.ceil(elapsed * (100 - percent) / percent)
    AttributionRun.objects.filter(pk=run_id, status=AttributionRun.Status.RUNNING).update(
        progress_percent=min(percent, 100),
        progress_stage=stage[:32],
        eta_seconds=eta,
        heartbeat_at=timezone.now(),
    )


def _heartbeat(run_id: int) -> None:
    """A sign of life while a step works without moving the progress bar (a long shard)."""
    AttributionRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())


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
        if run.purpose == AttributionRun.Purpose.SETTLEMENT:  # a failed audit pays nothing
            Generation.objects.filter(pk=run.generation_id).update(
                status=Generation.Status.FAILED, error=reason
            )
        audit_record(actor=None, action="attribution_run.fail", obj=run, reason=reason)
    logger.warning("attribution run %s failed: %s", run_id, reason)


def attribution_run_mark_retrying(*, run_id: int, reason: str) -> None:
    """A transient error: the task will be retried with backoff."""
    AttributionRun.objects.filter(
        pk=run_id, status__in=[AttributionRun.Status.QUEUED, AttributionRun.Status.RUNNING]
    ).update(
        status=AttributionRun.Status.RETRYING,
        error=f"Retrying after: {reason}",
        heartbeat_at=timezone.now(),
    )
    AttributionRun.objects.filter(pk=run_id).update(retries=F("retries") + 1)


# --- the pipeline stages ----------------------------------------------------------------------


@dataclass(frozen=True)
class ShardPlan:
    run_id: int
    shard_count: int


@dataclass
class _RunEngine:
    """What every step of a run needs: its recorded method and config, the loaded model, and
    the method's prepared stage (artifacts must already exist: nothing is computed here)."""

    method: AttributionMethod
    cfg: EngineConfig
    loaded: LoadedModel
    prepared: Prepared


def _run_engine(run: AttributionRun, progress=None) -> _RunEngine:
    method = method_for(run.method)
    cfg = run_engine_config(run)
    loaded = loaded_model_for(run.model_version, device=cfg.device)
    prepared = loaded.prepare(method, cfg, progress, compute=False)
    return _RunEngine(method=method, cfg=cfg, loaded=loaded, prepared=prepared)


def _query_state_path(run: AttributionRun) -> Path:
    return Path(settings.ARTIFACTS_DIR) / "runs" / str(run.pk) / "query_state.pt"


def generation_query(generation: Generation, model):
    """The generation as the engine's query z_hat: its audio, prompt and duration, keyed by the
    audio's content (the same audio gives the same draws, hence the same scores)."""
    from attribution.engine.items import make_query

    with generation.audio.open("rb") as handle:
        samples, sample_rate = soundfile.read(handle, dtype="float32", always_2d=True)
    return make_query(
        samples.T,  # (C, T)
        sample_rate,
        generation.prompt,
        model,
        item_id=f"generation-audio:{generation.audio_sha256}",
    )


def attribution_run_prepare(*, run_id: int) -> ShardPlan | None:
    """Compute the run's query state and fix its shard plan; ``None`` when nothing is left.

    Safe to repeat: a run that already succeeded or failed is left alone, and a query state
    already saved by an earlier delivery is reused.
    """
    from attribution.engine.errors import EngineError
    from attribution.engine.pipeline import slice_bounds
    from attribution.engine.unlearn import unresolved_update_message

    with transaction.atomic():
        run = AttributionRun.objects.select_for_update().get(pk=run_id)
        if run.status in (AttributionRun.Status.SUCCEEDED, AttributionRun.Status.FAILED):
            return None
        run.status = AttributionRun.Status.RUNNING
        run.attempts += 1
        run.error = ""
        run.heartbeat_at = timezone.now()
        if run.started_at is None:
            run.started_at = run.heartbeat_at
        run.save(update_fields=["status", "attempts", "error", "started_at", "heartbeat_at"])

    generation = run.generation
    model_version = run.model_version
    missing = model_version_artifacts_missing(model_version, run.method)
    if missing:
        attribution_run_fail(
            run_id=run_id,
            reason=(
                f"Model version {model_version.name!r} is missing: {', '.join(missing)}. "
                f"Compute them with: manage.py compute_model_artifacts {model_version.pk}"
            ),
        )
        return None
    progress = ThrottledProgress(
        lambda stage, percent: _progress_write(run_id, stage, percent),
        0,
        PREPARE_SHARE,
        limit=deadline(),
    )
    try:
        engine = _run_engine(run, progress)
        shard_size = run.shard_size or max(1, int(settings.ATTRIBUTION_SHARD_SIZE))
        shard_count = len(slice_bounds(len(engine.loaded.train_set), shard_size))
        path = _query_state_path(run)
        reusable = (
            run.query_state_sha256
            and path.is_file()
            and str(path) == run.query_state_path
            and file_sha256(path) == run.query_state_sha256
        )
        if not reusable:
            query = generation_query(generation, engine.loaded.model)
            state = engine.method.query_state(engine.prepared, query, progress)
            statistics = state.meta.get("statistics", {})
            refusal = unresolved_update_message(statistics)
            if refusal is not None:  # rounding noise would pay the holders: nothing is booked
                attribution_run_fail(run_id=run_id, reason=refusal)
                return None
            if statistics.get("update_regime") == "beyond_first_order":
                logger.warning(
                    "run %s: the unlearning step moves the weights by %.2e of their norm, "
                    "beyond the first-order regime the scores rest on",
                    run_id,
                    statistics["update_relative_norm"],
                )
            sha = state.save(path)
            AttributionRun.objects.filter(pk=run_id).update(
                query_state_path=str(path), query_state_sha256=sha
            )
        AttributionRun.objects.filter(pk=run_id).update(
            shard_count=shard_count, shard_size=shard_size
        )
        _progress_write(run_id, "scoring", PREPARE_SHARE)
        return ShardPlan(run_id=run_id, shard_count=shard_count)
    except ArtifactsNotReadyError as exc:
        reason = (
            f"{exc} The run records the engine configuration of ATTRIBUTION_ENGINE where it was "
            f"queued; compute the artifacts with that configuration: manage.py "
            f"compute_model_artifacts {model_version.pk}"
        )
        model_version_artifacts_mark_stale(model_version=model_version, reason=reason)
        attribution_run_fail(run_id=run_id, reason=reason)
        return None
    except (ApplicationError, EngineError) as exc:
        attribution_run_fail(run_id=run_id, reason=str(exc))
        return None


def attribution_run_score_shard(*, run_id: int, shard_index: int) -> int | None:
    """The method's values for one slice of the training set; idempotent."""
    from attribution.engine.errors import EngineError
    from attribution.engine.pipeline import score_slice, slice_bounds

    run = AttributionRun.objects.select_related("model_version").get(pk=run_id)
    if run.status not in (AttributionRun.Status.RUNNING, AttributionRun.Status.RETRYING):
        return None
    existing = AttributionShard.objects.filter(run_id=run_id, index=shard_index).first()
    if existing is not None:
        return existing.pk
    try:
        engine = _run_engine(run)
        bounds = slice_bounds(len(engine.loaded.train_set), run.shard_size)
        if not 0 <= shard_index < len(bounds) or len(bounds) != run.shard_count:
            raise ApplicationError(f"Shard {shard_index} of run {run_id} is out of range.")
        start, stop = bounds[shard_index]
        state = engine.loaded.load_query_state(run.query_state_path, run.query_state_sha256)
        limit = deadline()
        heartbeat = Heartbeat(lambda: _heartbeat(run_id))
        heartbeat.beat()

        def check_deadline(stage: str, done: int, total: int) -> None:
            raise_if_past(limit)
            heartbeat()

        piece = score_slice(engine.method, engine.prepared, state, start, stop, check_deadline)
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
                "values": [float(x) for x in piece.values],
                "worker": f"{socket.gethostname()}:{os.getpid()}",
            },
        )
    done = AttributionShard.objects.filter(run_id=run_id).count()
    total = max(run.shard_count, 1)
    _progress_write(run_id, "scoring", PREPARE_SHARE + SHARDS_SHARE * done // total)
    return shard.pk


def attribution_run_finish(*, run_id: int) -> AttributionRun | None:
    """Combine the shards into the run's scores and store them; ``run_succeeded`` is sent in
    the same transaction (the ledger settles on it).

    Returns the succeeded run (``None`` when the run failed). Repeating it after success
    returns the run and books nothing.
    """
    import numpy as np

    from attribution.engine.errors import EngineError
    from attribution.engine.pipeline import SliceValues, combine

    run = AttributionRun.objects.select_related("model_version", "generation").get(pk=run_id)
    if run.status == AttributionRun.Status.FAILED:
        return None
    if run.status == AttributionRun.Status.SUCCEEDED:
        return run
    shards = list(AttributionShard.objects.filter(run_id=run_id).order_by("index"))
    if len(shards) != run.shard_count:
        attribution_run_fail(
            run_id=run_id,
            reason=f"Only {len(shards)} of {run.shard_count} shards were scored; re-run it.",
        )
        return None
    try:
        engine = _run_engine(run)
        state = engine.loaded.load_query_state(run.query_state_path, run.query_state_sha256)
        slices = [
            SliceValues(shard.start, shard.stop, np.asarray(shard.values, dtype=np.float64))
            for shard in shards
        ]
        scores = combine(engine.method, engine.prepared, state, slices)
    except (ApplicationError, EngineError) as exc:
        attribution_run_fail(run_id=run_id, reason=str(exc))
        return None
    with transaction.atomic():
        locked = AttributionRun.objects.select_for_update().get(pk=run_id)
        if locked.status == AttributionRun.Status.SUCCEEDED:
            return locked
        locked.scores = [float(x) for x in scores.tau]
        locked.scores_sha256 = scores.tau_sha256()
        locked.provenance = scores.provenance
        locked.library_versions = scores.provenance["library_versions"]
        locked.status = AttributionRun.Status.SUCCEEDED
        locked.progress_percent = 100
        locked.progress_stage = "done"
        locked.eta_seconds = 0
        locked.finished_at = timezone.now()
        locked.save(
            update_fields=[
                "scores",
                "scores_sha256",
                "provenance",
                "library_versions",
                "status",
                "progress_percent",
                "progress_stage",
                "eta_seconds",
                "finished_at",
            ]
        )
        audit_record(
            actor=None,
            action="attribution_run.succeed",
            obj=locked,
            after={"scores_sha256": locked.scores_sha256},
        )
        # Receivers run inside this transaction: an exception in one rolls the success back.
        # An audit run pays nothing, so only a settlement run is announced.
        if locked.purpose == AttributionRun.Purpose.SETTLEMENT:
            run_succeeded.send(sender=AttributionRun, run=locked)
    # The query state (theta' for the exact method) was only needed by the shards; the run
    # keeps its hash, and the scores reproduce it from the recorded inputs.
    if locked.query_state_path:
        Path(locked.query_state_path).unlink(missing_ok=True)
    return locked
