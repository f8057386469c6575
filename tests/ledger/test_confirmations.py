"""Irreversible finance actions run only once a page that says exactly what they will do
has been confirmed; without the confirmation they refuse and change nothing."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.models import AuditEvent
from core.roles import FINANCE
from ledger import services
from ledger.models import JournalEntry, PayoutBatch, PayoutLine, StatementPeriod
from tests.ledger.conftest import settle_known, user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance():
    client = Client()
    client.force_login(user_with_role(FINANCE))
    return client


def token_of(html: str) -> str:
    return re.search(r'name="confirm" value="([^"]+)"', html).group(1)


@pytest.fixture
def open_period(world):
    """An ended, open period holding two settlements of 10.00 (5.00 each to holder A)."""
    starts = world.period.ends_at
    for _ in range(2):
        settle_known(world.entries[0].generation.model_version, heaviest=0, revenue_minor=1000)
    return services.statement_period_create(starts_at=starts, ends_at=timezone.now())


def test_closing_a_period_is_confirmed_first(finance, open_period):
    url = f"/ledger/periods/{open_period.pk}/close/"
    shown = finance.get(url)
    assert shown.status_code == 200
    page = shown.content.decode()
    assert f"{open_period.starts_at:%Y-%m-%d %H:%M}" in page
    assert f"{open_period.ends_at:%Y-%m-%d %H:%M}" in page
    assert "<strong>2</strong> journal entries" in page and "10.00000000 USD" in page
    assert "<strong>1</strong> rights holder with movements" in page
    assert "cannot be undone" in page
    for refused in ({}, {"confirm": ""}, {"confirm": "close-period-999-1"}):
        assert finance.post(url, refused).status_code == 400
        open_period.refresh_from_db()
        assert open_period.closed_at is None
    assert not AuditEvent.objects.filter(
        action="ledger.period.close", object_id=str(open_period.pk)
    ).exists()
    closed = finance.post(url, {"confirm": token_of(page)})
    assert closed.status_code == 302
    open_period.refresh_from_db()
    assert open_period.closed_at is not None


def test_a_confirmation_goes_stale_when_the_period_changed(finance, open_period, world):
    url = f"/ledger/periods/{open_period.pk}/close/"
    token = token_of(finance.get(url).content.decode())
    # Another entry lands in the period after the page was shown.
    settle_known(world.entries[0].generation.model_version, heaviest=1, revenue_minor=1000)
    StatementPeriod.objects.filter(pk=open_period.pk).update(
        ends_at=timezone.now() + timedelta(microseconds=1)
    )
    stale = finance.post(url, {"confirm": token})
    assert stale.status_code == 400 and "review it again" in stale.content.decode()
    open_period.refresh_from_db()
    assert open_period.closed_at is None


def test_marking_a_batch_paid_is_confirmed_with_its_lines_and_total(finance, world):
    batch = services.payout_batch_create(currency="USD", threshold_minor=100)
    url = f"/ledger/payouts/{batch.pk}/mark-paid/"
    page = finance.get(url).content.decode()
    assert f"payout batch {batch.pk}" in page and "<strong>2</strong> lines" in page
    assert "15.00 USD" in page
    assert "2 lines</span> have no payout details" in page  # the factories leave them empty
    assert finance.post(url).status_code == 400
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.DRAFT
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT).exists()
    # A line left out after the page was shown: the old confirmation no longer holds.
    line = batch.lines.get(rights_holder=world.b)
    services.payout_line_fail(line=line, reason="holder asked to wait")
    assert finance.post(url, {"confirm": token_of(page)}).status_code == 400
    page = finance.get(url).content.decode()
    assert "<strong>1</strong> line" in page and "10.00 USD" in page
    assert finance.post(url, {"confirm": token_of(page)}).status_code == 302
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.PAID


def test_failing_a_line_shows_what_it_books_before_it_does(finance, world):
    batch = services.payout_batch_create(currency="USD", threshold_minor=100)
    services.payout_batch_mark_paid(batch=batch)
    line = batch.lines.get(rights_holder=world.a)
    url = f"/ledger/payouts/lines/{line.pk}/fail/"
    first = finance.post(url, {"reason": "IBAN closed"})
    assert first.status_code == 200
    page = first.content.decode()
    assert "10.00 USD" in page and line.reference in page and "IBAN closed" in page
    assert "returns the amount to their balance" in page
    line.refresh_from_db()
    assert line.status == PayoutLine.Status.PAID
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT_FAILURE).exists()
    done = finance.post(url, {"reason": "IBAN closed", "confirm": token_of(page)})
    assert done.status_code == 302
    line.refresh_from_db()
    assert line.status == PayoutLine.Status.FAILED
    assert JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT_FAILURE).count() == 1
