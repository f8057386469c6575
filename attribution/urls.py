"""URL routes of attribution: the API under ``/attribution/api/``."""

from django.urls import path

from attribution import apis

app_name = "attribution"

urlpatterns = [
    path("api/generations/", apis.GenerationListCreateApi.as_view(), name="api-generations"),
    path("api/generations/<int:pk>/", apis.GenerationDetailApi.as_view(), name="api-generation"),
    path("api/runs/<int:pk>/rerun/", apis.AttributionRunRerunApi.as_view(), name="api-run-rerun"),
]
