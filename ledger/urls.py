"""URL routes of the ledger: pages under ``/ledger/``, the REST API under ``/ledger/api/``;
the generations' list and pages (what each generation paid, and why) with the API's one
generation, at the addresses they have under ``/attribution/``; a recording's earnings
under ``/catalog/``. Included at the site's root, after ``attribution.urls`` and
``catalog.urls``."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from ledger import apis, earnings_views, views

app_name = "ledger"

router = DefaultRouter()
router.register("entries", apis.JournalEntryViewSet, basename="entry")
router.register("accounts", apis.AccountViewSet, basename="account")
router.register("statements", apis.StatementViewSet, basename="statement")
router.register("payout-batches", apis.PayoutBatchViewSet, basename="payout-batch")
router.register("periods", apis.StatementPeriodViewSet, basename="statement-period")

statement = "statements/<int:holder_id>/<int:period_id>/<str:currency>/"

ledger_urlpatterns = [
    # Rights holders (and finance, for any holder).
    path("", views.dashboard, name="dashboard"),
    path("statements/", views.statement_list, name="statements"),
    path(statement, views.statement_detail, name="statement"),
    # Named apart from the API's statement-csv / statement-pdf (the router's names).
    path(
        f"{statement}csv/", views.statement_download, {"fmt": "csv"}, name="statement-download-csv"
    ),
    path(
        f"{statement}pdf/", views.statement_download, {"fmt": "pdf"}, name="statement-download-pdf"
    ),
    path(
        f"{statement}xlsx/",
        views.statement_download,
        {"fmt": "xlsx"},
        name="statement-download-xlsx",
    ),
    path("payments/", views.holder_payouts, name="holder-payouts"),
    # Finance.
    path("journal/", views.journal, name="journal"),
    path("journal/<int:seq>/", views.entry_detail, name="entry"),
    path("accounts/", views.account_list, name="accounts"),
    path("verify/", views.verify, name="verify"),
    # Named apart from the API's statement-period-* (the router's names).
    path("periods/", views.statement_periods, name="periods"),
    path("periods/<int:pk>/close/", views.statement_period_close, name="period-close"),
    path("payouts/", views.payout_batches, name="payouts"),
    path("payouts/<int:pk>/", views.payout_batch_detail, name="payout"),
    path("payouts/<int:pk>/export/", views.payout_batch_export, name="payout-export"),
    path("payouts/<int:pk>/mark-paid/", views.payout_batch_mark_paid, name="payout-mark-paid"),
    path("payouts/lines/<int:pk>/fail/", views.payout_line_fail, name="payout-line-fail"),
    # API.
    path("api/balances/", apis.BalanceApi.as_view(), name="api-balances"),
    path("api/verify/", apis.VerifyApi.as_view(), name="api-verify"),
    path("api/", include(router.urls)),
]

urlpatterns = [
    path("ledger/", include(ledger_urlpatterns)),
    # Rights holders, catalog admins and finance.
    path("attribution/generations/", views.generation_list, name="generations"),
    path("attribution/generations/<int:pk>/", views.generation_detail, name="generation"),
    # A recording's earnings, beside My catalog (which links to it).
    path("catalog/recordings/<int:pk>/", earnings_views.recording_detail, name="recording"),
    path(
        "attribution/generations/<int:pk>/explain/",
        earnings_views.generation_explain,
        name="generation-explain",
    ),
    path(
        "attribution/generations/<int:pk>/evidence.json",
        views.generation_evidence_download,
        name="generation-evidence",
    ),
    path(
        "attribution/api/generations/<int:pk>/evidence/",
        apis.GenerationEvidenceApi.as_view(),
        name="api-generation-evidence",
    ),
    path(
        "attribution/api/generations/<int:pk>/",
        apis.GenerationDetailApi.as_view(),
        name="api-generation",
    ),
]
