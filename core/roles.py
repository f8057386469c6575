"""The three user roles, as Django groups.

A user's role decides what they may see and do: catalog admins register catalogs and
model versions, finance runs payouts and reads the whole ledger, rights holders read only
what belongs to the rights holders they act for.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

CATALOG_ADMIN = "catalog_admin"
FINANCE = "finance"
RIGHTS_HOLDER = "rights_holder"
ALL_ROLES = (CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER)


def user_has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name=role).exists()
