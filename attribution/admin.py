"""Django admin for model versions, read only, for users in the ``catalog_admin`` group.

Model versions are registered with ``manage.py register_model_version``, the page or the
API (``attribution.services.model_version_register``), which check the training manifest
against the catalog; the admin shows them with their artifacts and training sets.
"""

from django.contrib import admin

from attribution.models import ModelArtifact, ModelVersion, TrainingSetEntry
from catalog.admin import ReadOnlyInline, ReadOnlyMixin


class TrainingSetEntryInline(ReadOnlyInline):
    model = TrainingSetEntry
    fields = ("position", "recording", "track_id")
    show_change_link = False


class ModelArtifactInline(ReadOnlyInline):
    model = ModelArtifact
    fields = ("kind", "status", "progress_percent", "path", "sha256", "error", "updated_at")


@admin.register(ModelVersion)
class ModelVersionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("name", "trained_at", "checkpoint_sha256", "created_at")
    search_fields = ("name", "checkpoint_sha256", "manifest_sha256")
    list_filter = ("trained_at",)
    inlines = (ModelArtifactInline, TrainingSetEntryInline)
