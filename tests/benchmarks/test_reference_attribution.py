"""The reference benchmark's measures (benchmarks/reference_attribution.py): each track's share
of the pool under the ledger's split, the noise-level list, the spectral distance."""

import sys
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from reference_attribution import noise_levels, pool_shares, spectral_distance

from ledger.splits import SplitPolicy, generation_split, track_weights


def test_pool_shares_are_the_ledgers_split_of_the_pool():
    tau = np.array([0.3, -1.0, 2.5, 0.0, 1.1])
    policy = SplitPolicy(top_k=3, min_share=Decimal("0"))
    shares = pool_shares(tau, policy)
    assert shares.sum() == pytest.approx(1.0)
    assert (shares > 0).sum() == 3 and shares[1] == 0.0 and shares[3] == 0.0
    assert np.argmax(shares) == 2
    split = generation_split(
        revenue_minor=10**9,
        weights=track_weights(list(tau), policy),
        pool_fraction=Decimal("1"),
        ownership={i: [(i, Decimal("100"))] for i in range(5)},
    )
    for track in split.tracks:
        assert shares[track.position] == pytest.approx(track.amount / split.pool, abs=1e-8)


def test_noise_levels_are_parsed_and_bad_ones_refused():
    assert noise_levels("1, 4,16") == [1.0, 4.0, 16.0]
    with pytest.raises(SystemExit):
        noise_levels("1,x")
    with pytest.raises(SystemExit):
        noise_levels(" ")


def test_spectral_distance_is_zero_for_the_same_audio_and_grows_with_difference():
    time = np.arange(8000) / 8000
    a = (0.5 * np.sin(2 * np.pi * 440 * time))[None].astype(np.float32)  # (1, T)
    near = a + 0.01 * np.random.default_rng(0).standard_normal(a.shape).astype(np.float32)
    far = (0.5 * np.sin(2 * np.pi * 97 * time))[None].astype(np.float32)
    assert spectral_distance(a, a) == 0.0
    assert 0 < spectral_distance(a, near) < spectral_distance(a, far)
