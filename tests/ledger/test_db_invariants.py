"""The database itself refuses what the ledger forbids (real commits, PostgreSQL triggers)."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger import hashing, selectors, services
from ledger.models import Account, JournalEntry, Posting, Settlement
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


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_posting SET amount = amount + 1",
        "DELETE FROM ledger_posting",
        "UPDATE ledger_journalentry SET memo = 'edited'",
        "DELETE FROM ledger_journalentry WHERE seq = 3",
        "UPDATE ledger_account SET currency = 'EUR'",
        "UPDATE ledger_settlement SET pool = 0",
        "DELETE FROM ledger_settlementholderline",
        "UPDATE ledger_settlementtrackline SET amount = 0",
    ],
)
def test_update_and_delete_are_refused(booked, sql):
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        raw(sql)
    assert selectors.ledger_verify().ok


def test_orm_update_and_delete_are_refused(booked):
    """The ORM's writes reach the same triggers (a posting is referenced by nothing, so
    Django's own on_delete=PROTECT does not stop its delete first)."""
    entry = booked[0]
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Posting.objects.filter(entry=entry).update(amount=1)
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        Posting.objects.filter(entry=entry).delete()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        JournalEntry.objects.filter(pk=entry.pk).update(memo="edited")
    assert selectors.ledger_verify().ok


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
    with transaction.atomic():
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
