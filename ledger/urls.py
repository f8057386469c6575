"""URL routes of the ledger: the read-only API under ``/ledger/api/``."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from ledger import apis

app_name = "ledger"

router = DefaultRouter()
router.register("entries", apis.JournalEntryViewSet, basename="entry")
router.register("statements", apis.StatementViewSet, basename="statement")

urlpatterns = [
    path("api/balances/", apis.BalanceApi.as_view(), name="api-balances"),
    path("api/", include(router.urls)),
]
