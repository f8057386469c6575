"""Model versions, their training sets and artifacts move from catalog to attribution.

State only: the tables (``catalog_modelversion``, ``catalog_trainingsetentry``,
``catalog_modelartifact``), their rows, constraints and indexes stay as they are; the
models now live in ``attribution.models`` with ``Meta.db_table`` naming those tables.
``catalog.0004`` then drops the catalog models from the state.
"""

import django.core.validators
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0004_run_method_query_state_provenance"),
        ("catalog", "0003_identifier_uniqueness_messages"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    state_operations = [
        migrations.CreateModel(
            name="ModelVersion",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=255, unique=True)),
                ("checkpoint_sha256", models.CharField(max_length=64, unique=True)),
                ("checkpoint_path", models.CharField(max_length=1000)),
                ("config", models.JSONField()),
                ("manifest_sha256", models.CharField(max_length=64)),
                ("manifest_seed", models.BigIntegerField(default=0)),
                ("trained_at", models.DateTimeField()),
                ("opt_out_override_reason", models.TextField(blank=True, help_text="Why opted-out recordings were allowed in the training set")),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("registered_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "db_table": "catalog_modelversion",
                "ordering": ["-created_at"],
            },
        ),
        migrations.CreateModel(
            name="TrainingSetEntry",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("position", models.PositiveIntegerField()),
                ("track_id", models.CharField(blank=True, max_length=255)),
                ("manifest_entry", models.JSONField(default=dict, help_text="The manifest's track entry as trained on (caption, timing...)")),
                ("model_version", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="training_set_entries", to="attribution.modelversion")),
                ("recording", models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="training_set_entries", to="catalog.recording")),
            ],
            options={
                "db_table": "catalog_trainingsetentry",
                "verbose_name_plural": "training set entries",
                "ordering": ["model_version", "position"],
                "constraints": [
                    models.UniqueConstraint(fields=("model_version", "position"), name="training_set_unique_position"),
                    models.UniqueConstraint(fields=("model_version", "recording"), name="training_set_unique_recording"),
                ],
            },
        ),
        migrations.CreateModel(
            name="ModelArtifact",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("fisher", "Diagonal Fisher information"), ("base_losses", "Cached training-set losses")], max_length=16)),
                ("status", models.CharField(choices=[("missing", "Missing"), ("computing", "Computing"), ("ready", "Ready"), ("failed", "Failed")], default="missing", max_length=16)),
                ("path", models.CharField(blank=True, max_length=1000)),
                ("sha256", models.CharField(blank=True, max_length=64)),
                ("progress_percent", models.PositiveSmallIntegerField(default=0, validators=[django.core.validators.MaxValueValidator(100)])),
                ("error", models.TextField(blank=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("model_version", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="artifacts", to="attribution.modelversion")),
            ],
            options={
                "db_table": "catalog_modelartifact",
                "ordering": ["model_version", "kind"],
                "constraints": [
                    models.UniqueConstraint(fields=("model_version", "kind"), name="model_artifact_unique_kind"),
                    models.CheckConstraint(condition=models.Q(("progress_percent__lte", 100)), name="model_artifact_progress_range"),
                    models.CheckConstraint(condition=models.Q(models.Q(("status", "ready"), _negated=True), models.Q(models.Q(("path", ""), _negated=True), models.Q(("sha256", ""), _negated=True)), _connector="OR"), name="model_artifact_ready_has_file"),
                ],
            },
        ),
        migrations.AlterField(
            model_name="generation",
            name="model_version",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="generations", to="attribution.modelversion"),
        ),
        migrations.AlterField(
            model_name="attributionrun",
            name="model_version",
            field=models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name="attribution_runs", to="attribution.modelversion"),
        ),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=state_operations, database_operations=[]),
    ]
