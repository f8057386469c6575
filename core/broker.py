"""What the broker holds: the errors a publish raises when the broker is gone, the queues
tasks are routed to, and the ids of the tasks waiting in those queues.

The reconcilers (attribution's runs and artifact computations, the catalog's imports) send a
step again only when it no longer waits in the broker; a step a worker has taken is not
waiting, and its worker reports progress on the row while it works.
"""

from __future__ import annotations

import base64
import json
import logging

from celery import current_app
from django.db import InterfaceError, OperationalError
from kombu.exceptions import OperationalError as BrokerOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# What a publish raises when the broker is gone: kombu wraps most transport errors, but a
# connection refused while the channel is being opened can surface as the client's own.
BROKER_ERRORS = (BrokerOperationalError, RedisError, ConnectionError, OSError, TimeoutError)

# What a task retries with backoff: the database or the broker connection lost (a restart),
# not a fault of the work itself.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    BrokerOperationalError,
    RedisConnectionError,
    ConnectionError,
)


def task_options(*, soft_time_limit: int, time_limit: int) -> dict:
    """The delivery and retry policy every step task shares: acknowledged late and put back
    when its worker dies (each step is idempotent), transient errors retried with backoff."""
    return {
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": TRANSIENT_ERRORS,
        "retry_backoff": 2,
        "retry_backoff_max": 300,
        "retry_jitter": True,
        "max_retries": 5,
        "soft_time_limit": soft_time_limit,
        "time_limit": time_limit,
    }


def task_queues(tasks: tuple[str, ...]) -> list[str]:
    """The queues ``CELERY_TASK_ROUTES`` sends ``tasks`` to."""
    router = current_app.amqp.router
    return sorted({router.route({}, task, args=(0,))["queue"].name for task in tasks})


def ids_waiting_in_broker(queues: list[str], tasks: tuple[str, ...]) -> set[int] | None:
    """The first arguments (ids) of the ``tasks`` messages waiting in ``queues`` (not yet
    taken by a worker); ``None`` when the broker cannot be inspected (only Redis can be,
    here). Without a broker (eager mode) nothing ever waits."""
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
        object_id = _id_of(raw, tasks)
        if object_id is not None:
            waiting.add(object_id)
    return waiting


def _id_of(raw: bytes, tasks: tuple[str, ...]) -> int | None:
    """The id a queued Celery message (protocol 2, JSON body) carries as its first argument,
    if it is one of ``tasks``."""
    try:
        message = json.loads(raw)
        if message.get("headers", {}).get("task") not in tasks:
            return None
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return int(args[0])
    except (ValueError, KeyError, IndexError, TypeError):
        return None
