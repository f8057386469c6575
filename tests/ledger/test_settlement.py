from decimal import Decimal

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from attribution.engine.artifacts import array_sha256
from attribution.models import AttributionRun, Generation
from core.exceptions import ApplicationError
from core.models import AuditEvent
from ledger import selectors, services
from ledger.hashing import scores_sha256
from ledger.models import Account, JournalEntry, Posting, Settlement
from ledger.money import ACCRUAL_SCALE
from ledger.splits import SplitPolicy
from tests.conftest import APP_ROLE
from tests.ledger import factories

pytestmark = pytest.mark.django_db

POLICY = SplitPolicy(
    temperature=Decimal("0.5"), top_k=5, min_share=Decimal("0.01"), pool_fraction=Decimal("0.3")
)


def test_settlement_books_revenue_pool_and_holders(settled_run):
    entry = services.generation_settle(attribution_run=settled_run, policy=POLICY)
    settlement = Settlement.objects.get(journal_entry=entry)
    revenue = 1999 * ACCRUAL_SCALE
    assert settlement.revenue == revenue
    assert settlement.pool == revenue * 3 // 10
    assert settlement.pool + settlement.platform + settlement.residue == revenue
    balances = selectors.account_balances(currency="USD")
    assert balances["revenue_receivable:USD"] == revenue
    assert balances["platform_revenue:USD"] == -settlement.platform
    payable = {k: v for k, v in balances.items() if k.startswith(Account.Kind.HOLDER_PAYABLE + ":")}
    assert -sum(payable.values()) == settlement.pool
    assert sum(p.amount for p in entry.postings.all()) == 0
    # At most top_k tracks are paid, and the holder lines add up to the pool.
    assert 1 <= settlement.tracks.count() <= 5
    assert sum(h.amount for h in settlement.holders.all()) == settlement.pool
    assert sum(t.amount for t in settlement.tracks.all()) == settlement.pool


def test_settlement_stores_its_provenance(settled_run):
    entry = services.generation_settle(attribution_run=settled_run, policy=POLICY)
    settlement = entry.settlement
    assert settlement.scores_sha256 == scores_sha256(settled_run.scores)
    # One scores hash: the ledger's digest of what it read is the engine's of what it wrote.
    engine_digest = array_sha256(np.asarray(settled_run.scores, dtype=np.float64))
    assert settlement.scores_sha256 == engine_digest
    assert settlement.checkpoint_sha256 == settled_run.model_version.checkpoint_sha256
    assert settlement.manifest_sha256 == settled_run.manifest_sha256
    assert SplitPolicy.from_dict(settlement.policy) == POLICY
    paid_positions = {str(t.position) for t in settlement.tracks.all()}
    assert set(settlement.ownership_snapshot) == paid_positions
    for shares in settlement.ownership_snapshot.values():
        assert sum(Decimal(p) for _, p in shares) == 100
    assert entry.generation_id == settled_run.generation_id
    assert entry.attribution_run_id == settled_run.pk
    assert entry.checkpoint_sha256 == settled_run.checkpoint_sha256
    assert entry.provenance_sha256 == settlement.provenance_sha256
    assert AuditEvent.objects.filter(action="ledger.generation.settle").count() == 1
    settled_run.generation.refresh_from_db()
    assert settled_run.generation.status == Generation.Status.SETTLED


def test_duplicate_settlement_books_nothing(settled_run):
    first = services.generation_settle(attribution_run=settled_run)
    counts = (JournalEntry.objects.count(), Posting.objects.count(), Settlement.objects.count())
    again = services.generation_settle(attribution_run=settled_run)
    assert again.seq == first.seq
    assert counts == (
        JournalEntry.objects.count(),
        Posting.objects.count(),
        Settlement.objects.count(),
    )


def test_second_run_for_a_settled_generation_needs_a_reversal(settled_run):
    entry = services.generation_settle(attribution_run=settled_run)
    # At most one succeeded run per generation: the first one is superseded.
    AttributionRun.objects.filter(pk=settled_run.pk).update(status=AttributionRun.Status.FAILED)
    other = factories.run_create(
        generation=settled_run.generation, scores=factories.scores_for(12, seed=9)
    )
    with pytest.raises(ApplicationError, match="reverse that settlement"):
        services.generation_settle(attribution_run=other)
    reversal = services.journal_entry_reverse(entry=entry, reason="re-attributed")
    assert reversal.reverses_id == entry.seq
    assert [p.amount for p in reversal.postings.order_by("index")] == [
        -p.amount for p in entry.postings.order_by("index")
    ]
    services.generation_settle(attribution_run=other)
    with pytest.raises(ApplicationError, match="already reversed"):
        services.journal_entry_reverse(entry=entry, reason="again")
    assert selectors.ledger_verify().ok


def test_unfinished_or_mismatched_runs_are_refused(settled_run):
    settled_run.status = AttributionRun.Status.RUNNING
    with pytest.raises(ApplicationError, match="not succeeded"):
        services.generation_settle(attribution_run=settled_run)
    settled_run.status = AttributionRun.Status.SUCCEEDED
    settled_run.scores = settled_run.scores[:-1]
    with pytest.raises(ApplicationError, match="scores but the training set"):
        services.generation_settle(attribution_run=settled_run)
    settled_run.scores = [0.0] * 12
    settled_run.checkpoint_sha256 = "f" * 64
    with pytest.raises(ApplicationError, match="checkpoint"):
        services.generation_settle(attribution_run=settled_run)
    assert not JournalEntry.objects.exists()


def test_zero_revenue_generation_settles_with_an_empty_entry(small_catalog):
    model_version, _ = small_catalog
    generation = factories.generation_create(model_version=model_version, revenue_minor=0)
    run = factories.run_create(generation=generation, scores=factories.scores_for(12))
    entry = services.generation_settle(attribution_run=run)
    assert entry.postings.count() == 0
    assert selectors.ledger_verify().ok


def test_odd_revenue_books_the_rounding_residue(small_catalog):
    model_version, _ = small_catalog
    generation = factories.generation_create(model_version=model_version, revenue_minor=1)
    run = factories.run_create(generation=generation, scores=factories.scores_for(12))
    # 10^6 accrual units * 1/3 is not an integer: the unit left over goes to the residue.
    policy = SplitPolicy(pool_fraction=Decimal("0.333333333"))
    entry = services.generation_settle(attribution_run=run, policy=policy)
    settlement = entry.settlement
    assert settlement.residue == 1
    residue = Account.objects.get(key="rounding_residue:USD")
    assert selectors.account_balance(account=residue) == -1


def test_balances_equal_sum_of_postings_and_verify_passes(small_catalog):
    model_version, holders = small_catalog
    for seed in range(5):
        generation = factories.generation_create(
            model_version=model_version, revenue_minor=100 + seed * 37
        )
        run = factories.run_create(generation=generation, scores=factories.scores_for(12, seed))
        services.generation_settle(attribution_run=run)
    for account in Account.objects.all():
        expected = sum(p.amount for p in Posting.objects.filter(account=account))
        assert selectors.account_balance(account=account) == expected
    for holder in holders:
        assert selectors.holder_balance(rights_holder=holder, currency="USD") == -sum(
            p.amount
            for p in Posting.objects.filter(
                account__kind="holder_payable", account__rights_holder=holder
            )
        )
    assert selectors.trial_balance() == {"USD": 0}
    report = selectors.ledger_verify(chunk_size=2)
    assert report.ok, report.first_break
    assert report.entries_checked == 5 and report.settlements_checked == 5
    call_command("verify_ledger")


def test_verify_reports_a_forged_settlement_line(settled_run):
    """Raw SQL tampering (triggers off) is found by verify_ledger."""
    from django.db import connection

    services.generation_settle(attribution_run=settled_run)
    with connection.cursor() as cursor:  # as the owner (tests/conftest.py), triggers off
        cursor.execute("SET LOCAL ROLE NONE")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute(
            "UPDATE ledger_settlementholderline SET amount = amount + 1 "
            "WHERE id = (SELECT min(id) FROM ledger_settlementholderline)"
        )
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute(f"SET LOCAL ROLE {APP_ROLE}")
    report = selectors.ledger_verify()
    assert not report.ok
    assert report.break_seq == 1 and "provenance" in report.first_break
    with pytest.raises(CommandError, match="entry #1"):
        call_command("verify_ledger")


def test_settle_many_books_each_in_its_savepoint(small_catalog):
    model_version, _ = small_catalog
    runs = []
    for seed in range(4):
        generation = factories.generation_create(model_version=model_version, revenue_minor=50)
        runs.append(
            factories.run_create(generation=generation, scores=factories.scores_for(12, seed))
        )
    broken = runs[2]
    broken.scores = broken.scores[:5]  # does not match the training set
    first = services.generation_settle(attribution_run=runs[0])
    results = services.generation_settle_many(attribution_runs=runs)
    assert results[0].seq == first.seq  # idempotent
    assert isinstance(results[2], ApplicationError)
    assert [r.seq for r in (results[1], results[3])] == [2, 3]
    assert Settlement.objects.count() == 3
    assert not Settlement.objects.filter(attribution_run=broken).exists()
    assert selectors.ledger_verify().ok


def test_rescaled_scores_settle_identically(small_catalog):
    """The temperature is scale-free: a run whose scores are 1000x another's (plus an
    offset) pays every track and holder exactly the same."""
    model_version, _ = small_catalog
    scores = factories.scores_for(12, seed=4)
    lines = []
    for transform in (lambda s: s, lambda s: 1000 * s + 3):
        generation = factories.generation_create(model_version=model_version, revenue_minor=777)
        run = factories.run_create(generation=generation, scores=[transform(s) for s in scores])
        settlement = services.generation_settle(attribution_run=run, policy=POLICY).settlement
        lines.append(
            (
                list(settlement.tracks.values_list("position", "weight", "amount")),
                list(settlement.holders.values_list("rights_holder_id", "amount")),
            )
        )
    assert lines[0] == lines[1]
