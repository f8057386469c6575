"""URL routes of attribution: pages under ``/attribution/``, the API under
``/attribution/api/``. The generations' list and pages, and one generation with what it
paid, are the ledger's, at ``/attribution/generations/`` and
``/attribution/api/generations/<id>/`` (``ledger.urls``)."""

from django.urls import include, path
from rest_framework.routers import DefaultRouter

from attribution import apis, views

app_name = "attribution"

# Only the model versions' viewset; with DefaultRouter for the `.json` twins of its routes,
# without a root view (the other endpoints are plain views).
router = DefaultRouter()
router.include_root_view = False
router.register("model-versions", apis.ModelVersionViewSet, basename="model-version")
router.register("unlearnings", apis.UnlearningViewSet, basename="api-unlearning")

urlpatterns = [
    path("model-versions/", views.model_version_list, name="model-versions"),
    path(
        "model-versions/new/",
        views.model_version_register_page,
        name="model-version-register",
    ),
    path(
        "model-versions/<int:pk>/",
        views.model_version_detail,
        name="model-version",
    ),
    path(
        "model-versions/<int:pk>/status/",
        views.model_version_status,
        name="model-version-status",
    ),
    path(
        "model-versions/<int:pk>/compute-artifacts/",
        views.model_version_compute_artifacts,
        name="model-version-compute",
    ),
    path(
        "model-versions/<int:pk>/unlearn/",
        views.model_version_unlearn,
        name="model-version-unlearn",
    ),
    path("unlearnings/<int:pk>/", views.unlearning_detail, name="unlearning"),
    path("unlearnings/<int:pk>/status/", views.unlearning_status_view, name="unlearning-status"),
    path(
        "unlearnings/<int:pk>/promote/",
        views.unlearning_promote_view,
        name="unlearning-promote",
    ),
    path("generations/<int:pk>/audio/", views.generation_audio, name="generation-audio"),
    path("generations/<int:pk>/audit/", views.generation_audit, name="generation-audit"),
    path(
        "generations/<int:pk>/second-opinion/",
        views.generation_second_opinion,
        name="generation-second-opinion",
    ),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/status/", views.job_status, name="jobs-status"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run-rerun"),
    path("api/generations/", apis.GenerationListCreateApi.as_view(), name="api-generations"),
    path(
        "api/generations/<int:pk>/audio/",
        apis.GenerationAudioApi.as_view(),
        name="api-generation-audio",
    ),
    path(
        "api/generations/<int:pk>/audit/",
        apis.GenerationAuditApi.as_view(),
        name="api-generation-audit",
    ),
    path(
        "api/generations/<int:pk>/second-opinion/",
        apis.GenerationSecondOpinionApi.as_view(),
        name="api-generation-second-opinion",
    ),
    path("api/runs/", apis.AttributionRunListApi.as_view(), name="api-runs"),
    path("api/runs/<int:pk>/", apis.AttributionRunDetailApi.as_view(), name="api-run"),
    path("api/runs/<int:pk>/rerun/", apis.AttributionRunRerunApi.as_view(), name="api-run-rerun"),
    path("api/", include(router.urls)),
]
