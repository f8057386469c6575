"""Ledger invariants on SQLite (the embedded default), run by ``test_sqlite.py`` in a
subprocess whose DATABASE_URL points at SQLite. Not collected in the PostgreSQL run."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from core.models import AuditEvent
from ledger import selectors, services
from ledger.models import Account, JournalEntry, PayoutLine, Posting
from tests.ledger import factories

# SQLite triggers fire immediately, so a rolled-back test transaction exercises them fully
# (and Django's flush between transactional tests would be refused by the DELETE triggers).
pytestmark = pytest.mark.django_db


@pytest.fixture
def booked():
    assert connection.vendor == "sqlite"
    model_version, _ = factories.catalog_create(tracks=6, holders=3)
    for seed in range(2):
        generation = factories.generation_create(model_version=model_version, revenue_minor=999)
        run = factories.run_create(generation=generation, scores=factories.scores_for(6, seed))
        services.generation_settle(attribution_run=run)
        assert services.generation_settle(attribution_run=run).seq == seed + 1


def test_settlement_and_verification(booked):
    report = selectors.ledger_verify()
    assert report.ok and report.entries_checked == 2
    assert report.audit.ok and report.audit.events_checked == AuditEvent.objects.count() > 0
    assert selectors.trial_balance() == {"USD": 0}


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE ledger_posting SET amount = amount + 1",
        "DELETE FROM ledger_posting",
        "UPDATE ledger_journalentry SET memo = 'x'",
        "DELETE FROM ledger_journalentry",
        "UPDATE ledger_settlement SET pool = 0",
        "UPDATE core_auditevent SET reason = 'x'",
        "DELETE FROM core_auditevent",
    ],
)
def test_update_and_delete_are_refused(booked, sql):
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert selectors.ledger_verify().ok


def _append(amounts, prev_hash=None):
    seq, last_hash = JournalEntry.objects.order_by("-seq").values_list("seq", "hash").first()
    accounts = [Account.objects.get(key="revenue_receivable:USD"),
                Account.objects.get(key="platform_revenue:USD")]  # fmt: skip
    for i, amount in enumerate(amounts):
        account = accounts[i % 2]
        Posting.objects.create(
            entry_id=seq + 1, index=i, account=account, currency="USD", amount=amount
        )
    JournalEntry(
        seq=seq + 1,
        kind="settlement",
        currency="USD",
        effective_at=timezone.now(),
        prev_hash=prev_hash or last_hash,
        hash=f"{seq + 1:064d}",
    ).save(force_insert=True)


def test_unbalanced_entry_is_refused(booked):
    with pytest.raises(DatabaseError, match="does not balance"), transaction.atomic():
        _append([100, -99])
    with transaction.atomic():
        _append([100, -100])
    assert JournalEntry.objects.count() == 3


def test_entry_must_extend_the_chain(booked):
    with pytest.raises(DatabaseError, match="hash chain"), transaction.atomic():
        _append([1, -1], prev_hash="0" * 64)


def test_postings_cannot_be_added_to_a_posted_entry(booked):
    account = Account.objects.get(key="revenue_receivable:USD")
    with pytest.raises(DatabaseError, match="posting refused"), transaction.atomic():
        Posting.objects.create(entry_id=1, index=50, account=account, currency="USD", amount=1)


def test_an_audit_event_must_extend_the_chain(booked):
    tip = AuditEvent.objects.order_by("-seq").first()
    forged = AuditEvent(
        seq=tip.seq + 1, prev_hash="f" * 64, hash="e" * 64, action="forged", object_type="X"
    )
    with pytest.raises(DatabaseError, match="hash chain"), transaction.atomic():
        forged.save(force_insert=True)


def test_a_payout_batch_is_never_deleted(booked):
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    with pytest.raises(DatabaseError, match="payouts are kept"), transaction.atomic():
        PayoutLine.objects.filter(batch=batch).delete()
