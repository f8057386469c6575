"""Holder-level agreement statistics: I, K, calibrated SNR, Spearman, top-1, top-3 pool share."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.engine import agreement

whole = st.integers(min_value=-1000, max_value=1000)  # distinct values stay distinct below


def test_slopes_of_an_exact_linear_estimate():
    truth = np.array([0.1, -0.2, 0.4, 0.0, 0.3])
    estimate = 5.0 * truth + 2.0  # right ranking, wrong scale and offset
    assert agreement.slope_i(estimate, truth) == pytest.approx(0.2)
    assert agreement.scale_k(estimate, truth) == pytest.approx(5.0)
    assert agreement.spearman(estimate, truth) == pytest.approx(1.0)
    assert agreement.calibrated_snr(estimate, truth) > 1e12  # exact after dividing by K
    assert agreement.calibrated_snr(truth, truth) == math.inf


def test_calibrated_snr_is_signal_over_what_the_scale_does_not_explain():
    truth = np.array([1.0, -1.0, 1.0, -1.0])
    noise = np.array([1.0, 1.0, -1.0, -1.0])  # orthogonal to the truth, same variance
    estimate = 3.0 * (truth + 0.5 * noise)
    # K = 3, so estimate / K - truth = 0.5 noise: SNR = Var(truth) / (0.25 Var(noise)) = 4
    assert agreement.scale_k(estimate, truth) == pytest.approx(3.0)
    assert agreement.calibrated_snr(estimate, truth) == pytest.approx(4.0)
    # I is the other regression: Cov / Var(estimate) = 3 / (9 * 1.25)
    assert agreement.slope_i(estimate, truth) == pytest.approx(3.0 / 11.25)


def test_slopes_are_the_two_least_squares_regressions():
    rng = np.random.default_rng(5)
    estimate = rng.normal(size=30)
    truth = 0.3 * estimate + rng.normal(scale=0.2, size=30)
    assert agreement.slope_i(estimate, truth) == pytest.approx(np.polyfit(estimate, truth, 1)[0])
    assert agreement.scale_k(estimate, truth) == pytest.approx(np.polyfit(truth, estimate, 1)[0])
    assert agreement.pearson(estimate, truth) == pytest.approx(np.corrcoef(estimate, truth)[0, 1])


def test_undefined_statistics_are_nan():
    assert math.isnan(agreement.slope_i([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(agreement.scale_k([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]))
    assert math.isnan(agreement.calibrated_snr([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]))
    assert math.isnan(agreement.spearman([1.0], [2.0]))
    block = agreement.agreement([1.0, 2.0], [3.0, 3.0])
    assert block["n"] == 2 and math.isnan(block["K"]) and block["I"] == 0.0


def test_mismatched_or_non_finite_input_is_refused():
    with pytest.raises(ValueError, match="pair up"):
        agreement.spearman([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="finite"):
        agreement.slope_i([1.0, math.nan], [1.0, 2.0])


def test_ranks_average_ties():
    assert agreement.ranks([10.0, 30.0, 20.0, 20.0]).tolist() == [1.0, 4.0, 2.5, 2.5]


def test_spearman_matches_scipy_with_ties():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(3)
    x = rng.integers(0, 5, size=40).astype(float)
    y = x + rng.normal(size=40)
    assert agreement.spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(whole, whole), min_size=3, max_size=30), st.floats(0.1, 50.0))
def test_spearman_ignores_monotone_rescaling(pairs, factor):
    x = np.array([p[0] for p in pairs], dtype=float)
    y = np.array([p[1] for p in pairs], dtype=float)
    rho = agreement.spearman(x, y)
    rescaled = agreement.spearman(factor * x + 7.0, y**3)  # increasing in each
    assert (math.isnan(rho) and math.isnan(rescaled)) or rho == pytest.approx(rescaled, abs=1e-9)
    assert math.isnan(rho) or -1.0 - 1e-12 <= rho <= 1.0 + 1e-12


def test_bootstrap_interval_covers_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=50)
    estimate = 2.0 * truth + rng.normal(scale=0.5, size=50)
    low, high = agreement.bootstrap_interval(estimate, truth, agreement.spearman, seed=1)
    assert low <= agreement.spearman(estimate, truth) <= high < 1.0
    assert (low, high) == agreement.bootstrap_interval(estimate, truth, agreement.spearman, seed=1)
    nan = agreement.bootstrap_interval([1.0, 1.0], [2.0, 3.0], agreement.slope_i)
    assert all(math.isnan(v) for v in nan)


def test_holder_totals_sum_each_holders_tracks():
    scores = np.array([[1.0, 2.0, 4.0], [0.5, 0.0, -1.0]])  # (G=2, N=3)
    membership = np.array([[1, 0, 1], [0, 1, 1]])  # holder 0 owns tracks 0 and 2, ...
    assert agreement.holder_totals(scores, membership).tolist() == [[5.0, 6.0], [-0.5, -1.0]]
    with pytest.raises(ValueError, match="membership"):
        agreement.holder_totals(np.ones(4), membership)


def test_top1_agreement_per_generation():
    truth = np.array([[0.1, 0.5, 0.2], [0.3, 0.1, 0.0]])
    estimate = np.array([[0.0, 9.0, 1.0], [0.0, 9.0, 1.0]])
    assert agreement.top1_agreement(estimate, truth).tolist() == [True, False]


def test_share_to_top_effects_sums_the_shares_of_the_largest_truth():
    truth = np.array([[0.4, -0.9, 0.3, 0.2, 0.1]])  # largest a*: holders 0, 2, 3 (not |a*|)
    paid = np.array([[0.1, 0.5, 0.2, 0.15, 0.05]])
    assert agreement.share_to_top_effects(paid, truth, k=3).tolist() == [pytest.approx(0.45)]
    assert agreement.share_to_top_effects(paid, truth, k=1).tolist() == [pytest.approx(0.1)]
    with pytest.raises(ValueError, match="k must be"):
        agreement.share_to_top_effects(paid, truth, k=6)


def test_hub_counts_count_unrelated_top_places_only():
    scores = np.array(
        [
            [9.0, 1.0, 5.0, 0.0],  # top 2: tracks 0, 2
            [9.0, 8.0, 0.0, 1.0],  # top 2: tracks 0, 1
            [9.0, 0.0, 0.0, 8.0],  # top 2: tracks 0, 3
        ]
    )
    related = np.array(
        [
            [True, False, False, False],  # track 0 belongs to generation 0's style
            [False, True, False, False],
            [False, False, False, False],
        ]
    )
    assert agreement.hub_counts(scores, related, k=2).tolist() == [2, 0, 1, 1]
    assert agreement.hub_counts(scores, related, k=1).tolist() == [2, 0, 0, 0]
    with pytest.raises(ValueError, match="k must be"):
        agreement.hub_counts(scores, related, k=5)
