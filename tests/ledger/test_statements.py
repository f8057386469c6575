from datetime import timedelta

import pytest
from django.db import IntegrityError, ProgrammingError, connection, transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from ledger import selectors, services
from ledger.models import JournalEntry, Statement, StatementPeriod
from ledger.splits import SplitPolicy
from tests.ledger import factories

pytestmark = pytest.mark.django_db

POLICY = SplitPolicy(top_k=4)


def settle(model_version, seed: int, revenue_minor: int = 12345) -> JournalEntry:
    generation = factories.generation_create(
        model_version=model_version, revenue_minor=revenue_minor
    )
    run = factories.run_create(generation=generation, scores=factories.scores_for(12, seed))
    return services.generation_settle(attribution_run=run, policy=POLICY)


@pytest.fixture
def two_periods(small_catalog):
    """Period 1 holds 3 settlements and a reversal; period 2 holds 2 settlements."""
    model_version, holders = small_catalog
    t0 = timezone.now() - timedelta(seconds=1)
    entries = [settle(model_version, seed) for seed in range(3)]
    services.journal_entry_reverse(entry=entries[1], reason="duplicate generation")
    t1 = timezone.now()
    first = services.statement_period_create(starts_at=t0, ends_at=t1)
    services.statement_period_close(period=first)
    for seed in (7, 8):
        settle(model_version, seed)
    t2 = timezone.now()
    second = services.statement_period_create(starts_at=t1, ends_at=t2)
    services.statement_period_close(period=second)
    return first, second, holders


def test_statement_lines_add_up_and_chain_across_periods(two_periods):
    first, second, holders = two_periods
    for holder in holders:
        s1 = selectors.statement_compute(rights_holder=holder, period=first, currency="USD")
        s2 = selectors.statement_compute(rights_holder=holder, period=second, currency="USD")
        assert s1["opening_balance"] == 0
        for s in (s1, s2):
            moved = sum(x["amount"] for x in s["lines"] + s["adjustments"] + s["payouts"])
            assert s["closing_balance"] == s["opening_balance"] + moved
        assert s2["opening_balance"] == s1["closing_balance"]
        assert s2["closing_balance"] == selectors.holder_balance(
            rights_holder=holder, currency="USD"
        )
    # One line per generation the holder earned from, with prompt and tracks.
    holder = holders[0]
    s1 = selectors.statement_compute(rights_holder=holder, period=first, currency="USD")
    assert s1["lines"], "holder 0 owns a third of the catalog"
    line = s1["lines"][0]
    assert line["prompt"].startswith("ambient piano")
    assert line["tracks"] and all(t["isrc"] for t in line["tracks"])
    assert sum(t["amount"] for t in line["tracks"]) == line["amount"]
    assert 0 < float(line["share_of_pool"]) <= 1
    # The reversal is an adjustment that cancels the reversed generation's line.
    reversed_lines = [x for x in s1["lines"] if x["entry"] == 2]
    adjustments = [x for x in s1["adjustments"] if x["reverses"] == 2]
    assert sum(x["amount"] for x in reversed_lines + adjustments) == 0


def test_statement_is_frozen_and_regenerates_identically(two_periods):
    first, _, holders = two_periods
    holder = holders[1]
    statement = services.statement_generate(rights_holder=holder, period=first, currency="USD")
    assert statement.content["closing_balance"] == statement.closing_balance
    # More business after the period does not change it; regenerating gives the same.
    settle(first_model_version(), 99)
    again = services.statement_generate(rights_holder=holder, period=first, currency="USD")
    assert again.pk == statement.pk and again.content_sha256 == statement.content_sha256
    recomputed = selectors.statement_compute(rights_holder=holder, period=first, currency="USD")
    assert recomputed == statement.content
    assert Statement.objects.count() == 1


def first_model_version():
    from attribution.models import ModelVersion

    return ModelVersion.objects.get()


def test_statements_need_a_closed_period(small_catalog):
    _, holders = small_catalog
    now = timezone.now()
    period = services.statement_period_create(starts_at=now, ends_at=now + timedelta(days=1))
    with pytest.raises(ApplicationError, match="closed periods"):
        services.statement_generate(rights_holder=holders[0], period=period, currency="USD")
    with pytest.raises(ApplicationError, match="after it has ended"):
        services.statement_period_close(period=period)
    with pytest.raises(ApplicationError, match="overlaps"):
        services.statement_period_create(starts_at=now, ends_at=now + timedelta(hours=1))


def test_closing_a_closed_period_again_is_refused_and_audited_once(small_catalog):
    from core.models import AuditEvent

    now = timezone.now()
    period = services.statement_period_create(starts_at=now - timedelta(days=2), ends_at=now)
    closed = services.statement_period_close(period=period)
    with pytest.raises(ApplicationError, match="already closed") as refused:
        services.statement_period_close(period=period)
    assert refused.value.field == "period"
    period.refresh_from_db()
    assert period.closed_at == closed.closed_at
    assert AuditEvent.objects.filter(action="ledger.period.close").count() == 1


@pytest.mark.parametrize(
    ("latest_end", "suggested"),
    [
        (None, ("2026-07-01T00:00:00+00:00", "2026-08-01T00:00:00+00:00")),  # this month
        ("2026-01-31T00:00:00+00:00", ("2026-01-31T00:00:00+00:00", "2026-02-28T00:00:00+00:00")),
        ("2026-12-01T00:00:00+00:00", ("2026-12-01T00:00:00+00:00", "2027-01-01T00:00:00+00:00")),
    ],
)
def test_the_next_period_suggested_follows_the_latest_by_a_month(db, latest_end, suggested):
    from datetime import datetime

    from ledger.selectors import statement_period_suggestion

    if latest_end is not None:
        ends_at = datetime.fromisoformat(latest_end)
        services.statement_period_create(starts_at=ends_at - timedelta(days=3), ends_at=ends_at)
    now = datetime.fromisoformat("2026-07-15T12:00:00+00:00")
    starts_at, ends_at = statement_period_suggestion(now=now)
    assert (starts_at.isoformat(), ends_at.isoformat()) == suggested


def test_period_states(db):
    from ledger.selectors import statement_period_state

    now = timezone.now()
    period = services.statement_period_create(starts_at=now, ends_at=now + timedelta(days=1))
    states = [
        statement_period_state(period=period, now=now - timedelta(seconds=1)),
        statement_period_state(period=period, now=now),
        statement_period_state(period=period, now=now + timedelta(days=1)),
    ]
    assert states == ["future", "current", "ended"]


def test_closed_period_is_locked_in_the_database(two_periods):
    first, _, _ = two_periods
    with pytest.raises(IntegrityError, match="closed period"), transaction.atomic():
        StatementPeriod.objects.filter(pk=first.pk).update(ends_at=timezone.now())
    last = JournalEntry.objects.order_by("-seq").first()
    with pytest.raises(IntegrityError, match="closed period"), transaction.atomic():
        JournalEntry.objects.create(
            seq=last.seq + 1,
            kind="settlement",
            currency="USD",
            effective_at=first.starts_at,
            prev_hash=last.hash,
            hash="f" * 64,
        )
    statement = Statement(
        rights_holder=two_periods[2][0],
        period=first,
        currency="USD",
        opening_balance=0,
        closing_balance=0,
        content={},
        content_sha256="",
    )
    # The application's role may not delete a statement; the owner is refused by a trigger.
    with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
        statement.save()
        statement.delete()
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        statement.pk = None
        statement.save()
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL ROLE NONE")  # the owner (tests/conftest.py)
        statement.delete()
