"""What the catalog's API views share: the filter backends and the permissions."""

from django_filters import rest_framework as filters
from rest_framework import permissions
from rest_framework.filters import OrderingFilter, SearchFilter

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
