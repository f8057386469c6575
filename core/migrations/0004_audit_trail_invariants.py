"""The audit trail's invariants in the database (see core/models.py for the list).

PostgreSQL:
- append-only: a BEFORE UPDATE OR DELETE row trigger and a BEFORE TRUNCATE statement
  trigger raise (SQLSTATE 23001 restrict_violation); TRUNCATE fires no row trigger, and
  ``TRUNCATE auth_user CASCADE`` would reach the trail through its actor key;
- hash chain: an event's seq must follow the tip's and its prev_hash must be the hash of
  event seq - 1 (64 zeros for seq 1); with seq and prev_hash unique the chain stays
  linear.

SQLite (the embedded default) gets the same rules as plain triggers (it has no TRUNCATE).

The trigger functions resolve names in this schema, then in ``pg_temp`` (``search_path``
fixed at creation), so a session cannot shadow the trail with a temporary table.
"""

from django.db import migrations, models

PG_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION core_audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit trail: % on % is refused: the audit trail is append-only', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END $$;
    """,
    """
    CREATE TRIGGER core_auditevent_append_only BEFORE UPDATE OR DELETE ON core_auditevent
    FOR EACH ROW EXECUTE FUNCTION core_audit_refuse_change();
    """,
    """
    CREATE TRIGGER core_auditevent_no_truncate BEFORE TRUNCATE ON core_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION core_audit_refuse_change();
    """,
    """
    CREATE OR REPLACE FUNCTION core_audit_chain_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        tip_seq bigint;
        tip_hash text;
    BEGIN
        -- The chain's tip, read backwards along the seq index: one probe per row, however
        -- large the trail (a range test on seq would be planned as a scan of the table, and
        -- a bulk append of n events would cost n scans).
        SELECT seq, hash INTO tip_seq, tip_hash FROM core_auditevent ORDER BY seq DESC LIMIT 1;
        IF tip_seq IS NULL THEN
            tip_seq := 0;
            tip_hash := repeat('0', 64);
        END IF;
        IF NEW.seq <> tip_seq + 1 OR NEW.prev_hash <> tip_hash THEN
            RAISE EXCEPTION 'audit trail: event % does not extend the hash chain', NEW.seq
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$;
    """,
    """
    CREATE TRIGGER core_auditevent_chain_check BEFORE INSERT ON core_auditevent
    FOR EACH ROW EXECUTE FUNCTION core_audit_chain_check();
    """,
    *[
        # pg_temp last: unlisted, it would be searched first.
        f"""
        DO $$ BEGIN
            EXECUTE format('ALTER FUNCTION {function}() SET search_path = %I, pg_temp', current_schema());
        END $$;
        """
        for function in ("core_audit_refuse_change", "core_audit_chain_check")
    ],
]

PG_REVERSE = [
    "DROP TRIGGER IF EXISTS core_auditevent_append_only ON core_auditevent;",
    "DROP TRIGGER IF EXISTS core_auditevent_no_truncate ON core_auditevent;",
    "DROP TRIGGER IF EXISTS core_auditevent_chain_check ON core_auditevent;",
    "DROP FUNCTION IF EXISTS core_audit_refuse_change();",
    "DROP FUNCTION IF EXISTS core_audit_chain_check();",
]

ZEROS = "0" * 64

SQLITE_FORWARD = [
    *[
        f"""
        CREATE TRIGGER core_auditevent_no_{op.lower()} BEFORE {op} ON core_auditevent
        BEGIN SELECT RAISE(ABORT, 'audit trail: {op} on core_auditevent is refused: the audit trail is append-only'); END;
        """
        for op in ("UPDATE", "DELETE")
    ],
    f"""
    CREATE TRIGGER core_auditevent_chain_check BEFORE INSERT ON core_auditevent
    WHEN NOT (NEW.prev_hash IS (CASE WHEN NEW.seq = 1 THEN '{ZEROS}'
                                     ELSE (SELECT hash FROM core_auditevent WHERE seq = NEW.seq - 1) END))
      OR EXISTS (SELECT 1 FROM core_auditevent WHERE seq >= NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'audit trail: event does not extend the hash chain'); END;
    """,  # noqa: S608 (a constant, no input)
]

SQLITE_TRIGGER_NAMES = [
    "core_auditevent_no_update",
    "core_auditevent_no_delete",
    "core_auditevent_chain_check",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = PG_FORWARD
    elif vendor == "sqlite":
        statements = SQLITE_FORWARD
    else:
        raise RuntimeError(f"audit trail invariants are not implemented for {vendor}")
    for sql in statements:
        schema_editor.execute(sql, params=None)


def reverse(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = PG_REVERSE
    else:
        statements = [f"DROP TRIGGER IF EXISTS {name};" for name in SQLITE_TRIGGER_NAMES]
    for sql in statements:
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("core", "0003_audit_chain_backfill")]

    operations = [
        migrations.AlterField(
            model_name="auditevent",
            name="seq",
            field=models.PositiveBigIntegerField(
                help_text="Position in the audit chain", unique=True
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.RunPython(forward, reverse),
    ]
