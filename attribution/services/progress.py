"""Progress, signs of life and time limits of long attribution work, reported from engine
callbacks."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from core.exceptions import ApplicationError

# How often long work that is still going tells the reconciler it is alive (runs' shards,
# artifact computations, unlearning jobs); far below ATTRIBUTION_RECONCILE_AFTER_SECONDS.
HEARTBEAT_SECONDS = 30


class TimeLimitExceededError(ApplicationError):
    """A run took longer than ATTRIBUTION_SOFT_TIME_LIMIT; it fails cleanly, books nothing."""


def time_limit_message() -> str:
    return f"Exceeded its time limit of {settings.ATTRIBUTION_SOFT_TIME_LIMIT} s."


def deadline() -> float:
    """When a task started now must stop (a ``time.monotonic()`` value)."""
    return time.monotonic() + settings.ATTRIBUTION_SOFT_TIME_LIMIT


def raise_if_past(limit: float | None) -> None:
    """Fail a run cleanly once its soft time limit has passed (checked between engine batches,
    so no signal has to arrive at a safe moment)."""
    if limit is not None and time.monotonic() > limit:
        raise TimeLimitExceededError(time_limit_message())


class ThrottledProgress:
    """Turns engine progress callbacks into at most one write per second, mapped to
    [low, high] percent; with ``limit`` (see ``deadline``) it also enforces the time limit."""

    def __init__(
        self,
        write: Callable[[str, int], None],
        low: int = 0,
        high: int = 100,
        every_seconds: float = 1.0,
        limit: float | None = None,
    ):
        self.write, self.low, self.high = write, low, high
        self.every_seconds = every_seconds
        self.limit = limit
        self.last_write = 0.0
        self.last_percent = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        raise_if_past(self.limit)
        percent = self.low + (self.high - self.low) * done // max(total, 1)
        now = time.monotonic()
        if percent != self.last_percent and (
            now - self.last_write >= self.every_seconds or done == total
        ):
            self.last_write, self.last_percent = now, percent
            self.write(stage, percent)


class Heartbeat:
    """A worker's sign of life on the row it works on (``heartbeat_at``): ``beat()`` writes one
    now; calling it from engine callbacks writes one once ``every_seconds`` have passed since
    the last, also while the progress bar does not move, so the reconciler leaves the work
    alone."""

    def __init__(self, write: Callable[[], None], every_seconds: float = HEARTBEAT_SECONDS):
        self.write = write
        self.every_seconds = every_seconds
        self.last_beat = time.monotonic()

    def beat(self) -> None:
        self.last_beat = time.monotonic()
        self.write()

    def __call__(self, *_callback_args) -> None:
        if time.monotonic() - self.last_beat >= self.every_seconds:
            self.beat()
