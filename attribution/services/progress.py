"""Progress and time limits of long attribution work, reported from engine callbacks."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings

from core.exceptions import ApplicationError


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
