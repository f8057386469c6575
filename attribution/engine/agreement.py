"""How well attributed holder mass agrees with leave-one-holder-out ground truth (pure numpy).

The ground truth of rights holder h on generation g is the retraining effect
    a*(h, g) = L(g | theta without h's recordings) - L(g | theta full)
(positive: without h the model explains g worse, so h contributed to it). A method's estimate
a_hat(h, g) is what it gives h: the summed scores of h's recordings, or h's share of the pool.
The statistics are those of the leave-one-seller-out study on Stable Audio Open ("sao_ip_pilot"
of jxbb824/stable-audio-tools), computed over any set of (h, g) pairs (one holder across
generations, one generation across holders, or every pair pooled):

    I   = Cov(a_hat, a*) / Var(a_hat)      OLS slope of a* on a_hat
    K   = Cov(a_hat, a*) / Var(a*)         OLS slope of a_hat on a*: the estimate's scale
    SNR = Var(a*) / Var(a_hat / K - a*)    calibrated signal-to-noise ratio: noise left after
                                           the estimate is divided by its scale K
    rho = Spearman rank correlation of a_hat and a*

with sample (co)variances (ddof = 1). A statistic that is undefined (fewer than two pairs, a
constant side, K = 0) is NaN; SNR is infinite when the calibrated estimate is exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Statistic = Callable[[np.ndarray, np.ndarray], float]


def _pair(a_hat: np.ndarray, a_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a_hat, dtype=np.float64).ravel()
    y = np.asarray(a_star, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"a_hat has {x.size} values and a_star {y.size}; they must pair up")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("a_hat and a_star must be finite")
    return x, y


def _covariance(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum((x - x.mean()) * (y - y.mean())) / (x.size - 1))


def _variance(x: np.ndarray) -> float:
    return _covariance(x, x)


def slope_i(a_hat: np.ndarray, a_star: np.ndarray) -> float:
    """I = Cov(a_hat, a*) / Var(a_hat)."""
    x, y = _pair(a_hat, a_star)
    if x.size < 2 or _variance(x) <= 0:
        return math.nan
    return _covariance(x, y) / _variance(x)


def scale_k(a_hat: np.ndarray, a_star: np.ndarray) -> float:
    """K = Cov(a_hat, a*) / Var(a*)."""
    x, y = _pair(a_hat, a_star)
    if x.size < 2 or _variance(y) <= 0:
        return math.nan
    return _covariance(x, y) / _variance(y)


def calibrated_snr(a_hat: np.ndarray, a_star: np.ndarray) -> float:
    """Var(a*) / Var(a_hat / K - a*): the signal-to-noise ratio after removing the scale K."""
    x, y = _pair(a_hat, a_star)
    k = scale_k(x, y)
    if not math.isfinite(k) or abs(k) < 1e-300:
        return math.nan
    noise = _variance(x / k - y)
    if noise <= 0:
        return math.inf
    return _variance(y) / noise


def ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank (as Spearman's rho needs)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    result = np.empty(values.size, dtype=np.float64)
    start = 0
    while start < values.size:
        stop = start + 1
        while stop < values.size and sorted_values[stop] == sorted_values[start]:
            stop += 1
        result[order[start:stop]] = (start + stop + 1) / 2  # mean of ranks start+1 .. stop
        start = stop
    return result


def pearson(a_hat: np.ndarray, a_star: np.ndarray) -> float:
    x, y = _pair(a_hat, a_star)
    if x.size < 2 or _variance(x) <= 0 or _variance(y) <= 0:
        return math.nan
    return _covariance(x, y) / math.sqrt(_variance(x) * _variance(y))


def spearman(a_hat: np.ndarray, a_star: np.ndarray) -> float:
    """Spearman's rho: the Pearson correlation of the (tie-averaged) ranks."""
    x, y = _pair(a_hat, a_star)
    return pearson(ranks(x), ranks(y))


STATISTICS: dict[str, Statistic] = {
    "I": slope_i,
    "K": scale_k,
    "snr_calibrated": calibrated_snr,
    "spearman": spearman,
    "pearson": pearson,
}


def agreement(a_hat: np.ndarray, a_star: np.ndarray) -> dict[str, float]:
    """Every statistic of STATISTICS over the given pairs, plus their count `n`."""
    x, y = _pair(a_hat, a_star)
    return {"n": int(x.size), **{name: fn(x, y) for name, fn in STATISTICS.items()}}


def bootstrap_interval(
    a_hat: np.ndarray,
    a_star: np.ndarray,
    statistic: Statistic,
    *,
    samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over pairs resampled with replacement;
    (NaN, NaN) when the statistic is undefined on the data or on every resample."""
    x, y = _pair(a_hat, a_star)
    if x.size < 2 or not math.isfinite(statistic(x, y)):
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    values = np.empty(samples, dtype=np.float64)
    for index in range(samples):
        pick = rng.integers(0, x.size, size=x.size)
        values[index] = statistic(x[pick], y[pick])
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1.0 - level) / 2.0
    return float(np.quantile(finite, tail)), float(np.quantile(finite, 1.0 - tail))


def holder_totals(track_values: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Per-holder sums of per-track values: membership (H, N) of 0/1 (or share weights) times
    track_values (..., N) -> (..., H)."""
    track_values = np.asarray(track_values, dtype=np.float64)
    membership = np.asarray(membership, dtype=np.float64)
    if track_values.shape[-1] != membership.shape[1]:
        raise ValueError(
            f"{track_values.shape[-1]} track values for a membership of "
            f"{membership.shape[1]} tracks"
        )
    return track_values @ membership.T


def top1_agreement(a_hat: np.ndarray, a_star: np.ndarray) -> np.ndarray:
    """Per generation (row of (G, H) matrices): whether the holder the method ranks first is
    the holder whose removal raises the generation's loss most. Ties go to the lower index."""
    x = np.asarray(a_hat, dtype=np.float64)
    y = np.asarray(a_star, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 2 or x.shape[1] == 0:
        raise ValueError("a_hat and a_star must be (generations, holders) matrices of one shape")
    return np.argmax(x, axis=1) == np.argmax(y, axis=1)


def share_to_top_effects(paid_share: np.ndarray, a_star: np.ndarray, k: int = 3) -> np.ndarray:
    """Per generation: the summed pool share paid to the k holders with the largest a*
    (removing them raised the generation's loss most). (G, H), (G, H) -> (G,)."""
    paid = np.asarray(paid_share, dtype=np.float64)
    y = np.asarray(a_star, dtype=np.float64)
    if paid.shape != y.shape or paid.ndim != 2:
        raise ValueError("paid_share and a_star must be (generations, holders) matrices")
    if not 1 <= k <= y.shape[1]:
        raise ValueError(f"k must be between 1 and the number of holders ({y.shape[1]})")
    top = np.argsort(-y, axis=1, kind="stable")[:, :k]  # (G, k)
    return np.take_along_axis(paid, top, axis=1).sum(axis=1)


def hub_counts(scores: np.ndarray, related: np.ndarray, k: int = 3) -> np.ndarray:
    """Per training track: in how many generations it is among the k top-scored tracks while
    being unrelated to the generation ("hub" tracks, paid for everything). scores (G, N),
    related (G, N) bool (e.g. same collection as the generation's prompt) -> (N,) counts.
    Ties go to the lower training-set position, as the ledger's cut-off does."""
    scores = np.asarray(scores, dtype=np.float64)
    related = np.asarray(related, dtype=bool)
    if scores.shape != related.shape or scores.ndim != 2:
        raise ValueError("scores and related must be (generations, tracks) matrices of one shape")
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"k must be between 1 and the number of tracks ({scores.shape[1]})")
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # (G, k)
    in_top = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(in_top, top, True, axis=1)
    return (in_top & ~related).sum(axis=0)
