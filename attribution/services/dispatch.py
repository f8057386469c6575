"""Handing a run's next step, a model version's artifact computation, or an unlearning job to
the broker, and finding the ones the broker still holds.

A step is sent after its transaction commits. When the broker cannot take it (down,
restarted, unreachable), nothing that was committed is undone and the caller gets no error:
the run stays as it was recorded and the reconciler (``reconcile``) sends the step once the
broker is back. So a recorded generation is never lost and never answered with an error
after its data was saved.
"""

from __future__ import annotations

import logging

from celery import current_app, signature
from django.utils import timezone

from attribution.models import AttributionRun, ModelArtifact, Unlearning
from core.broker import BROKER_ERRORS, ids_waiting_in_broker
from core.broker import task_queues as _task_queues

logger = logging.getLogger(__name__)

PREPARE_STEP = "attribution.prepare_run"
FINISH_STEP = "attribution.finish_run"
RUN_STEPS = (PREPARE_STEP, "attribution.score_shard", FINISH_STEP)
ARTIFACTS_STEP = "attribution.compute_model_artifacts"
UNLEARNING_STEP = "attribution.unlearn_model_version"


def _send(task_name: str, object_id: int, what: str) -> bool:
    """Send ``task_name(object_id)`` to its queue; ``False`` when the broker refused it.

    Without a broker (the embedded default) the task runs here and now, as every task does
    in eager mode, and its errors propagate.
    """
    # The database row is the task's result: nothing waits on the broker's result store, so
    # a dead result store cannot hold up the caller either.
    task = signature(task_name, args=(object_id,), options={"ignore_result": True})
    if current_app.conf.task_always_eager:
        task.apply_async()
        return True
    try:
        # No publish retries: a request must not hang on a dead broker. The reconciler
        # sends the task again once the broker answers.
        task.apply_async(retry=False)
    except BROKER_ERRORS as exc:
        logger.warning(
            "%s: the broker did not take %s (%s); the reconciler will send it",
            what,
            task_name,
            exc,
        )
        return False
    return True


def run_step_send(*, run_id: int, step: str) -> bool:
    """Send ``step`` of run ``run_id`` to its queue; ``False`` when the broker refused it
    (``_send``)."""
    if not _send(step, run_id, f"run {run_id}"):
        return False
    AttributionRun.objects.filter(pk=run_id).update(dispatched_at=timezone.now())
    return True


def artifacts_compute_send(*, model_version_id: int) -> bool:
    """Send the computation of model version ``model_version_id``'s artifacts to a gpu
    worker; ``False`` when the broker refused it (``_send``). The artifacts being computed
    record when it was sent."""
    sent_at = timezone.now()
    if not _send(ARTIFACTS_STEP, model_version_id, f"model version {model_version_id}"):
        return False
    ModelArtifact.objects.filter(
        model_version_id=model_version_id, status=ModelArtifact.Status.COMPUTING
    ).update(dispatched_at=sent_at)
    return True


def unlearning_send(*, unlearning_id: int) -> bool:
    """Send unlearning job ``unlearning_id`` to a gpu worker; ``False`` when the broker refused
    it (``_send``): the job stays queued and the reconciler sends it."""
    sent_at = timezone.now()
    if not _send(UNLEARNING_STEP, unlearning_id, f"unlearning {unlearning_id}"):
        return False
    Unlearning.objects.filter(pk=unlearning_id).update(dispatched_at=sent_at)
    return True


def run_step_send_on_commit(*, run_id: int, step: str = PREPARE_STEP) -> None:
    from django.db import transaction

    transaction.on_commit(lambda: run_step_send(run_id=run_id, step=step))


def task_queues(tasks: tuple[str, ...] = RUN_STEPS) -> list[str]:
    """The queues ``CELERY_TASK_ROUTES`` sends ``tasks`` to (a run's steps, by default)."""
    return _task_queues(tasks)


def runs_waiting_in_broker(queues: list[str]) -> set[int] | None:
    """Ids of the runs that have a step waiting in one of ``queues`` (not yet taken by a
    worker); ``None`` when the broker cannot be inspected (only Redis can be, here).

    A step a worker has taken is not counted: while it works, the worker reports progress,
    so the run is not overdue; when the worker has died, the run must be sent again.
    """
    return ids_waiting_in_broker(queues, RUN_STEPS)


def artifact_computations_waiting_in_broker(queues: list[str]) -> set[int] | None:
    """Ids of the model versions whose artifact computation waits in one of ``queues`` (not
    yet taken by a worker); ``None`` when the broker cannot be inspected. As for runs, one a
    worker has taken is not counted."""
    return ids_waiting_in_broker(queues, (ARTIFACTS_STEP,))


def unlearnings_waiting_in_broker(queues: list[str]) -> set[int] | None:
    """Ids of the unlearning jobs waiting in one of ``queues`` (not yet taken by a worker);
    ``None`` when the broker cannot be inspected. As for runs, one a worker has taken is not
    counted."""
    return ids_waiting_in_broker(queues, (UNLEARNING_STEP,))
