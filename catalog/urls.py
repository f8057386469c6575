"""URL routes of the catalog: pages under ``/catalog/``, the API under ``/catalog/api/``."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from catalog import apis, views

app_name = "catalog"

router = DefaultRouter()
router.register("rights-holders", apis.RightsHolderViewSet, basename="rights-holder")
router.register("recordings", apis.RecordingViewSet, basename="recording")
router.register("opt-outs", apis.OptOutViewSet, basename="opt-out")
router.register("reference-licences", apis.ReferenceLicenceViewSet, basename="reference-licence")


urlpatterns = [
    path("", views.my_catalog, name="my-catalog"),
    path("opt-outs/new/", views.opt_out_request, name="opt-out-request"),
    # Named apart from the API's opt-out-withdraw (the router's name for the same action).
    path(
        "opt-outs/<int:pk>/withdraw/",
        views.opt_out_withdraw_view,
        name="opt-out-withdraw-page",
    ),
    path("opt-out-rule/", views.opt_out_rule, name="opt-out-rule"),
    path("reference-licences/", views.reference_licences, name="reference-licences"),
    path(
        "reference-licences/<int:pk>/withdraw/",
        views.reference_licence_withdraw_view,
        name="reference-licence-withdraw-page",
    ),
    path("import/", views.catalog_import_page, name="import"),
    path("import/<str:token>/", views.catalog_import_staged, name="import-staged"),
    path("import/<str:token>/confirm/", views.catalog_import_confirm_view, name="import-confirm"),
    path("api/imports/", apis.ImportApi.as_view(), name="api-import"),
    path("api/imports/check/", apis.ImportCheckApi.as_view(), name="api-import-check"),
    path("api/imports/<str:token>/", apis.StagedImportApi.as_view(), name="api-import-staged"),
    path(
        "api/imports/<str:token>/confirm/",
        apis.ImportConfirmApi.as_view(),
        name="api-import-confirm",
    ),
    path("api/", include(router.urls)),
]
