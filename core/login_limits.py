"""Login rate limiting: after ``LOGIN_FAILURE_LIMIT`` failed log-ins for one username
from one client address within ``LOGIN_FAILURE_WINDOW_SECONDS``, that pair is locked out
for ``LOGIN_LOCKOUT_SECONDS``; during a lockout even the right password is refused.

Counters live in Django's cache (``CACHES``; set ``DJANGO_CACHE_URL`` to a Redis URL so
several server processes share them). Usernames are compared case-insensitively, so
``Alice`` and ``alice`` share one counter. A successful log-in clears the counter.
"""

import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

logger = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    """The client's address, read from ``CLIENT_IP_META_KEY`` (default ``REMOTE_ADDR``)."""
    raw = request.META.get(settings.CLIENT_IP_META_KEY, "") or ""
    # A proxy header may hold a list ("client, proxy1, proxy2"): the first is the client.
    return raw.split(",")[0].strip() or "unknown"


def _key(kind: str, *, username: str, address: str) -> str:
    digest = hashlib.sha256(f"{username.strip().casefold()}\n{address}".encode()).hexdigest()
    return f"login-{kind}:{digest}"


def login_lockout_remaining(*, username: str, address: str) -> int:
    """Seconds left of this username+address's lockout; 0 when not locked out."""
    until = cache.get(_key("lock", username=username, address=address))
    if until is None:
        return 0
    return max(0, int(until - time.time()) + 1)


def login_failure_record(*, username: str, address: str) -> int:
    """Count one failed log-in; lock the pair out when it reaches the limit.

    Returns the seconds of lockout now in force (0 when the limit is not reached yet).
    """
    key = _key("failures", username=username, address=address)
    cache.add(key, 0, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=settings.LOGIN_FAILURE_WINDOW_SECONDS)
        failures = 1
    if failures < settings.LOGIN_FAILURE_LIMIT:
        return 0
    lockout = settings.LOGIN_LOCKOUT_SECONDS
    cache.set(
        _key("lock", username=username, address=address), time.time() + lockout, timeout=lockout
    )
    cache.delete(key)
    logger.warning(
        "login locked out for %s s after %s failures: username=%r address=%s",
        lockout,
        failures,
        username,
        address,
    )
    return lockout


def login_failures_clear(*, username: str, address: str) -> None:
    cache.delete(_key("failures", username=username, address=address))
