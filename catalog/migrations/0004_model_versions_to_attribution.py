"""Model versions, their training sets and artifacts are attribution's now
(``attribution.0005``): drop them from the catalog's state. State only: their tables and
rows stay, owned by ``attribution.models``.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0003_identifier_uniqueness_messages"),
        ("attribution", "0005_model_versions_from_catalog"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ModelArtifact"),
                migrations.DeleteModel(name="TrainingSetEntry"),
                migrations.DeleteModel(name="ModelVersion"),
            ],
            database_operations=[],
        ),
    ]
