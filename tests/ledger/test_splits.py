from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.money import ACCRUAL_SCALE
from ledger.splits import (
    SplitPolicy,
    generation_split,
    revenue_split,
    softmax_standardised,
    track_weights,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
scores_st = st.lists(finite, min_size=1, max_size=80)
policy_st = st.builds(
    SplitPolicy,
    temperature=st.decimals(min_value=Decimal("0.05"), max_value=Decimal("20"), places=3),
    top_k=st.one_of(st.none(), st.integers(min_value=1, max_value=100)),
    min_share=st.decimals(min_value=Decimal(0), max_value=Decimal("0.5"), places=4),
    pool_fraction=st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=9),
)


def ownership_for(n: int, holders: int) -> dict[int, list[tuple[int, Decimal]]]:
    """Positions alternate between single owners and a 3-way 33.3333/33.3333/33.3334 split."""
    out = {}
    for i in range(n):
        if i % 2:
            out[i] = [(i % holders + 1, Decimal("100.0000"))]
        else:
            out[i] = [
                (i % holders + 1, Decimal("33.3333")),
                (holders + 1, Decimal("33.3333")),
                (holders + 2, Decimal("33.3334")),
            ]
    return out


@settings(max_examples=300)
@given(
    scores=scores_st,
    policy=policy_st,
    revenue_minor=st.integers(min_value=0, max_value=10**9),
    holders=st.integers(min_value=1, max_value=5),
)
def test_split_always_pays_the_pool_exactly(scores, policy, revenue_minor, holders):
    weights = track_weights(scores, policy)
    split = generation_split(
        revenue_minor=revenue_minor,
        weights=weights,
        pool_fraction=policy.pool_fraction,
        ownership=ownership_for(len(scores), holders),
    )
    assert split.revenue == revenue_minor * ACCRUAL_SCALE
    assert split.pool + split.platform + split.residue == split.revenue
    assert sum(amount for _, amount in split.holders) == split.pool
    assert sum(t.amount for t in split.tracks) == split.pool
    for t in split.tracks:
        assert sum(a for _, a in t.holder_amounts) == t.amount
    assert all(amount >= 0 for _, amount in split.holders)
    assert 1 <= len(weights) <= (policy.top_k or len(scores))


spread_scores = st.lists(finite, min_size=2, max_size=50).filter(
    lambda s: max(s) - min(s) > 1e-3 * (1 + max(abs(x) for x in s))
)


@given(scores=spread_scores, a=st.floats(0.001, 1000), b=st.floats(-1e3, 1e3))
def test_temperature_is_scale_free(scores, a, b):
    """Affine rescaling of the raw scores (a > 0) leaves the weights (almost) unchanged."""
    policy = SplitPolicy(temperature=Decimal("0.7"), top_k=None, min_share=Decimal(0))
    base = softmax_standardised(scores, policy.temperature)
    scaled = softmax_standardised([a * s + b for s in scores], policy.temperature)
    for p, q in zip(base, scaled, strict=True):
        assert q == pytest.approx(p, abs=1e-6)


def test_temperature_controls_concentration():
    scores = [0.0, 1.0, 2.0, 3.0]
    hot = softmax_standardised(scores, Decimal("100"))
    cold = softmax_standardised(scores, Decimal("0.1"))
    assert max(hot) - min(hot) < 0.02
    assert cold[3] > 0.99


def test_equal_scores_split_uniformly():
    policy = SplitPolicy(top_k=None, min_share=Decimal(0))
    weights = track_weights([0.5] * 4, policy)
    assert len({w.weight for w in weights}) == 1 and len(weights) == 4


def test_top_k_and_min_share_cut_and_redistribute():
    scores = [5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0]
    policy = SplitPolicy(temperature=Decimal(1), top_k=3, min_share=Decimal(0))
    kept = track_weights(scores, policy)
    assert [w.position for w in kept] == [0, 1, 2]
    split = generation_split(
        revenue_minor=100,
        weights=kept,
        pool_fraction=Decimal("0.5"),
        ownership={i: [(i + 1, Decimal(100))] for i in range(7)},
    )
    # The cut mass is redistributed: the three kept tracks share the whole pool.
    assert split.pool == 50 * ACCRUAL_SCALE
    assert sum(t.amount for t in split.tracks) == split.pool
    assert split.tracks[0].amount > split.tracks[1].amount > split.tracks[2].amount

    high_floor = SplitPolicy(temperature=Decimal(1), top_k=None, min_share=Decimal("0.2"))
    kept = track_weights(scores, high_floor)
    probs = softmax_standardised(scores, Decimal(1))
    assert [w.position for w in kept] == [i for i, p in enumerate(probs) if p >= 0.2]


def test_heaviest_track_is_kept_even_below_min_share():
    kept = track_weights([0.0] * 10, SplitPolicy(top_k=None, min_share=Decimal("0.5")))
    assert [w.position for w in kept] == [0]


def test_ties_are_broken_by_position():
    kept = track_weights([1.0, 2.0, 2.0, 2.0], SplitPolicy(top_k=2, min_share=Decimal(0)))
    assert [w.position for w in kept] == [1, 2]


def test_revenue_split_books_the_rounding_unit_as_residue():
    pool, platform, residue = revenue_split(revenue=3, pool_fraction=Decimal("0.5"))
    assert (pool, platform, residue) == (1, 1, 1)
    assert revenue_split(revenue=10**6, pool_fraction=Decimal("0.3")) == (300000, 700000, 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"temperature": Decimal(0)},
        {"temperature": 1.0},
        {"top_k": 0},
        {"min_share": Decimal(1)},
        {"pool_fraction": Decimal("1.1")},
        {"pool_fraction": Decimal("0.1234567891")},
    ],
)
def test_policy_validation(kwargs):
    with pytest.raises(ValueError):
        SplitPolicy(**kwargs)


def test_policy_round_trips_through_json():
    policy = SplitPolicy(
        temperature=Decimal("0.5"), top_k=7, min_share=Decimal("0.01"), pool_fraction=Decimal("0.3")
    )
    assert SplitPolicy.from_dict(policy.as_dict()) == policy


@pytest.mark.parametrize("scores", [[], [float("nan")], [1.0, float("inf")]])
def test_bad_scores_are_refused(scores):
    with pytest.raises(ValueError):
        track_weights(scores, SplitPolicy())


def test_shares_not_summing_to_100_are_refused():
    kept = track_weights([1.0], SplitPolicy())
    with pytest.raises(ValueError):
        generation_split(
            revenue_minor=10,
            weights=kept,
            pool_fraction=Decimal("0.5"),
            ownership={0: [(1, Decimal("60"))]},
        )
