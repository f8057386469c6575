"""Database-level invariant: every recording's ownership shares sum to exactly 100.

PostgreSQL only: deferred constraint triggers check, at commit, every recording whose
shares changed and every new recording, so a transaction may replace shares row by row
but cannot commit a recording whose shares do not sum to 100.0000 (or that has none).
On SQLite (the embedded default) the services are the only guard.
"""

from django.db import migrations

CREATE_SQL = """
CREATE OR REPLACE FUNCTION catalog_recording_shares_check() RETURNS trigger AS $$
DECLARE
    recording_ids bigint[];
    rid bigint;
    total numeric;
BEGIN
    IF TG_TABLE_NAME = 'catalog_recording' THEN
        recording_ids := ARRAY[NEW.id];
    ELSIF TG_OP = 'DELETE' THEN
        recording_ids := ARRAY[OLD.recording_id];
    ELSIF TG_OP = 'UPDATE' THEN
        recording_ids := ARRAY[OLD.recording_id, NEW.recording_id];
    ELSE
        recording_ids := ARRAY[NEW.recording_id];
    END IF;
    FOREACH rid IN ARRAY recording_ids LOOP
        IF EXISTS (SELECT 1 FROM catalog_recording WHERE id = rid) THEN
            SELECT COALESCE(SUM(percent), 0) INTO total
              FROM catalog_ownershipshare WHERE recording_id = rid;
            IF total <> 100 THEN
                RAISE EXCEPTION
                    'ownership shares of recording % sum to % percent, not 100 percent', rid, total
                    USING ERRCODE = 'check_violation';
            END IF;
        END IF;
    END LOOP;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER catalog_ownershipshare_sum_100
    AFTER INSERT OR UPDATE OR DELETE ON catalog_ownershipshare
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION catalog_recording_shares_check();

CREATE CONSTRAINT TRIGGER catalog_recording_shares_sum_100
    AFTER INSERT ON catalog_recording
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION catalog_recording_shares_check();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS catalog_recording_shares_sum_100 ON catalog_recording;
DROP TRIGGER IF EXISTS catalog_ownershipshare_sum_100 ON catalog_ownershipshare;
DROP FUNCTION IF EXISTS catalog_recording_shares_check();
"""


def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE_SQL, params=None)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
