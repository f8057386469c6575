"""Chains the audit events recorded before the trail was chained, in the order they were
recorded (by id), exactly as ``core.services.audit_record`` chains new ones."""

from django.db import migrations

from core import hashing

BATCH = 2000


def chain_existing_events(apps, schema_editor):
    AuditEvent = apps.get_model("core", "AuditEvent")
    prev_hash = hashing.GENESIS_HASH
    seq = 0
    last_id = 0
    while True:
        batch = list(AuditEvent.objects.filter(id__gt=last_id).order_by("id")[:BATCH])
        if not batch:
            return
        for event in batch:
            seq += 1
            event.seq = seq
            event.prev_hash = prev_hash
            event.hash = hashing.audit_event_hash(prev_hash, event)
            prev_hash = event.hash
        AuditEvent.objects.bulk_update(batch, ["seq", "prev_hash", "hash"])
        last_id = batch[-1].id


class Migration(migrations.Migration):
    dependencies = [("core", "0002_audit_chain_fields")]

    operations = [migrations.RunPython(chain_existing_events, migrations.RunPython.noop)]
