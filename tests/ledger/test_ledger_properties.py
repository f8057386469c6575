"""Hypothesis over whole ledger histories: whatever is booked, every entry balances,
every balance is the sum of its postings and the chain verifies."""

from decimal import Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.exceptions import ApplicationError
from ledger import selectors, services
from ledger.models import Account, JournalEntry, Posting
from ledger.splits import SplitPolicy
from tests.ledger import factories

pytestmark = pytest.mark.django_db

TRACKS = 8

settle_op = st.tuples(
    st.just("settle"),
    st.integers(min_value=0, max_value=10**7),  # revenue in minor units
    st.lists(
        st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
        min_size=TRACKS,
        max_size=TRACKS,
    ),
    st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=9),  # pool fraction
    st.one_of(st.none(), st.integers(1, TRACKS)),  # top_k
)
reverse_op = st.tuples(st.just("reverse"), st.integers(min_value=0, max_value=50))
payout_op = st.tuples(st.just("payout"), st.integers(1, 5000), st.booleans())
ops_st = st.lists(st.one_of(settle_op, settle_op, reverse_op, payout_op), min_size=1, max_size=8)


@pytest.fixture
def catalog(db):
    return factories.catalog_create(tracks=TRACKS, holders=3)


class Rollback(Exception):
    pass


def apply(op, model_version) -> None:
    if op[0] == "settle":
        _, revenue, scores, fraction, top_k = op
        generation = factories.generation_create(model_version=model_version, revenue_minor=revenue)
        run = factories.run_create(generation=generation, scores=scores)
        policy = SplitPolicy(top_k=top_k, pool_fraction=fraction)
        settlement = services.generation_settle(attribution_run=run, policy=policy).settlement
        assert settlement.pool + settlement.platform + settlement.residue == settlement.revenue
    elif op[0] == "reverse":
        candidates = list(JournalEntry.objects.filter(kind="settlement", reversed_by=None))
        if candidates:
            entry = candidates[op[1] % len(candidates)]
            services.journal_entry_reverse(entry=entry, reason="property test")
    else:
        _, threshold, fail_first = op
        try:
            batch = services.payout_batch_create(currency="USD", threshold_minor=threshold)
        except ApplicationError:
            return
        services.payout_batch_mark_paid(batch=batch)
        if fail_first:
            services.payout_line_fail(line=batch.lines.first(), reason="bounced")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=ops_st)
def test_any_history_balances_and_verifies(catalog, ops):
    model_version, _ = catalog
    try:
        with transaction.atomic():  # each example rolls back; the catalog stays
            for op in ops:
                apply(op, model_version)
            unbalanced = (
                Posting.objects.values("entry_id", "currency")
                .annotate(total=Sum("amount"))
                .exclude(total=0)
            )
            assert not unbalanced.exists()
            for account in Account.objects.all():
                amounts = list(account.postings.values_list("amount", flat=True))
                assert selectors.account_balance(account=account) == sum(amounts)
            report = selectors.ledger_verify(chunk_size=3)
            assert report.ok, report.first_break
            assert report.trial_balance in ({}, {"USD": 0})
            raise Rollback
    except Rollback:
        pass
