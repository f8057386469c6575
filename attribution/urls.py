"""URL routes of attribution: pages under ``/attribution/``, the API under
``/attribution/api/``."""

from django.urls import path

from attribution import apis, views

app_name = "attribution"

urlpatterns = [
    path("generations/", views.generation_list, name="generations"),
    path("generations/<int:pk>/", views.generation_detail, name="generation"),
    path("generations/<int:pk>/audio/", views.generation_audio, name="generation-audio"),
    path("jobs/", views.job_list, name="jobs"),
    path("jobs/status/", views.job_status, name="jobs-status"),
    path("runs/<int:pk>/rerun/", views.run_rerun, name="run-rerun"),
    path("api/generations/", apis.GenerationListCreateApi.as_view(), name="api-generations"),
    path("api/generations/<int:pk>/", apis.GenerationDetailApi.as_view(), name="api-generation"),
    path(
        "api/generations/<int:pk>/audio/",
        apis.GenerationAudioApi.as_view(),
        name="api-generation-audio",
    ),
    path("api/runs/", apis.AttributionRunListApi.as_view(), name="api-runs"),
    path("api/runs/<int:pk>/", apis.AttributionRunDetailApi.as_view(), name="api-run"),
    path("api/runs/<int:pk>/rerun/", apis.AttributionRunRerunApi.as_view(), name="api-run-rerun"),
]
