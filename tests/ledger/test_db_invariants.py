"""The database itself refuses what the ledger forbids (real commits, PostgreSQL triggers)."""

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from ledger import hashing, selectors, services
from ledger.models import Account, JournalEntry, Posting, Settlement
from tests.conftest import database_session
from tests.ledger import factories

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'"),
]


@pytest.fixture
def booked():
    model_version, _ = factories.catalog_create(tracks=9, holders=3)
    entries = []
    for seed in range(3):
        generation = factories.generation_create(model_version=model_version, revenue_minor=777)
        run = factories.run_create(generation=generation, scores=factories.scores_for(9, seed))
        entries.append(services.generation_settle(attribution_run=run))
    return entries


def raw(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def last_entry_row() -> tuple[int, str]:
    return JournalEntry.objects.order_by("-seq").values_list("seq", "hash").first()


LEDGER_TABLES = [
    "ledger_account",
    "ledger_journalentry",
    "ledger_posting",
    "ledger_settlement",
    "ledger_settlementtrackline",
    "ledger_settlementholderline",
    "ledger_statementperiod",
    "ledger_statement",
    "ledger_payoutbatch",
    "ledger_payoutline",
]

ERASING_STATEMENTS = [
    "UPDATE ledger_posting SET amount = amount + 1",
    "DELETE FROM ledger_posting",
    "UPDATE ledger_journalentry SET memo = 'edited'",
    "DELETE FROM ledger_journalentry WHERE seq = 3",
    "UPDATE ledger_account SET currency = 'EUR'",
    "UPDATE ledger_settlement SET pool = 0",
    "DELETE FROM ledger_settlementholderline",
    "UPDATE ledger_settlementtrackline SET amount = 0",
    "DELETE FROM ledger_statement",
    # the row triggers see every other way of writing the same thing
    "WITH gone AS (DELETE FROM ledger_posting RETURNING 1) SELECT count(*) FROM gone",
    "MERGE INTO ledger_posting p USING (SELECT 1) s ON true WHEN MATCHED THEN DELETE",
    "INSERT INTO ledger_account (key, kind, currency, created_at) "
    "SELECT key, kind, currency, created_at FROM ledger_account "
    "ON CONFLICT (key) DO UPDATE SET currency = 'EUR'",
    # statement-level: no row trigger fires (CASCADE, or a table that another references
    # would be refused by its foreign keys before any trigger is asked)
    "TRUNCATE ledger_posting",
    *[f"TRUNCATE {table} CASCADE" for table in LEDGER_TABLES],
    # a table the ledger references, emptied with everything that references it
    "TRUNCATE catalog_rightsholder CASCADE",
    "TRUNCATE catalog_recording CASCADE",
    "TRUNCATE attribution_generation CASCADE",
    "TRUNCATE auth_user CASCADE",
]


def ledger_row_counts(session) -> dict[str, int]:
    return {
        table: session.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in LEDGER_TABLES
    }


@pytest.fixture
def booked_with_statements_and_payouts(booked):
    """``booked``, plus a closed period with statements and a paid payout batch, so that
    every ledger table has rows."""
    from datetime import timedelta

    period = services.statement_period_create(
        starts_at=booked[0].effective_at - timedelta(seconds=1),
        ends_at=timezone.now(),
    )
    services.statement_period_close(period=period)
    settlement = Settlement.objects.get(journal_entry=booked[0])
    for line in settlement.holders.select_related("rights_holder"):
        services.statement_generate(rights_holder=line.rights_holder, period=period, currency="USD")
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    services.payout_batch_mark_paid(batch=batch)
    return booked


@pytest.mark.parametrize("as_owner", [True, False], ids=["owner", "application"])
def test_no_statement_erases_the_ledger(booked_with_statements_and_payouts, as_owner):
    """Each statement, committed on a connection of its own: as the owner (who holds every
    privilege) the triggers refuse it; as the application's role it is refused too, by its
    missing privilege or else by the same triggers. Nothing changes either way."""
    import psycopg

    with database_session(as_owner=True) as owner:
        before = ledger_row_counts(owner)
    assert all(before.values()), before
    with database_session(as_owner=as_owner) as session:
        for sql in ERASING_STATEMENTS:
            with pytest.raises(psycopg.Error) as refused:
                session.execute(sql)
            if as_owner:  # restrict_violation, raised by a ledger trigger
                assert refused.value.sqlstate == "23001", (sql, refused.value)
                assert re.search("append-only|payouts are kept", str(refused.value)), sql
            else:  # insufficient_privilege, or else the same triggers
                assert refused.value.sqlstate in ("42501", "23001"), (sql, refused.value)
    with database_session(as_owner=True) as owner:
        assert ledger_row_counts(owner) == before
    assert selectors.ledger_verify().ok


def test_owner_can_truncate_a_table_outside_the_ledger(booked):
    """The refusals are the ledger's: TRUNCATE itself still works where nothing refuses it."""
    with database_session(as_owner=True) as owner:
        owner.execute("TRUNCATE django_session")


def test_orm_update_and_delete_are_refused(booked):
    """The ORM's writes are refused: the application's role has no UPDATE or DELETE on the
    ledger, and as the owner the triggers refuse them (a posting is referenced by nothing,
    so Django's own on_delete=PROTECT does not stop its delete first)."""
    entry = booked[0]
    writes = [
        lambda: Posting.objects.filter(entry=entry).update(amount=1),
        lambda: Posting.objects.filter(entry=entry).delete(),
        lambda: JournalEntry.objects.filter(pk=entry.pk).update(memo="edited"),
    ]
    for write in writes:
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            write()
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            raw("SET LOCAL ROLE NONE")  # the owner (tests/conftest.py)
            write()
    assert selectors.ledger_verify().ok


def test_a_paid_payout_stays_paid(booked_with_statements_and_payouts):
    """Payout batches and lines change only forward (draft to paid; pending to paid or
    failed; paid to failed), even for the owner."""
    import psycopg

    statements = [
        "UPDATE ledger_payoutbatch SET status = 'draft', paid_at = NULL",
        "UPDATE ledger_payoutbatch SET threshold_minor = threshold_minor + 1",
        "UPDATE ledger_payoutline SET status = 'pending'",
        "UPDATE ledger_payoutline SET amount_minor = amount_minor + 1",
    ]
    with database_session(as_owner=True) as owner:
        for sql in statements:
            with pytest.raises(psycopg.errors.RestrictViolation, match="payout"):
                owner.execute(sql)
        # the one change left to a paid line: it failed to reach its holder
        line_id = owner.execute("SELECT min(id) FROM ledger_payoutline").fetchone()[0]
        owner.execute(
            "UPDATE ledger_payoutline SET status = 'failed', failure_reason = 'bounced' "
            "WHERE id = %s",
            [line_id],
        )
        with pytest.raises(psycopg.errors.RestrictViolation, match="payout"):
            owner.execute(
                "UPDATE ledger_payoutline SET failure_reason = 'other' WHERE id = %s", [line_id]
            )


def _append(lines: list[tuple[Account, int]], *, prev_hash: str | None = None) -> JournalEntry:
    """Insert an entry the way the service does but without its assertions."""
    seq, last_hash = last_entry_row()
    seq += 1
    for i, (account, amount) in enumerate(lines):
        Posting.objects.create(
            entry_id=seq, index=i, account=account, currency=account.currency, amount=amount
        )
    entry = JournalEntry(
        seq=seq,
        kind="settlement",
        currency="USD",
        effective_at=timezone.now(),
        prev_hash=prev_hash or last_hash,
        hash=hashing.sha256_hex(str(seq).encode()),
    )
    entry.save(force_insert=True)
    return entry


def test_unbalanced_entry_is_refused_at_commit(booked):
    receivable = Account.objects.get(key="revenue_receivable:USD")
    platform = Account.objects.get(key="platform_revenue:USD")
    inserted = False
    with pytest.raises(IntegrityError, match="does not balance"), transaction.atomic():
        _append([(receivable, 100), (platform, -99)])
        inserted = True  # the inserts themselves pass; the check is deferred
    assert inserted
    assert JournalEntry.objects.count() == 3
    assert not Posting.objects.filter(entry_id=4).exists()
    # A balanced one with the same shape commits (the trigger is not refusing everything).
    with transaction.atomic():
        _append([(receivable, 100), (platform, -100)])
    assert JournalEntry.objects.count() == 4


def test_entry_must_extend_the_chain(booked):
    receivable = Account.objects.get(key="revenue_receivable:USD")
    platform = Account.objects.get(key="platform_revenue:USD")
    # A prev_hash no entry has, so the unique prev_hash cannot be what refuses it.
    with pytest.raises(IntegrityError, match="hash chain"), transaction.atomic():
        _append([(receivable, 1), (platform, -1)], prev_hash="f" * 64)
    assert JournalEntry.objects.count() == 3


def test_postings_cannot_be_added_to_a_posted_entry(booked):
    receivable = Account.objects.get(key="revenue_receivable:USD")
    platform = Account.objects.get(key="platform_revenue:USD")
    with pytest.raises(IntegrityError, match="already posted"), transaction.atomic():
        Posting.objects.create(entry_id=2, index=90, account=receivable, currency="USD", amount=5)
        Posting.objects.create(entry_id=2, index=91, account=platform, currency="USD", amount=-5)


def test_posting_currency_must_match_account(booked):
    receivable = Account.objects.get(key="revenue_receivable:USD")
    with pytest.raises(IntegrityError, match="currency"), transaction.atomic():
        Posting.objects.create(entry_id=99, index=0, account=receivable, currency="EUR", amount=5)


def _tamper(sql: str) -> None:
    """Run ``sql`` as a superuser would: the owner (the session user, see tests/conftest.py)
    with every trigger disabled."""
    with transaction.atomic():
        raw("SET LOCAL ROLE NONE")
        raw("SET LOCAL session_replication_role = replica")  # disables every trigger
        raw(sql)


@pytest.mark.parametrize(
    ("sql", "seq", "reason"),
    [
        (  # a balanced edit: moves money between two postings of entry 2
            "UPDATE ledger_posting SET amount = amount + CASE WHEN index = 1 THEN 5 ELSE -5 END "
            "WHERE entry_id = 2 AND index IN (1, 2)",
            2,
            "does not match its hash",
        ),
        ("UPDATE ledger_posting SET amount = amount + 5 WHERE entry_id = 2 AND index = 1", 2, ""),
        ("DELETE FROM ledger_posting WHERE entry_id = 3 AND index = 0", 3, ""),
        ("UPDATE ledger_journalentry SET memo = 'x' WHERE seq = 1", 1, "does not match its hash"),
        ("DELETE FROM ledger_journalentry WHERE seq = 2", 2, "missing"),
        ("UPDATE ledger_settlement SET policy = '{}' WHERE journal_entry_id = 1", 1, "provenance"),
    ],
)
def test_raw_sql_tampering_is_detected(booked, sql, seq, reason):
    assert selectors.ledger_verify().ok
    _tamper(sql)
    report = selectors.ledger_verify()
    assert not report.ok
    assert report.break_seq == seq, report.first_break
    assert reason in report.first_break
    with pytest.raises(CommandError, match=f"entry #{seq}"):
        call_command("verify_ledger")


def test_rewritten_chain_is_detected_downstream(booked):
    """Re-hashing an edited entry consistently still breaks the next link."""
    entry = JournalEntry.objects.get(seq=2)
    postings = [
        (p.index, p.account.key, p.currency, p.amount)
        for p in entry.postings.select_related("account").order_by("index")
    ]
    entry.memo = "forged"
    forged_hash = hashing.entry_hash(entry.prev_hash, hashing.entry_content(entry, postings))
    _tamper(f"UPDATE ledger_journalentry SET memo = 'forged', hash = '{forged_hash}' WHERE seq = 2")
    report = selectors.ledger_verify()
    assert report.break_seq == 3 and "prev_hash" in report.first_break


def constraint_name(error: IntegrityError) -> str | None:
    """The name of the constraint PostgreSQL reports as violated (None for a trigger)."""
    return error.__cause__.diag.constraint_name


def _settlement_copy(settlement: Settlement, **fields) -> Settlement:
    """A new row with ``settlement``'s fields, except ``fields``."""
    values = {
        f.attname: getattr(settlement, f.attname)
        for f in Settlement._meta.concrete_fields
        if not f.primary_key
    }
    return Settlement(**{**values, **fields})


def test_duplicate_settlement_is_refused_by_the_database(booked):
    """A second settlement of the same (generation, attribution run), booked on an entry
    no settlement uses yet: only ``ledger_settlement_once`` stands in its way."""
    settlement = Settlement.objects.get(journal_entry=booked[0])
    reversal = services.journal_entry_reverse(entry=booked[2], reason="a free entry")
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        _settlement_copy(settlement, journal_entry_id=reversal.seq).save(force_insert=True)
    assert constraint_name(refused.value) == "ledger_settlement_once"
    assert Settlement.objects.filter(generation=settlement.generation).count() == 1


def test_a_settlement_shares_its_journal_entry_with_no_other(booked):
    """The other key: one settlement per journal entry (the one-to-one field), for a
    (generation, attribution run) not settled yet."""
    settlement = Settlement.objects.get(journal_entry=booked[0])
    generation = factories.generation_create(model_version=settlement.generation.model_version)
    run = factories.run_create(generation=generation, scores=factories.scores_for(9, 7))
    with pytest.raises(IntegrityError) as refused, transaction.atomic():
        _settlement_copy(settlement, generation_id=generation.pk, attribution_run_id=run.pk).save(
            force_insert=True
        )
    assert constraint_name(refused.value) == "ledger_settlement_journal_entry_id_key"


def test_cutting_off_the_newest_entries_is_detected_with_an_anchor(booked):
    out = io.StringIO()
    call_command("verify_ledger", stdout=out)
    head = out.getvalue().strip().splitlines()[-1].removeprefix("head ")
    assert head.startswith("3:")
    _tamper(
        "DELETE FROM ledger_posting WHERE entry_id = 3; "
        "DELETE FROM ledger_settlementtrackline WHERE settlement_id IN "
        "(SELECT id FROM ledger_settlement WHERE journal_entry_id = 3); "
        "DELETE FROM ledger_settlementholderline WHERE settlement_id IN "
        "(SELECT id FROM ledger_settlement WHERE journal_entry_id = 3); "
        "DELETE FROM ledger_settlement WHERE journal_entry_id = 3; "
        "DELETE FROM ledger_journalentry WHERE seq = 3"
    )
    call_command("verify_ledger", stdout=io.StringIO())  # the chain alone cannot tell
    with pytest.raises(CommandError, match="entry #3: anchored entry is missing"):
        call_command("verify_ledger", "--expect", head, stdout=io.StringIO())
