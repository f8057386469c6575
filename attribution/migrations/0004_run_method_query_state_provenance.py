from django.db import migrations, models


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
    ]
