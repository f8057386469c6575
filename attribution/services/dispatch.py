"""Handing a run's next step to the broker, and finding the steps the broker still holds.

A step is sent after its transaction commits. When the broker cannot take it (down,
restarted, unreachable), nothing that was committed is undone and the caller gets no error:
the run stays as it was recorded and the reconciler (``reconcile``) sends the step once the
broker is back. So a recorded generation is never lost and never answered with an error
after its data was saved.
"""

from __future__ import annotations

import base64
import json
import logging

from celery import current_app, signature
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import RedisError

from attribution.models import AttributionRun

logger = logging.getLogger(__name__)

PREPARE_STEP = "attribution.prepare_run"
FINISH_STEP = "attribution.finish_run"
RUN_STEPS = (PREPARE_STEP, "attribution.score_shard", FINISH_STEP)

# What a publish raises when the broker is gone: kombu wraps most transport errors, but a
# connection refused while the channel is being opened can surface as the client's own.
BROKER_ERRORS = (BrokerOperationalError, RedisError, ConnectionError, OSError, TimeoutError)


def run_step_send(*, run_id: int, step: str) -> bool:
    """Send ``step`` of run ``run_id`` to its queue; ``False`` when the broker refused it.

    Without a broker (the embedded default) the step runs here and now, as every task does
    in eager mode, and its errors propagate.
    """
    # The run's row is the step's result: nothing waits on the broker's result store, so a
    # dead result store cannot hold up the caller either.
    task = signature(step, args=(run_id,), options={"ignore_result": True})
    if current_app.conf.task_always_eager:
        task.apply_async()
    else:
        try:
            # No publish retries: a request must not hang on a dead broker. The reconciler
            # sends the step again once the broker answers.
            task.apply_async(retry=False)
        except BROKER_ERRORS as exc:
            logger.warning(
                "run %s: the broker did not take %s (%s); the reconciler will send it",
                run_id,
                step,
                exc,
            )
            return False
    AttributionRun.objects.filter(pk=run_id).update(dispatched_at=timezone.now())
    return True


def run_step_send_on_commit(*, run_id: int, step: str = PREPARE_STEP) -> None:
    from django.db import transaction

    transaction.on_commit(lambda: run_step_send(run_id=run_id, step=step))


def run_step_queues() -> list[str]:
    """The queues the routes send a run's steps to (``CELERY_TASK_ROUTES``)."""
    router = current_app.amqp.router
    return sorted({router.route({}, step, args=(0,))["queue"].name for step in RUN_STEPS})


def runs_waiting_in_broker(queues: list[str]) -> set[int] | None:
    """Ids of the runs that have a step waiting in one of ``queues`` (not yet taken by a
    worker); ``None`` when the broker cannot be inspected (only Redis can be, here).

    A step a worker has taken is not counted: while it works, the worker reports progress,
    so the run is not overdue; when the worker has died, the run must be sent again.
    """
    if current_app.conf.task_always_eager:
        return set()
    try:
        with current_app.connection_for_read() as connection:
            if connection.transport.driver_type != "redis":
                return None
            channel = connection.default_channel
            client = channel.client
            names = [
                channel._q_for_pri(queue, priority)  # kombu's name for a priority sub-queue
                for queue in queues
                for priority in channel.priority_steps
            ]
            messages = [raw for name in names for raw in client.lrange(name, 0, -1)]
    except BROKER_ERRORS as exc:
        logger.warning("could not inspect the broker's queues: %s", exc)
        return None
    waiting: set[int] = set()
    for raw in messages:
        run_id = _run_id_of(raw)
        if run_id is not None:
            waiting.add(run_id)
    return waiting


def _run_id_of(raw: bytes) -> int | None:
    """The run id a queued Celery message (protocol 2, JSON body) carries, if it is a run step."""
    try:
        message = json.loads(raw)
        if message.get("headers", {}).get("task") not in RUN_STEPS:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return int(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
