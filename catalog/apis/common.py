"""What the catalog's API views share: the filter backends and the permissions."""

from django_filters import rest_framework as filters
from rest_framework import permissions
from rest_framework.filters import OrderingFilter, SearchFilter

from catalog.models import RightsHolder
from catalog.selectors import holders_for_user
from core.roles import CATALOG_ADMIN, user_has_role

FILTER_BACKENDS = [filters.DjangoFilterBackend, SearchFilter, OrderingFilter]


class IsCatalogAdminOrReadOnly(permissions.BasePermission):
    message = "Only catalog admins may change the catalog."

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        if request.method in permissions.SAFE_METHODS:
            return True
        return user_has_role(request.user, CATALOG_ADMIN)


class IsCatalogAdmin(permissions.BasePermission):
    message = "Only catalog admins may do this."

    def has_permission(self, request, view):
        return user_has_role(request.user, CATALOG_ADMIN)


def may_act_for_holder(user, holder: RightsHolder) -> bool:
    """Catalog admins act for every rights holder; a holder's own users for that holder (opt-outs,
    licences)."""
    return (
        user_has_role(user, CATALOG_ADMIN) or holders_for_user(user).filter(pk=holder.pk).exists()
    )
