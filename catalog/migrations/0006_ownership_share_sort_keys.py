"""Each ownership share carries its recording's ISRC and title, and a rights holder's
shares are indexed by (holder, ISRC), (holder, title, ISRC) and (holder, percent, ISRC),
each ending in the id: My catalog reads a page of a holder's shares in any of its orders
off one index (``catalog.models.OwnershipShare``). Recordings are indexed by title (then
ISRC) for the API's list by title."""

import django.db.models.deletion
from django.db import migrations, models

COPY_SQL = """
UPDATE catalog_ownershipshare SET
    recording_isrc = (
        SELECT isrc FROM catalog_recording WHERE catalog_recording.id = catalog_ownershipshare.recording_id
    ),
    recording_title = (
        SELECT title FROM catalog_recording WHERE catalog_recording.id = catalog_ownershipshare.recording_id
    )
"""


class Migration(migrations.Migration):

    dependencies = [
        ('catalog', '0005_text_without_control_characters'),
    ]

    operations = [
        migrations.AddField(
            model_name='ownershipshare',
            name='recording_isrc',
            field=models.CharField(default='', editable=False, max_length=12, verbose_name='ISRC'),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name='ownershipshare',
            name='recording_title',
            field=models.CharField(default='', editable=False, max_length=255, verbose_name='title'),
            preserve_default=False,
        ),
        migrations.RunSQL(COPY_SQL, reverse_sql=migrations.RunSQL.noop, elidable=False),
        migrations.AlterField(
            model_name='ownershipshare',
            name='rights_holder',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='ownership_shares', to='catalog.rightsholder'),
        ),
        migrations.AddConstraint(
            model_name='ownershipshare',
            constraint=models.CheckConstraint(condition=models.Q(('recording_isrc__regex', '^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$')), name='ownership_share_isrc_copied'),
        ),
        migrations.AddIndex(
            model_name='ownershipshare',
            index=models.Index(fields=['rights_holder', 'recording_isrc', 'id'], name='share_holder_isrc'),
        ),
        migrations.AddIndex(
            model_name='ownershipshare',
            index=models.Index(fields=['rights_holder', 'recording_title', 'recording_isrc', 'id'], name='share_holder_title'),
        ),
        migrations.AddIndex(
            model_name='ownershipshare',
            index=models.Index(fields=['rights_holder', 'percent', 'recording_isrc', 'id'], name='share_holder_percent'),
        ),
        migrations.AddIndex(
            model_name='recording',
            index=models.Index(fields=['title', 'isrc'], name='recording_title_isrc'),
        ),
    ]
