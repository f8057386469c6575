"""Explain this payment (``ledger.selectors.explanations``): every number a holder needs
to recompute their amount, and the recomputation equals the booked posting exactly."""

from dataclasses import replace
from decimal import ROUND_FLOOR, Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.models import AttributionRun
from ledger.charts import CUTOFF_ID, UNPAID_GROUP_ID, payment_cutoff_svg
from ledger.models import Account, Posting, Settlement, SettlementHolderLine
from ledger.money import ACCRUAL_SCALE, accrual_to_decimal
from ledger.selectors.explanations import payment_explanation, score_digits
from ledger.services import generation_settle
from ledger.splits import SplitPolicy
from tests.ledger import factories


def settle(small_catalog, *, policy: SplitPolicy | None = None, seed: int = 1) -> Settlement:
    model_version, _ = small_catalog
    generation = factories.generation_create(model_version=model_version, revenue_minor=1999)
    run = factories.run_create(generation=generation, scores=factories.scores_for(12, seed=seed))
    entry = generation_settle(attribution_run=run, policy=policy)
    return Settlement.objects.get(journal_entry=entry)


def booked_to(settlement: Settlement, holder_id: int) -> int:
    """What the settlement's journal entry credited the holder's payable account."""
    posting = Posting.objects.get(
        entry_id=settlement.journal_entry_id,
        account__kind=Account.Kind.HOLDER_PAYABLE,
        account__rights_holder_id=holder_id,
    )
    return -posting.amount


@pytest.mark.parametrize("holder_index", [0, 1, 2])
def test_a_holder_recomputes_the_booked_posting_from_the_explained_numbers(
    small_catalog, holder_index
):
    _, holders = small_catalog
    settlement = settle(small_catalog)
    holder = holders[holder_index]
    x = payment_explanation(settlement=settlement, holder_ids=[holder.pk])
    assert x.recomputes and x.for_holder

    # The revenue and pool, as the page states them, give back the settlement's pool.
    revenue = Decimal(x.revenue_minor) * ACCRUAL_SCALE
    pool = int((revenue * x.policy.pool_fraction).to_integral_value(rounding=ROUND_FLOOR))
    assert pool == settlement.pool

    # Each track: pool x weight / sum of the paid weights, rounded down, plus the one
    # leftover unit the page says it got; each owner: that x their percent, likewise.
    recomputed = 0
    for track in x.tracks:
        exact = Decimal(pool) * track.weight / x.kept_weight_total
        floor = int(exact.to_integral_value(rounding=ROUND_FLOOR))
        assert track.amount == floor + (1 if track.rounded_up else 0)
        for part in track.owners:
            if part.rights_holder_id is None:
                continue
            assert part.rights_holder_id == holder.pk
            share = Decimal(track.amount) * part.percent / 100
            assert abs(Decimal(part.amount) - share) < 1
            recomputed += part.amount
    assert recomputed == x.total == booked_to(settlement, holder.pk)


def test_finance_sees_the_whole_pool_and_every_owner(small_catalog):
    _, holders = small_catalog
    settlement = settle(small_catalog)
    x = payment_explanation(settlement=settlement, holder_ids=None)
    assert not x.for_holder and x.total == settlement.pool
    assert sum(t.amount for t in x.tracks) == settlement.pool
    names = {o.rights_holder for t in x.tracks for o in t.owners}
    assert names <= {h.legal_name for h in holders} and "other owners" not in names


def test_a_holder_sees_no_other_holder(small_catalog):
    _, holders = small_catalog
    settlement = settle(small_catalog)
    x = payment_explanation(settlement=settlement, holder_ids=[holders[0].pk])
    others = {h.legal_name for h in holders[1:]}
    for track in x.tracks:
        assert not others & {o.rights_holder for o in track.owners}
        # a co-owned track shows the other owners folded together, nameless
        assert all(o.rights_holder_id in (holders[0].pk, None) for o in track.owners)
    paid_to_a = SettlementHolderLine.objects.get(settlement=settlement, rights_holder=holders[0])
    assert {t.position for t in x.tracks} == {p for p, _ in paid_to_a.tracks}


def test_the_cut_off_follows_the_recorded_policy(small_catalog):
    settlement = settle(small_catalog, policy=SplitPolicy(top_k=3, min_share=Decimal("0")))
    own = {0, 3, 6, 9}
    x = payment_explanation(settlement=settlement, holder_ids=None, own_positions=own)
    assert x.kept_count == 3 and x.cutoff_rank == 3
    assert "top-K" in x.cutoff_reason
    assert [t.rank for t in x.tracks] == [1, 2, 3]
    assert x.unpaid_positions == own - x.paid_positions
    assert x.cutoff_score == min(t.score for t in x.tracks)


def test_an_explanation_that_does_not_match_the_booking_says_so(small_catalog):
    settlement = settle(small_catalog)
    # The same settlement read with another temperature than the one it was booked with.
    altered = replace(SplitPolicy.from_dict(settlement.policy), temperature=Decimal("0.5"))
    settlement.policy = altered.as_dict()
    x = payment_explanation(settlement=settlement, holder_ids=None)
    assert not x.recomputes


def test_scores_are_printed_with_one_fixed_number_of_decimals():
    assert score_digits([0.0007287, 9.207e-05, -0.0003]) == 7
    assert f"{9.207e-05:.{score_digits([0.0007287, 9.207e-05])}f}" == "0.0000921"
    assert score_digits([12.5, 0.1]) == 2
    assert score_digits([0.0, 0.0]) == 4


def test_where_two_methods_scored_the_generation_each_methods_answer_is_given(small_catalog):
    _, holders = small_catalog
    settlement = settle(small_catalog)
    generation = settlement.generation
    paid_run = settlement.attribution_run
    audit_run = AttributionRun.objects.create(
        generation=generation,
        model_version=paid_run.model_version,
        purpose=AttributionRun.Purpose.AUDIT,
        method="unlearning",
        status=AttributionRun.Status.SUCCEEDED,
        checkpoint_sha256=paid_run.checkpoint_sha256,
        manifest_sha256=paid_run.manifest_sha256,
        engine_config={"method": "unlearning"},
        seed=0,
        scores=factories.scores_for(12, seed=7),
    )
    x = payment_explanation(settlement=settlement, holder_ids=[holders[0].pk])
    assert x.audit is not None and x.audit.audit_run.pk == audit_run.pk
    assert x.audit_method_label == "exact unlearning (Eq. 2)"
    assert [row.rights_holder_id for row in x.audit.holders] == [holders[0].pk]
    paid = SettlementHolderLine.objects.get(settlement=settlement, rights_holder=holders[0])
    assert x.audit.holders[0].paid == accrual_to_decimal(paid.amount, "USD")


def test_the_chart_draws_the_cut_off_where_it_cut_tracks():
    scores = factories.scores_for(12, seed=2)
    cut = payment_cutoff_svg(scores, paid={0, 1, 2}, unpaid={5}, cutoff_rank=3, paid_label="x")
    assert f'id="{CUTOFF_ID}"' in cut and f'id="{CUTOFF_ID}-narrow"' in cut
    assert f'id="{UNPAID_GROUP_ID}"' in cut
    every = payment_cutoff_svg(scores, paid=set(range(12)), cutoff_rank=12, paid_label="x")
    assert CUTOFF_ID not in every


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scores=st.lists(
        st.floats(min_value=-1, max_value=1, allow_nan=False), min_size=12, max_size=12
    ),
    temperature=st.sampled_from(["0.25", "1", "3"]),
    top_k=st.one_of(st.none(), st.integers(min_value=1, max_value=12)),
    min_share=st.sampled_from(["0", "0.001", "0.05"]),
    revenue_minor=st.integers(min_value=100, max_value=10**7),
)
def test_every_holders_explanation_recomputes_their_posting(
    small_catalog, scores, temperature, top_k, min_share, revenue_minor
):
    model_version, holders = small_catalog
    policy = SplitPolicy(
        temperature=Decimal(temperature), top_k=top_k, min_share=Decimal(min_share)
    )
    generation = factories.generation_create(
        model_version=model_version, revenue_minor=revenue_minor
    )
    run = factories.run_create(generation=generation, scores=scores)
    entry = generation_settle(attribution_run=run, policy=policy)
    settlement = Settlement.objects.get(journal_entry=entry)
    explained = 0
    for holder in holders:
        x = payment_explanation(settlement=settlement, holder_ids=[holder.pk])
        assert x.recomputes
        paid = settlement.holders.filter(rights_holder=holder).first()
        assert x.total == (booked_to(settlement, holder.pk) if paid and paid.amount else 0)
        assert x.total == sum(track.your_amount for track in x.tracks)
        explained += x.total
    assert explained == settlement.pool
