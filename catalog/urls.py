"""URL routes of the catalog: pages under ``/catalog/``, the API under ``/catalog/api/``."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from catalog import apis, views

app_name = "catalog"

router = DefaultRouter()
router.register("rights-holders", apis.RightsHolderViewSet, basename="rights-holder")
router.register("recordings", apis.RecordingViewSet, basename="recording")
router.register("opt-outs", apis.OptOutViewSet, basename="opt-out")
router.register("model-versions", apis.ModelVersionViewSet, basename="model-version")

urlpatterns = [
    path("", views.my_catalog, name="my-catalog"),
    path("opt-outs/new/", views.opt_out_request, name="opt-out-request"),
    path("opt-outs/<int:pk>/withdraw/", views.opt_out_withdraw_view, name="opt-out-withdraw"),
    path("opt-out-rule/", views.opt_out_rule, name="opt-out-rule"),
    path("import/", views.catalog_import_page, name="import"),
    path("api/imports/", apis.ImportApi.as_view(), name="api-import"),
    path("api/", include(router.urls)),
]
