"""The three user roles, as Django groups.

A user's role decides what they may see and do: catalog admins register catalogs and
model versions, finance runs payouts and reads the whole ledger, rights holders read only
what belongs to the rights holders they act for. Superusers hold every role.
"""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

CATALOG_ADMIN = "catalog_admin"
FINANCE = "finance"
RIGHTS_HOLDER = "rights_holder"
ALL_ROLES = (CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER)

ROLE_LABELS = {
    CATALOG_ADMIN: "Catalog admin",
    FINANCE: "Finance",
    RIGHTS_HOLDER: "Rights holder",
}


def user_has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role).exists()


def user_roles(user: AbstractBaseUser | AnonymousUser) -> list[str]:
    """The roles ``user`` holds, in ``ALL_ROLES`` order (one query)."""
    if not user.is_authenticated:
        return []
    if user.is_superuser:
        return list(ALL_ROLES)
    held = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
    return [role for role in ALL_ROLES if role in held]


def role_required(*roles: str) -> Callable:
    """View decorator: anonymous users are sent to log in; users holding none of
    ``roles`` get 403."""
    assert roles and all(role in ALL_ROLES for role in roles), roles

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not any(user_has_role(request.user, role) for role in roles):
                names = " or ".join(ROLE_LABELS[role].lower() for role in roles)
                raise PermissionDenied(f"This page is for {names} users.")
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator
