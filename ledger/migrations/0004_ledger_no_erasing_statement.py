"""No statement erases the ledger: TRUNCATE, and payouts (see ledger/models.py).

PostgreSQL:
- TRUNCATE of every ledger table is refused by a BEFORE TRUNCATE statement trigger
  (SQLSTATE 23001 restrict_violation). TRUNCATE fires no row trigger, so the append-only
  triggers of 0002 never saw it; ``TRUNCATE ... CASCADE`` of a table the ledger references
  (rights holders, recordings, generations, users) fires these triggers on every ledger
  table it would empty, so it is refused too;
- payout batches and lines are never deleted; an update may only move a batch from draft
  to paid (setting paid_at) and a line from pending to paid or failed, or from paid to
  failed (setting failure_reason); nothing else of them changes;
- every ledger trigger function resolves names in this schema, then in ``pg_temp``, so a
  session cannot shadow a ledger table with a temporary table of the same name.

SQLite has no TRUNCATE (its ``DELETE`` without ``WHERE`` still fires the row triggers);
it gets the payout rules as plain triggers.
"""

from django.db import migrations

TRUNCATE_REFUSED_TABLES = [
    # the append-only tables of 0002
    "ledger_account",
    "ledger_journalentry",
    "ledger_posting",
    "ledger_settlement",
    "ledger_settlementtrackline",
    "ledger_settlementholderline",
    "ledger_statement",
    # the tables with rules of their own
    "ledger_statementperiod",
    "ledger_payoutbatch",
    "ledger_payoutline",
]

PAYOUT_CHECK = """
CREATE OR REPLACE FUNCTION ledger_payout_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'ledger: DELETE on % is refused: payouts are kept', TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF TG_TABLE_NAME = 'ledger_payoutbatch' THEN
        IF NOT (OLD.status = 'draft' AND NEW.status IN ('draft', 'paid'))
           OR (NEW.status = 'paid' AND NEW.paid_at IS NULL)
           OR ROW(NEW.id, NEW.currency, NEW.threshold_minor, NEW.period_id, NEW.created_by_id, NEW.created_at)
              IS DISTINCT FROM
              ROW(OLD.id, OLD.currency, OLD.threshold_minor, OLD.period_id, OLD.created_by_id, OLD.created_at) THEN
            RAISE EXCEPTION 'ledger: payout batch % may only go from draft to paid', OLD.id
                USING ERRCODE = 'restrict_violation';
        END IF;
    ELSE
        IF NOT ((OLD.status = 'pending' AND NEW.status IN ('pending', 'paid', 'failed'))
                OR (OLD.status = 'paid' AND NEW.status IN ('paid', 'failed'))
                OR (OLD.status = 'failed' AND NEW.status = 'failed'
                    AND NEW.failure_reason = OLD.failure_reason))
           OR ROW(NEW.id, NEW.batch_id, NEW.rights_holder_id, NEW.amount_minor)
              IS DISTINCT FROM ROW(OLD.id, OLD.batch_id, OLD.rights_holder_id, OLD.amount_minor) THEN
            RAISE EXCEPTION 'ledger: payout line % may only go from pending to paid or failed, or from paid to failed', OLD.id
                USING ERRCODE = 'restrict_violation';
        END IF;
    END IF;
    RETURN NEW;
END $$;
"""

TRIGGER_FUNCTIONS = [
    "ledger_refuse_change",
    "ledger_posting_check",
    "ledger_entry_chain_check",
    "ledger_entry_balance_check",
    "ledger_period_check",
    "ledger_payout_check",
]

PG_FORWARD = [
    *[
        f"""
        CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
        """
        for table in TRUNCATE_REFUSED_TABLES
    ],
    PAYOUT_CHECK,
    *[
        f"""
        CREATE TRIGGER {table}_check BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION ledger_payout_check();
        """
        for table in ("ledger_payoutbatch", "ledger_payoutline")
    ],
    *[
        # pg_temp last: unlisted, it would be searched first.
        f"""
        DO $$ BEGIN
            EXECUTE format('ALTER FUNCTION {function}() SET search_path = %I, pg_temp', current_schema());
        END $$;
        """
        for function in TRIGGER_FUNCTIONS
    ],
]

PG_REVERSE = [
    *[f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t};" for t in TRUNCATE_REFUSED_TABLES],
    "DROP TRIGGER IF EXISTS ledger_payoutbatch_check ON ledger_payoutbatch;",
    "DROP TRIGGER IF EXISTS ledger_payoutline_check ON ledger_payoutline;",
    "DROP FUNCTION IF EXISTS ledger_payout_check();",
    *[f"ALTER FUNCTION {f}() RESET search_path;" for f in TRIGGER_FUNCTIONS[:-1]],
]

SQLITE_FORWARD = [
    *[
        f"""
        CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
        BEGIN SELECT RAISE(ABORT, 'ledger: DELETE on {table} is refused: payouts are kept'); END;
        """
        for table in ("ledger_payoutbatch", "ledger_payoutline")
    ],
    """
    CREATE TRIGGER ledger_payoutbatch_update BEFORE UPDATE ON ledger_payoutbatch
    WHEN NOT (OLD.status = 'draft' AND NEW.status IN ('draft', 'paid'))
      OR (NEW.status = 'paid' AND NEW.paid_at IS NULL)
      OR NEW.id IS NOT OLD.id OR NEW.currency IS NOT OLD.currency
      OR NEW.threshold_minor IS NOT OLD.threshold_minor OR NEW.period_id IS NOT OLD.period_id
      OR NEW.created_by_id IS NOT OLD.created_by_id OR NEW.created_at IS NOT OLD.created_at
    BEGIN SELECT RAISE(ABORT, 'ledger: a payout batch may only go from draft to paid'); END;
    """,
    """
    CREATE TRIGGER ledger_payoutline_update BEFORE UPDATE ON ledger_payoutline
    WHEN NOT ((OLD.status = 'pending' AND NEW.status IN ('pending', 'paid', 'failed'))
              OR (OLD.status = 'paid' AND NEW.status IN ('paid', 'failed'))
              OR (OLD.status = 'failed' AND NEW.status = 'failed'
                  AND NEW.failure_reason IS OLD.failure_reason))
      OR NEW.id IS NOT OLD.id OR NEW.batch_id IS NOT OLD.batch_id
      OR NEW.rights_holder_id IS NOT OLD.rights_holder_id
      OR NEW.amount_minor IS NOT OLD.amount_minor
    BEGIN SELECT RAISE(ABORT, 'ledger: a payout line may only go from pending to paid or failed, or from paid to failed'); END;
    """,
]

SQLITE_TRIGGER_NAMES = [
    "ledger_payoutbatch_no_delete",
    "ledger_payoutline_no_delete",
    "ledger_payoutbatch_update",
    "ledger_payoutline_update",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        statements = PG_FORWARD
    elif vendor == "sqlite":
        statements = SQLITE_FORWARD
    else:
        raise RuntimeError(f"ledger invariants are not implemented for {vendor}")
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
    dependencies = [("ledger", "0003_payout_batch_period")]

    operations = [migrations.RunPython(forward, reverse)]
