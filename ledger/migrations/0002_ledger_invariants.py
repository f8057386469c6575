"""Database-level ledger invariants (see ledger/models.py for the list).

PostgreSQL:
- append-only: BEFORE UPDATE OR DELETE triggers on accounts, entries, postings,
  settlements and their lines, and statements raise (SQLSTATE 23001 restrict_violation);
- a posting may only be inserted for an entry that is not yet in the ledger, and in the
  currency of its account;
- each entry balances per currency: a constraint trigger DEFERRABLE INITIALLY DEFERRED,
  so it is checked at COMMIT once all postings are in (SQLSTATE 23514 check_violation);
- hash chain: an entry's prev_hash must be the hash of entry seq - 1 (64 zeros for seq 1);
  together with the primary key on seq and the unique prev_hash the chain stays linear;
- no entry may be dated inside a closed statement period; a closed period stays closed.

SQLite (the embedded default) gets the same rules as plain triggers; it has no deferred
triggers, so the balance check runs when the entry row is inserted, which the services do
after inserting its postings.
"""

from django.db import migrations

APPEND_ONLY_TABLES = [
    "ledger_account",
    "ledger_journalentry",
    "ledger_posting",
    "ledger_settlement",
    "ledger_settlementtrackline",
    "ledger_settlementholderline",
    "ledger_statement",
]

PG_FORWARD = [
    """
    CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'ledger: % on % is refused: the ledger is append-only', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END $$;
    """,
    *[
        f"""
        CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
        """
        for table in APPEND_ONLY_TABLES
    ],
    """
    CREATE OR REPLACE FUNCTION ledger_posting_check() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM ledger_journalentry WHERE seq = NEW.entry_id) THEN
            RAISE EXCEPTION 'ledger: journal entry % is already posted; postings cannot be added', NEW.entry_id
                USING ERRCODE = 'restrict_violation';
        END IF;
        IF NOT EXISTS (SELECT 1 FROM ledger_account WHERE id = NEW.account_id AND currency = NEW.currency) THEN
            RAISE EXCEPTION 'ledger: posting currency % does not match account %', NEW.currency, NEW.account_id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$;
    """,
    """
    CREATE TRIGGER ledger_posting_check BEFORE INSERT ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_check();
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_entry_chain_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        expected text;
    BEGIN
        IF NEW.seq = 1 THEN
            expected := repeat('0', 64);
        ELSE
            SELECT hash INTO expected FROM ledger_journalentry WHERE seq = NEW.seq - 1;
        END IF;
        IF expected IS NULL OR NEW.prev_hash <> expected THEN
            RAISE EXCEPTION 'ledger: entry % does not extend the hash chain', NEW.seq
                USING ERRCODE = 'check_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM ledger_statementperiod
                   WHERE closed_at IS NOT NULL AND starts_at <= NEW.effective_at AND NEW.effective_at < ends_at) THEN
            RAISE EXCEPTION 'ledger: entry % is dated in a closed period', NEW.seq
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$;
    """,
    """
    CREATE TRIGGER ledger_entry_chain_check BEFORE INSERT ON ledger_journalentry
    FOR EACH ROW EXECUTE FUNCTION ledger_entry_chain_check();
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_entry_balance_check() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        bad record;
    BEGIN
        SELECT currency, SUM(amount) AS total INTO bad FROM ledger_posting
        WHERE entry_id = NEW.seq GROUP BY currency HAVING SUM(amount) <> 0 LIMIT 1;
        IF FOUND THEN
            RAISE EXCEPTION 'ledger: journal entry % does not balance in % (sum %)', NEW.seq, bad.currency, bad.total
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$;
    """,
    """
    CREATE CONSTRAINT TRIGGER ledger_entry_balanced AFTER INSERT ON ledger_journalentry
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_entry_balance_check();
    """,
    """
    CREATE OR REPLACE FUNCTION ledger_period_check() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' THEN
            IF OLD.closed_at IS NOT NULL THEN
                RAISE EXCEPTION 'ledger: a closed period cannot be deleted' USING ERRCODE = 'restrict_violation';
            END IF;
            RETURN OLD;
        END IF;
        IF OLD.closed_at IS NOT NULL THEN
            RAISE EXCEPTION 'ledger: a closed period cannot be changed' USING ERRCODE = 'restrict_violation';
        END IF;
        RETURN NEW;
    END $$;
    """,
    """
    CREATE TRIGGER ledger_period_check BEFORE UPDATE OR DELETE ON ledger_statementperiod
    FOR EACH ROW EXECUTE FUNCTION ledger_period_check();
    """,
]

PG_REVERSE = [
    *[f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in APPEND_ONLY_TABLES],
    "DROP TRIGGER IF EXISTS ledger_posting_check ON ledger_posting;",
    "DROP TRIGGER IF EXISTS ledger_entry_chain_check ON ledger_journalentry;",
    "DROP TRIGGER IF EXISTS ledger_entry_balanced ON ledger_journalentry;",
    "DROP TRIGGER IF EXISTS ledger_period_check ON ledger_statementperiod;",
    "DROP FUNCTION IF EXISTS ledger_refuse_change();",
    "DROP FUNCTION IF EXISTS ledger_posting_check();",
    "DROP FUNCTION IF EXISTS ledger_entry_chain_check();",
    "DROP FUNCTION IF EXISTS ledger_entry_balance_check();",
    "DROP FUNCTION IF EXISTS ledger_period_check();",
]

ZEROS = "0" * 64

SQLITE_FORWARD = [
    *[
        f"""
        CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
        BEGIN SELECT RAISE(ABORT, 'ledger: {op} on {table} is refused: the ledger is append-only'); END;
        """
        for table in APPEND_ONLY_TABLES
        for op in ("UPDATE", "DELETE")
    ],
    """
    CREATE TRIGGER ledger_posting_check BEFORE INSERT ON ledger_posting
    WHEN EXISTS (SELECT 1 FROM ledger_journalentry WHERE seq = NEW.entry_id)
      OR NOT EXISTS (SELECT 1 FROM ledger_account WHERE id = NEW.account_id AND currency = NEW.currency)
    BEGIN SELECT RAISE(ABORT, 'ledger: posting refused (entry already posted or currency mismatch)'); END;
    """,
    f"""
    CREATE TRIGGER ledger_entry_check BEFORE INSERT ON ledger_journalentry
    WHEN NOT (NEW.prev_hash IS (CASE WHEN NEW.seq = 1 THEN '{ZEROS}'
                                     ELSE (SELECT hash FROM ledger_journalentry WHERE seq = NEW.seq - 1) END))
    BEGIN SELECT RAISE(ABORT, 'ledger: entry does not extend the hash chain'); END;
    """,  # noqa: S608 (a constant, no input)
    """
    CREATE TRIGGER ledger_entry_balanced BEFORE INSERT ON ledger_journalentry
    WHEN EXISTS (SELECT 1 FROM ledger_posting WHERE entry_id = NEW.seq
                 GROUP BY currency HAVING SUM(amount) <> 0)
    BEGIN SELECT RAISE(ABORT, 'ledger: journal entry does not balance'); END;
    """,
    """
    CREATE TRIGGER ledger_entry_period BEFORE INSERT ON ledger_journalentry
    WHEN EXISTS (SELECT 1 FROM ledger_statementperiod WHERE closed_at IS NOT NULL
                 AND starts_at <= NEW.effective_at AND NEW.effective_at < ends_at)
    BEGIN SELECT RAISE(ABORT, 'ledger: entry is dated in a closed period'); END;
    """,
    """
    CREATE TRIGGER ledger_period_closed_update BEFORE UPDATE ON ledger_statementperiod
    WHEN OLD.closed_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'ledger: a closed period cannot be changed'); END;
    """,
    """
    CREATE TRIGGER ledger_period_closed_delete BEFORE DELETE ON ledger_statementperiod
    WHEN OLD.closed_at IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'ledger: a closed period cannot be deleted'); END;
    """,
]

SQLITE_TRIGGER_NAMES = [
    *[f"{t}_no_{op}" for t in APPEND_ONLY_TABLES for op in ("update", "delete")],
    "ledger_posting_check",
    "ledger_entry_check",
    "ledger_entry_balanced",
    "ledger_entry_period",
    "ledger_period_closed_update",
    "ledger_period_closed_delete",
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
    dependencies = [("ledger", "0001_initial")]

    operations = [migrations.RunPython(forward, reverse)]
