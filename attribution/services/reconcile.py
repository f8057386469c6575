"""The reconciler: finds runs whose next step is overdue, and artifact computations and
unlearning jobs that stopped, and sends them again.

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

An unlearning job (``unlearning``) is looked after as a run is: one ``queued`` or ``running``
with nothing sent (the broker was down when it was requested), no progress from its worker
and no re-send for the same lease, and not waiting in the broker, is sent again (the job
resumes from its saved state, or finds itself done). After as many re-sends it fails with the
reason, which frees its parent for a new request.

It runs every ``ATTRIBUTION_RECONCILE_INTERVAL_SECONDS`` from the scheduler (``./run
scheduler``), and once from ``manage.py reconcile_runs``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Max
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from attribution.models import AttributionRun, ModelArtifact, Unlearning
from attribution.services.dispatch import (
    ARTIFACTS_STEP,
    FINISH_STEP,
    PREPARE_STEP,
    UNLEARNING_STEP,
    artifact_computations_waiting_in_broker,
    artifacts_compute_send,
    run_step_send,
    runs_waiting_in_broker,
    task_queues,
    unlearning_send,
    unlearnings_waiting_in_broker,
)
from attribution.services.model_versions import model_artifact_update
from attribution.services.runs import attribution_run_fail
from attribution.services.unlearning import unlearning_fail

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = (
    AttributionRun.Status.QUEUED,
    AttributionRun.Status.RUNNING,
    AttributionRun.Status.RETRYING,
)
UNLEARNING_ACTIVE_STATUSES = (Unlearning.Status.QUEUED, Unlearning.Status.RUNNING)


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
    # Unlearning jobs, by id
    unlearnings_checked: int = 0  # jobs queued or running
    unlearnings_waiting: int = 0  # overdue, but waiting in the broker's queue
    unlearnings_resent: list[int] = field(default_factory=list)
    unlearnings_failed: list[int] = field(default_factory=list)  # gave up: the job failed

    @property
    def acted(self) -> bool:
        return bool(
            self.resent
            or self.failed
            or self.artifacts_resent
            or self.artifacts_failed
            or self.unlearnings_resent
            or self.unlearnings_failed
            or self.broker_unreachable
        )

    def summary(self) -> str:
        parts = [f"{self.checked} active run(s) checked"]
        parts.append(f"{len(self.resent)} step(s) sent again")
        if self.waiting:
            parts.append(f"{self.waiting} waiting in the broker")
        if self.failed:
            parts.append(f"{len(self.failed)} failed after repeated re-sends")
        parts += _looked_after(
            "artifact computation",
            self.artifacts_checked,
            self.artifacts_resent,
            self.artifacts_waiting,
            self.artifacts_failed,
        )
        parts += _looked_after(
            "unlearning job",
            self.unlearnings_checked,
            self.unlearnings_resent,
            self.unlearnings_waiting,
            self.unlearnings_failed,
        )
        if self.broker_unreachable:
            parts.append("the broker is unreachable; the rest is left for the next pass")
        return ", ".join(parts) + "."


def _looked_after(what: str, checked: int, resent: list, waiting: int, failed: list) -> list[str]:
    """The summary's parts for one kind of work besides runs (``what``, singular)."""
    if not checked:
        return []
    parts = [f"{checked} {what}(s) checked, {len(resent)} sent again"]
    if waiting:
        parts.append(f"{waiting} {what}(s) waiting in the broker")
    if failed:
        parts.append(f"{len(failed)} {what}(s) failed after repeated re-sends")
    return parts


def _next_step(run: AttributionRun) -> str:
    if run.shard_count and run.shards.count() >= run.shard_count:
        return FINISH_STEP
    return PREPARE_STEP


def attribution_runs_reconcile(*, now=None, after_seconds: int | None = None) -> ReconcileReport:
    """Send the next step of every run, every artifact computation and every unlearning job
    overdue by ``after_seconds`` (default ATTRIBUTION_RECONCILE_AFTER_SECONDS) again, bounded;
    see the module docstring."""
    now = now or timezone.now()
    if after_seconds is None:
        after_seconds = settings.ATTRIBUTION_RECONCILE_AFTER_SECONDS
    overdue_before = now - timedelta(seconds=after_seconds)
    report = ReconcileReport()
    active = AttributionRun.objects.filter(status__in=ACTIVE_STATUSES)
    report.checked = active.count()
    report.waiting, resent, report.failed = _send_again(
        _overdue_ids(active, overdue_before),
        lambda: runs_waiting_in_broker(task_queues()),
        lambda run_id: _resend_row(
            AttributionRun, run_id, ACTIVE_STATUSES, overdue_before, _run_send, _run_fail
        ),
        report,
    )
    report.resent = resent
    if not report.broker_unreachable:
        _reconcile_artifact_computations(overdue_before, report)
    if not report.broker_unreachable:
        _reconcile_unlearnings(overdue_before, report)
    if report.acted:
        logger.info("reconciler: %s", report.summary())
    return report


def _overdue_ids(active, overdue_before) -> list[int]:
    """Ids of the rows of ``active`` (runs or unlearning jobs) with nothing sent and no sign
    of life since ``overdue_before``."""
    return list(
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


def _send_again(
    overdue_ids: list[int],
    waiting_in_broker: Callable[[], set[int] | None],
    resend_one: Callable[[int], str | None],
    report: ReconcileReport,
) -> tuple[int, list[tuple[int, str]], list[int]]:
    """Send every overdue object that does not wait in the broker again (``resend_one``: what
    was sent, ``"failed"``, ``"unreachable"`` or ``None``). Returns how many were waiting,
    ``(id, what was sent)`` and the failed ids; stops at the first send the broker refused
    (``report.broker_unreachable``)."""
    waiting_count, resent, failed = 0, [], []
    if not overdue_ids:
        return waiting_count, resent, failed
    waiting = waiting_in_broker()
    for object_id in overdue_ids:
        if waiting is not None and object_id in waiting:
            waiting_count += 1
            continue
        outcome = resend_one(object_id)
        if outcome is None:
            continue
        if outcome == "failed":
            failed.append(object_id)
        elif outcome == "unreachable":
            report.broker_unreachable = True
            break
        else:
            resent.append((object_id, outcome))
    return waiting_count, resent, failed


def _resend_row(
    model,
    object_id: int,
    active_statuses,
    overdue_before,
    send: Callable[[Any], str | None],
    fail: Callable[[Any, int], None],
) -> str | None:
    """Send one overdue run or unlearning job again (``send(row)``: what was sent, ``None``
    when the broker refused it), or ``fail(row, limit)`` it once it was sent again
    ATTRIBUTION_RECONCILE_MAX_REDISPATCHES times; what was sent, ``"failed"``,
    ``"unreachable"`` or ``None`` (another pass or a worker got to it first)."""
    limit = settings.ATTRIBUTION_RECONCILE_MAX_REDISPATCHES
    with transaction.atomic():
        row = (
            model.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=object_id, status__in=active_statuses)
            .first()
        )
        if row is None:
            return None
        last = max(t for t in (row.created_at, row.heartbeat_at, row.dispatched_at) if t)
        if last >= overdue_before:  # progress arrived since the overdue list was read
            return None
        give_up = row.redispatches >= limit
        if not give_up:
            # Marked sent before the send: a second reconciler pass (a second scheduler)
            # that reads the row meanwhile finds it no longer overdue.
            model.objects.filter(pk=object_id).update(
                redispatches=F("redispatches") + 1, dispatched_at=timezone.now()
            )
    if give_up:
        fail(row, limit)
        return "failed"
    sent = send(row)
    if sent is None:  # as it was: the next pass tries again
        model.objects.filter(pk=object_id).update(
            redispatches=F("redispatches") - 1, dispatched_at=row.dispatched_at
        )
        return "unreachable"
    logger.info("%s %s: overdue, %s was sent again", model._meta.verbose_name, object_id, sent)
    return sent


def _run_send(run: AttributionRun) -> str | None:
    step = _next_step(run)
    return step if run_step_send(run_id=run.pk, step=step) else None


def _run_fail(run: AttributionRun, limit: int) -> None:
    attribution_run_fail(
        run_id=run.pk,
        reason=_gave_up_reason(
            "its next step",
            limit,
            run.error,
            "Re-run it once the workers, the broker and the database are healthy.",
        ),
    )


def _gave_up_reason(what: str, limit: int, error: str, then: str) -> str:
    """Why the reconciler stopped sending ``what`` again, with the last error, if any."""
    last_error = f"; last error: {error}" if error else ""
    return f"Made no progress after {what} was sent again {limit} times{last_error}. {then}"


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
    report.artifacts_waiting, resent, report.artifacts_failed = _send_again(
        overdue_ids,
        lambda: artifact_computations_waiting_in_broker(task_queues((ARTIFACTS_STEP,))),
        lambda model_version_id: _reconcile_artifacts_one(model_version_id, overdue_before),
        report,
    )
    report.artifacts_resent = [model_version_id for model_version_id, _ in resent]


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


def _reconcile_unlearnings(overdue_before, report: ReconcileReport) -> None:
    """Send every overdue unlearning job again, bounded; one sent again too often fails."""
    active = Unlearning.objects.filter(status__in=UNLEARNING_ACTIVE_STATUSES)
    report.unlearnings_checked = active.count()
    report.unlearnings_waiting, resent, report.unlearnings_failed = _send_again(
        _overdue_ids(active, overdue_before),
        lambda: unlearnings_waiting_in_broker(task_queues((UNLEARNING_STEP,))),
        lambda unlearning_id: _resend_row(
            Unlearning,
            unlearning_id,
            UNLEARNING_ACTIVE_STATUSES,
            overdue_before,
            _unlearning_send,
            _unlearning_fail,
        ),
        report,
    )
    report.unlearnings_resent = [unlearning_id for unlearning_id, _ in resent]


def _unlearning_send(unlearning: Unlearning) -> str | None:
    return UNLEARNING_STEP if unlearning_send(unlearning_id=unlearning.pk) else None


def _unlearning_fail(unlearning: Unlearning, limit: int) -> None:
    unlearning_fail(
        unlearning_id=unlearning.pk,
        reason=_gave_up_reason(
            "it",
            limit,
            unlearning.error,
            "Request it again once the gpu workers and the broker are healthy.",
        ),
    )
