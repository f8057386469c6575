"""The reconciler: finds runs whose next step is overdue, and artifact computations that
stopped, and sends them again.

A run's steps can be lost between the database and the broker: a step that could not be
sent because the broker was down, a queue or a chord's counter that a Redis restart without
persistence forgot, a worker that died for good, a database restart that aborted the finish
step's transaction after its retries ran out. Each leaves a run ``queued``, ``running`` or
``retrying`` with nothing left to move it, and a generation unpaid.

A run is overdue when nothing has happened to it for ``ATTRIBUTION_RECONCILE_AFTER_SECONDS``
(no step sent, no progress reported) and no step of it waits in the broker's queues (where
the broker can be inspected; Redis can). Its next step is the finish step when every shard
is scored, and otherwise the prepare step, which reuses a saved query state and re-fans only
what the shards still need. Every step is idempotent, so a step sent twice books nothing
twice. A run sent again ``ATTRIBUTION_RECONCILE_MAX_REDISPATCHES`` times without finishing
fails with the reason; an admin can re-run it.

A model version's artifact computation is looked after the same way: one whose artifacts
are ``computing`` with nothing sent, no sign of life from a worker and no progress for the
same lease, and whose computation does not wait in the broker, is sent again (the
computation resumes what its store already holds). After as many re-sends without finishing
its artifacts are marked ``failed`` with the reason, and the model version's page offers to
compute them again.

It runs every ``ATTRIBUTION_RECONCILE_INTERVAL_SECONDS`` from the scheduler (``./run
scheduler``), and once from ``manage.py reconcile_runs``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from attribution.models import AttributionRun, ModelArtifact
from attribution.services.dispatch import (
    ARTIFACTS_STEP,
    FINISH_STEP,
    PREPARE_STEP,
    artifact_computations_waiting_in_broker,
    artifacts_compute_send,
    run_step_send,
    runs_waiting_in_broker,
    task_queues,
)
from attribution.services.model_versions import model_artifact_update
from attribution.services.runs import attribution_run_fail

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = (
    AttributionRun.Status.QUEUED,
    AttributionRun.Status.RUNNING,
    AttributionRun.Status.RETRYING,
)


@dataclass
class ReconcileReport:
    checked: int = 0  # active runs looked at
    waiting: int = 0  # overdue, but a step of theirs waits in the broker's queue
    resent: list[tuple[int, str]] = field(default_factory=list)  # (run id, step)
    failed: list[int] = field(default_factory=list)  # gave up after the bounded re-sends
    broker_unreachable: bool = False  # a send failed: the rest waits for the next pass
    # Artifact computations, by model version id
    artifacts_checked: int = 0  # model versions with artifacts computing
    artifacts_waiting: int = 0  # overdue, but their computation waits in the broker's queue
    artifacts_resent: list[int] = field(default_factory=list)
    artifacts_failed: list[int] = field(default_factory=list)  # gave up: artifacts failed

    @property
    def acted(self) -> bool:
        return bool(
            self.resent
            or self.failed
            or self.artifacts_resent
            or self.artifacts_failed
            or self.broker_unreachable
        )

    def summary(self) -> str:
        parts = [f"{self.checked} active run(s) checked"]
        parts.append(f"{len(self.resent)} step(s) sent again")
        if self.waiting:
            parts.append(f"{self.waiting} waiting in the broker")
        if self.failed:
            parts.append(f"{len(self.failed)} failed after repeated re-sends")
        if self.artifacts_checked:
            parts.append(
                f"{self.artifacts_checked} artifact computation(s) checked, "
                f"{len(self.artifacts_resent)} sent again"
            )
        if self.artifacts_waiting:
            parts.append(f"{self.artifacts_waiting} artifact computation(s) waiting in the broker")
        if self.artifacts_failed:
            parts.append(
                f"{len(self.artifacts_failed)} artifact computation(s) failed after repeated "
                "re-sends"
            )
        if self.broker_unreachable:
            parts.append("the broker is unreachable; the rest is left for the next pass")
        return ", ".join(parts) + "."


def _next_step(run: AttributionRun) -> str:
    if run.shard_count and run.shards.count() >= run.shard_count:
        return FINISH_STEP
    return PREPARE_STEP


def attribution_runs_reconcile(*, now=None, after_seconds: int | None = None) -> ReconcileReport:
    """Send the next step of every run, and every artifact computation, overdue by
    ``after_seconds`` (default ATTRIBUTION_RECONCILE_AFTER_SECONDS) again, bounded; see the
    module docstring."""
    now = now or timezone.now()
    if after_seconds is None:
        after_seconds = settings.ATTRIBUTION_RECONCILE_AFTER_SECONDS
    overdue_before = now - timedelta(seconds=after_seconds)
    report = ReconcileReport()
    active = AttributionRun.objects.filter(status__in=ACTIVE_STATUSES)
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
    _reconcile_runs(overdue_ids, overdue_before, report)
    if not report.broker_unreachable:
        _reconcile_artifact_computations(overdue_before, report)
    if report.acted:
        logger.info("reconciler: %s", report.summary())
    return report


def _reconcile_runs(overdue_ids: list[int], overdue_before, report: ReconcileReport) -> None:
    if not overdue_ids:
        return
    waiting = runs_waiting_in_broker(task_queues())
    for run_id in overdue_ids:
        if waiting is not None and run_id in waiting:
            report.waiting += 1
            continue
        outcome = _reconcile_one(run_id, overdue_before)
        if outcome is None:
            continue
        if outcome == "failed":
            report.failed.append(run_id)
        elif outcome == "unreachable":
            report.broker_unreachable = True
            break
        else:
            report.resent.append((run_id, outcome))


def _reconcile_one(run_id: int, overdue_before) -> str | None:
    """Send one overdue run's next step; the step's name, ``"failed"``, ``"unreachable"``
    or ``None`` (another pass or a worker got to it first)."""
    with transaction.atomic():
        run = (
            AttributionRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=run_id, status__in=ACTIVE_STATUSES)
            .first()
        )
        if run is None:
            return None
        last = max(t for t in (run.created_at, run.heartbeat_at, run.dispatched_at) if t)
        if last >= overdue_before:  # progress arrived since the overdue list was read
            return None
        limit = settings.ATTRIBUTION_RECONCILE_MAX_REDISPATCHES
        give_up = run.redispatches >= limit
        if not give_up:
            step = _next_step(run)
            # Marked sent before the send: a second reconciler pass (a second scheduler)
            # that reads the run meanwhile finds it no longer overdue.
            AttributionRun.objects.filter(pk=run_id).update(
                redispatches=F("redispatches") + 1, dispatched_at=timezone.now()
            )
    if give_up:
        attribution_run_fail(
            run_id=run_id,
            reason=(
                f"Made no progress after its next step was sent again {limit} times"
                + (f"; last error: {run.error}" if run.error else "")
                + ". Re-run it once the workers, the broker and the database are healthy."
            ),
        )
        return "failed"
    if not run_step_send(run_id=run_id, step=step):  # as it was: the next pass tries again
        AttributionRun.objects.filter(pk=run_id).update(
            redispatches=F("redispatches") - 1, dispatched_at=run.dispatched_at
        )
        return "unreachable"
    logger.info("run %s: its %s step was overdue and was sent again", run_id, step)
    return step


def _artifacts_last_activity():
    """The latest of a computing artifact's status change or progress (``updated_at``), its
    worker's sign of life and its last send."""
    return Greatest(
        F("updated_at"),
        Coalesce(F("heartbeat_at"), F("updated_at")),
        Coalesce(F("dispatched_at"), F("updated_at")),
    )


def _reconcile_artifact_computations(overdue_before, report: ReconcileReport) -> None:
    """Send every overdue artifact computation again (one per model version), bounded."""
    computing = ModelArtifact.objects.filter(status=ModelArtifact.Status.COMPUTING)
    report.artifacts_checked = computing.values("model_version_id").distinct().count()
    if not report.artifacts_checked:
        return
    overdue_ids = list(
        computing.values("model_version_id")
        .annotate(last_activity=Max(_artifacts_last_activity()))
        .filter(last_activity__lt=overdue_before)
        .order_by("model_version_id")
        .values_list("model_version_id", flat=True)
    )
    if not overdue_ids:
        return
    waiting = artifact_computations_waiting_in_broker(task_queues((ARTIFACTS_STEP,)))
    for model_version_id in overdue_ids:
        if waiting is not None and model_version_id in waiting:
            report.artifacts_waiting += 1
            continue
        outcome = _reconcile_artifacts_one(model_version_id, overdue_before)
        if outcome == "failed":
            report.artifacts_failed.append(model_version_id)
        elif outcome == "unreachable":
            report.broker_unreachable = True
            break
        elif outcome == "sent":
            report.artifacts_resent.append(model_version_id)


def _reconcile_artifacts_one(model_version_id: int, overdue_before) -> str | None:
    """Send one overdue artifact computation again; ``"sent"``, ``"failed"``,
    ``"unreachable"`` or ``None`` (a worker or another pass got to it first)."""
    limit = settings.ATTRIBUTION_RECONCILE_MAX_REDISPATCHES
    with transaction.atomic():
        artifacts = list(
            ModelArtifact.objects.select_for_update(skip_locked=True)
            .filter(model_version_id=model_version_id, status=ModelArtifact.Status.COMPUTING)
            .select_related("model_version")
        )
        computing = ModelArtifact.objects.filter(
            model_version_id=model_version_id, status=ModelArtifact.Status.COMPUTING
        )
        if not artifacts or len(artifacts) < computing.count():
            return None  # none left, or a worker is writing one of them right now
        last = max(
            max(a.updated_at, a.heartbeat_at or a.updated_at, a.dispatched_at or a.updated_at)
            for a in artifacts
        )
        if last >= overdue_before:  # a sign of life arrived since the overdue list was read
            return None
        if max(a.redispatches for a in artifacts) >= limit:
            # Still under the rows' locks: a worker cannot finish one in between.
            reason = (
                f"Its computation made no progress after it was sent again {limit} times. "
                "Compute it again once the gpu workers and the broker are healthy."
            )
            for artifact in artifacts:
                model_artifact_update(
                    model_version=artifact.model_version,
                    kind=artifact.kind,
                    status=ModelArtifact.Status.FAILED,
                    error=reason,
                )
            return "failed"
        previous = {a.pk: a.dispatched_at for a in artifacts}
        # Marked sent before the send, as for runs: a second pass finds it not overdue.
        ModelArtifact.objects.filter(pk__in=previous).update(
            redispatches=F("redispatches") + 1, dispatched_at=timezone.now()
        )
    if not artifacts_compute_send(model_version_id=model_version_id):
        for pk, dispatched_at in previous.items():  # as it was: the next pass tries again
            ModelArtifact.objects.filter(pk=pk).update(
                redispatches=F("redispatches") - 1, dispatched_at=dispatched_at
            )
        return "unreachable"
    logger.info(
        "model version %s: its artifact computation was overdue and was sent again",
        model_version_id,
    )
    return "sent"
