from django.db import migrations, models

INTERRUPTED = (
    "Interrupted by an upgrade of the attribution pipeline (its intermediate files changed "
    "format); re-run it."
)


def fail_runs_in_flight(apps, schema_editor):
    """A run half done by the previous pipeline cannot be finished by this one (its saved
    theta' has another format and it has no shard size): fail it readably, books nothing."""
    AttributionRun = apps.get_model("attribution", "AttributionRun")
    Generation = apps.get_model("attribution", "Generation")
    active = AttributionRun.objects.filter(status__in=["queued", "running", "retrying"])
    Generation.objects.filter(pk__in=active.values("generation_id")).update(
        status="failed", error=INTERRUPTED
    )
    active.update(status="failed", error=INTERRUPTED)


class Migration(migrations.Migration):
    dependencies = [
        ("attribution", "0003_alter_attributionrun_status"),
    ]

    operations = [
        migrations.RenameField(
            model_name="attributionrun",
            old_name="unlearned_weights_path",
            new_name="query_state_path",
        ),
        migrations.RenameField(
            model_name="attributionrun",
            old_name="unlearned_weights_sha256",
            new_name="query_state_sha256",
        ),
        migrations.AddField(
            model_name="attributionrun",
            name="method",
            field=models.CharField(default="unlearning", max_length=64),
        ),
        migrations.AddField(
            model_name="attributionrun",
            name="provenance",
            field=models.JSONField(blank=True, default=dict, help_text="Written with the scores"),
        ),
        migrations.AddField(
            model_name="attributionrun",
            name="shard_size",
            field=models.PositiveIntegerField(
                default=0, help_text="Training-set items per shard, fixed when the run is prepared"
            ),
        ),
        migrations.RenameField(
            model_name="attributionshard",
            old_name="unlearned_losses",
            new_name="values",
        ),
        migrations.AlterField(
            model_name="attributionshard",
            name="values",
            field=models.JSONField(help_text="The method's value for positions start..stop-1"),
        ),
        migrations.RunPython(fail_runs_in_flight, migrations.RunPython.noop),
    ]
