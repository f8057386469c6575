"""The imports' reconciler: finds staged imports whose check or import was lost on its way
to a worker, and sends it again.

A step is lost when the broker took its message and then forgot it (Redis restarted without
persistence) or when the worker that took it died for good (Redis gives an unacknowledged
message back only after its visibility timeout, hours later). Either leaves a batch
``checking`` or ``importing`` with nothing left to move it.

A batch is overdue when it showed no sign of life for ``CATALOG_IMPORT_RECONCILE_AFTER_SECONDS``
(its step neither sent nor heard from: the latest of ``created_at``, ``dispatched_at`` and
``heartbeat_at``) and its step does not wait in the broker's queues (where the broker can be
inspected; Redis can). Its step, the one its status names, is then sent again. The lease
exceeds ``CATALOG_IMPORT_STALE_SECONDS``, so the step sent again takes over a dead run's claim
at once; the steps are idempotent, so a batch is never imported twice. A batch sent again
``CATALOG_IMPORT_MAX_REDISPATCHES`` times without finishing fails with the reason, nothing
imported. A send the broker refuses is not counted: the next pass tries again.

It runs every ``ATTRIBUTION_RECONCILE_INTERVAL_SECONDS`` from the scheduler (``./run
scheduler``), and once from ``manage.py reconcile_imports``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from catalog.models import ImportBatch
from catalog.services.staged_imports import STEPS, catalog_import_fail, import_step_publish
from core.broker import ids_waiting_in_broker, task_queues

logger = logging.getLogger(__name__)


@dataclass
class ImportReconcileReport:
    checked: int = 0  # batches being checked or imported
    waiting: int = 0  # overdue, but their step waits in the broker's queue
    resent: list[tuple[int, str]] = field(default_factory=list)  # (batch id, step)
    failed: list[int] = field(default_factory=list)  # gave up after the bounded re-sends
    broker_unreachable: bool = False  # a send failed: the rest waits for the next pass

    @property
    def acted(self) -> bool:
        return bool(self.resent or self.failed or self.broker_unreachable)

    def summary(self) -> str:
        parts = [
            f"{self.checked} import(s) in progress checked",
            f"{len(self.resent)} step(s) sent again",
        ]
        if self.waiting:
            parts.append(f"{self.waiting} waiting in the broker")
        if self.failed:
            parts.append(f"{len(self.failed)} failed after repeated re-sends")
        if self.broker_unreachable:
            parts.append("the broker is unreachable; the rest is left for the next pass")
        return ", ".join(parts) + "."


def catalog_imports_reconcile(
    *, now=None, after_seconds: int | None = None
) -> ImportReconcileReport:
    """Send the step of every batch being checked or imported and overdue by
    ``after_seconds`` (default CATALOG_IMPORT_RECONCILE_AFTER_SECONDS) again, bounded; see
    the module docstring."""
    now = now or timezone.now()
    if after_seconds is None:
        after_seconds = settings.CATALOG_IMPORT_RECONCILE_AFTER_SECONDS
    if after_seconds < 0:
        raise ValueError("after_seconds must be 0 or more")
    overdue_before = now - timedelta(seconds=after_seconds)
    report = ImportReconcileReport()
    active = ImportBatch.objects.filter(status__in=ImportBatch.IN_PROGRESS)
    report.checked = active.count()
    overdue_ids = list(
        active.annotate(
            last_activity=Greatest(
                F("created_at"),
                Coalesce(F("heartbeat_at"), F("created_at")),
                Coalesce(F("dispatched_at"), F("created_at")),
            )
        )
        .filter(last_activity__lt=overdue_before)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if overdue_ids:
        steps = tuple(STEPS.values())
        waiting = ids_waiting_in_broker(task_queues(steps), steps)
        for batch_id in overdue_ids:
            if waiting is not None and batch_id in waiting:
                report.waiting += 1
                continue
            outcome = _reconcile_one(batch_id, overdue_before)
            if outcome == "failed":
                report.failed.append(batch_id)
            elif outcome == "unreachable":
                report.broker_unreachable = True
                break
            elif outcome is not None:
                report.resent.append((batch_id, outcome))
    if report.acted:
        logger.info("imports reconciler: %s", report.summary())
    return report


def _reconcile_one(batch_id: int, overdue_before) -> str | None:
    """Send one overdue batch's step again; the step's name, ``"failed"``, ``"unreachable"``
    or ``None`` (a worker or another pass got to it first)."""
    limit = settings.CATALOG_IMPORT_MAX_REDISPATCHES
    with transaction.atomic():
        batch = (
            ImportBatch.objects.select_for_update(skip_locked=True)
            .filter(pk=batch_id, status__in=ImportBatch.IN_PROGRESS)
            .first()
        )
        if batch is None:
            return None
        last = max(t for t in (batch.created_at, batch.heartbeat_at, batch.dispatched_at) if t)
        if last >= overdue_before:  # a sign of life arrived since the overdue list was read
            return None
        step = STEPS[batch.status]
        if batch.redispatches >= limit:
            # Still under the row's lock; a run that is alive after all cannot commit its
            # import, whose transaction requires the batch still ``importing``.
            what = "check" if batch.status == ImportBatch.Status.CHECKING else "import"
            catalog_import_fail(
                batch_id=batch_id,
                reason=(
                    f"The {what} made no progress after it was sent again {limit} times; "
                    "nothing was imported. Upload the files again once the workers and the "
                    "task queue are healthy."
                ),
            )
            return "failed"
        # Marked sent before the send: a second pass (a second scheduler) that reads the
        # batch meanwhile finds it no longer overdue.
        ImportBatch.objects.filter(pk=batch_id).update(
            redispatches=F("redispatches") + 1, dispatched_at=timezone.now()
        )
    if not import_step_publish(batch_id=batch_id, step=step):  # as it was: the next pass
        ImportBatch.objects.filter(pk=batch_id).update(
            redispatches=F("redispatches") - 1, dispatched_at=batch.dispatched_at
        )
        return "unreachable"
    logger.info("import batch %s: its %s step was overdue and was sent again", batch_id, step)
    return step
