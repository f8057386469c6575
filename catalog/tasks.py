"""Catalog import tasks (the ``default`` queue): thin wrappers around
``catalog.services.staged_imports``, which check and import a staged ``ImportBatch``.

Each task takes the batch id, is acknowledged late and rejected back to the queue if its
worker dies, and is idempotent: the service claims the batch and returns early when it is
done already, and the import's transaction marks it applied, so a redelivery imports
nothing twice. A batch another run is still working on (fresh heartbeat) is retried
later. Transient errors (database or broker connection lost) are retried with backoff;
anything else, and a run past ``CATALOG_IMPORT_SOFT_TIME_LIMIT``, marks the batch
failed with the reason (its transaction rolled back: nothing imported). A step whose message
was lost is sent again by ``reconcile_imports``, which the scheduler runs.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from django.conf import settings
from django.db import close_old_connections

from catalog import services
from catalog.services import staged_imports
from core.broker import TRANSIENT_ERRORS, task_options

logger = logging.getLogger(__name__)

COMMON = task_options(
    soft_time_limit=settings.CATALOG_IMPORT_SOFT_TIME_LIMIT,
    time_limit=settings.CATALOG_IMPORT_TIME_LIMIT,
)


def _failure_reason(exc: BaseException) -> str:
    if isinstance(exc, SoftTimeLimitExceeded | TimeLimitExceeded):
        return (
            f"The task ran past its time limit ({settings.CATALOG_IMPORT_SOFT_TIME_LIMIT} s); "
            "nothing was imported."
        )
    if isinstance(exc, staged_imports.ImportBusy):
        return "Another run of this import stopped answering; nothing was imported."
    return f"Unexpected error ({type(exc).__name__}: {exc}); nothing was imported."


class ImportTask(Task):
    """Marks the batch failed, with the reason, when its task fails for good (retries
    exhausted, or the worker killed at the hard time limit)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        close_old_connections()  # the error may have broken this worker's connection
        staged_imports.catalog_import_fail(batch_id=args[0], reason=_failure_reason(exc))


def _run(task: Task, work, batch_id: int) -> str | None:
    try:
        batch = work(batch_id=batch_id)
    except staged_imports.ImportBusy as exc:
        # Another run holds the batch: look again once its heartbeat would be stale.
        raise task.retry(exc=exc, countdown=settings.CATALOG_IMPORT_STALE_SECONDS) from exc
    except TRANSIENT_ERRORS:
        raise  # retried (autoretry_for); on_failure once the retries are spent
    except Exception as exc:
        # Permanent: the transaction rolled back. Said on the batch here, not only in
        # on_failure, which a task run in-process (eager, the embedded default) skips.
        close_old_connections()
        staged_imports.catalog_import_fail(batch_id=batch_id, reason=_failure_reason(exc))
        raise
    return batch.status if batch is not None else None


@shared_task(name=staged_imports.CHECK_STEP, bind=True, base=ImportTask, **COMMON)
def check_import(self, batch_id: int) -> str | None:
    """Check a staged batch's files row by row; nothing is imported."""
    return _run(self, staged_imports.catalog_import_check_run, batch_id)


@shared_task(name=staged_imports.APPLY_STEP, bind=True, base=ImportTask, **COMMON)
def apply_import(self, batch_id: int) -> str | None:
    """Import a confirmed batch's files, all or nothing."""
    return _run(self, staged_imports.catalog_import_apply_run, batch_id)


@shared_task(
    name="catalog.reconcile_imports",
    acks_late=False,  # a lost pass costs nothing: the scheduler sends the next one
    soft_time_limit=240,
    time_limit=300,
)
def reconcile_imports() -> str:
    """Send the step of every overdue import again (``catalog_imports_reconcile``); the
    scheduler (``./run scheduler``) sends this every ATTRIBUTION_RECONCILE_INTERVAL_SECONDS."""
    return services.catalog_imports_reconcile().summary()
