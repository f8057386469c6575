"""The ``--user`` option shared by the catalog commands."""

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError


def actor_from_option(username: str | None):
    if not username:
        return None
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user named {username!r}") from None
