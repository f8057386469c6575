"""Attribution tasks (the ``gpu`` queue): thin wrappers around ``attribution.services``, which
run the engine pipeline's stages (prepare, score slice, combine) for the run's recorded method.

Every task takes ids, is acknowledged late and rejected back to the queue if its worker
dies, and is idempotent (the services check what is already done), so a redelivery books
nothing twice. Transient errors (database or broker connection lost) are retried with
exponential backoff; permanent ones (bad audio, missing artifacts) mark the run failed in
the service and are not retried. A run that exceeds ATTRIBUTION_SOFT_TIME_LIMIT fails
cleanly; an admin can re-run it.
"""

from __future__ import annotations

import logging

from celery import Task, chord, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from attribution import services
from attribution.services.progress import time_limit_message
from core.broker import TRANSIENT_ERRORS, task_options

logger = logging.getLogger(__name__)

COMMON = task_options(
    soft_time_limit=settings.ATTRIBUTION_CELERY_SOFT_TIME_LIMIT,
    time_limit=settings.ATTRIBUTION_TIME_LIMIT,
)

# The per-model-version jobs (artifact computations, unlearning): acknowledged late and put
# back when their worker dies (each resumes what its store or saved state holds), transient
# errors retried with backoff, hours allowed.
LONG_JOB = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": TRANSIENT_ERRORS,
    "retry_backoff": 2,
    "max_retries": 5,
    "soft_time_limit": 6 * 3600,  # below the broker's visibility timeout (settings)
    "time_limit": 6 * 3600 + 60,
}


class AttributionTask(Task):
    """Reports retries and final failures on the run the task works for."""

    def on_retry(self, exc, task_id, args, kwargs, einfo):
        close_old_connections()  # the error may have broken this worker's connection
        try:
            services.attribution_run_mark_retrying(run_id=args[0], reason=str(exc) or repr(exc))
        except (OperationalError, InterfaceError):
            logger.warning("could not record the retry of run %s: database unavailable", args[0])

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        close_old_connections()
        if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
            reason = time_limit_message()
        else:
            reason = f"{type(exc).__name__}: {exc}"
        try:
            services.attribution_run_fail(run_id=args[0], reason=reason)
        except (OperationalError, InterfaceError):
            # The database is still away: the run stays active and, once overdue, the
            # reconciler sends its next step again.
            logger.warning("could not record the failure of run %s: database unavailable", args[0])


@shared_task(name="attribution.prepare_run", bind=True, base=AttributionTask, **COMMON)
def prepare_run(self, run_id: int) -> str | None:
    """Compute the query state (for unlearning: theta'), then fan the scoring out over shards
    (a chord)."""
    plan = services.attribution_run_prepare(run_id=run_id)
    if plan is None:
        return None
    header = [score_shard.si(run_id, index) for index in range(plan.shard_count)]
    return chord(header)(finish_run.si(run_id)).id  # the finish task, for whoever waits on it


@shared_task(name="attribution.score_shard", bind=True, base=AttributionTask, **COMMON)
def score_shard(self, run_id: int, shard_index: int) -> int | None:
    return services.attribution_run_score_shard(run_id=run_id, shard_index=shard_index)


@shared_task(name="attribution.finish_run", bind=True, base=AttributionTask, **COMMON)
def finish_run(self, run_id: int) -> int | None:
    """Combine the shards into scores; the ledger settles in the same transaction."""
    run = services.attribution_run_finish(run_id=run_id)
    return run.pk if run is not None else None


@shared_task(
    name="attribution.compute_model_artifacts",
    bind=True,
    **LONG_JOB,
)
def compute_model_artifacts(self, model_version_id: int) -> None:
    from attribution.models import ModelVersion

    services.model_version_artifacts_compute(
        model_version=ModelVersion.objects.get(pk=model_version_id)
    )


@shared_task(
    name="attribution.reconcile_runs",
    acks_late=False,  # a lost pass costs nothing: the scheduler sends the next one
    soft_time_limit=240,
    time_limit=300,
)
def reconcile_runs() -> str:
    """Send the next step of every overdue run, every stopped artifact computation and every
    stopped unlearning job again (``services.attribution_runs_reconcile``); the scheduler
    (``./run scheduler``) sends this every ATTRIBUTION_RECONCILE_INTERVAL_SECONDS."""
    return services.attribution_runs_reconcile().summary()


@shared_task(
    name="attribution.unlearn_model_version",
    bind=True,
    **LONG_JOB,
)
def unlearn_model_version(self, unlearning_id: int) -> int | None:
    """Derive, register and validate an unlearned model version (``services.unlearning_run``);
    a redelivery resumes from the job's saved state or finds it done."""
    from core.exceptions import ApplicationError

    try:
        unlearning = services.unlearning_run(unlearning_id=unlearning_id)
    except ApplicationError:
        return None  # the service marked the job failed with the reason; not retried
    except (SoftTimeLimitExceeded, TimeLimitExceeded):
        services.unlearning_fail(unlearning_id=unlearning_id, reason=time_limit_message())
        raise
    except TRANSIENT_ERRORS:
        raise  # retried; the job resumes from its saved state
    except Exception as exc:  # a programming or engine error: the job must not stay running
        close_old_connections()
        services.unlearning_fail(unlearning_id=unlearning_id, reason=f"{type(exc).__name__}: {exc}")
        raise
    return unlearning.pk if unlearning is not None else None
