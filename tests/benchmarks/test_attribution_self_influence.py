"""Self-influence over any set of training tracks (benchmarks/attribution_self_influence.py):
targets, the duration breakdown and the window-share correction; and how the ground-truth
benchmark shares its trainings between processes."""

import argparse
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from attribution_common import target_positions, window_shares
from attribution_self_influence import duration_breakdown
from holder_ground_truth import train_shard

from attribution.engine.scoring import rank_of


def encoded(*masks: list[int], more: dict | None = None):
    """Encoded items whose latent padding masks are `masks`; `more` {index: [masks]} gives an
    item further windows."""
    return [
        SimpleNamespace(
            padding_mask=torch.tensor(mask, dtype=torch.bool),
            more_windows=tuple(
                SimpleNamespace(padding_mask=torch.tensor(m, dtype=torch.bool))
                for m in (more or {}).get(i, [])
            ),
        )
        for i, mask in enumerate(masks)
    ]


def test_all_positions_are_every_training_track():
    assert target_positions("all", 4) == [0, 1, 2, 3]
    assert target_positions("3,1,3", 4) == [1, 3]
    assert target_positions(None, 4) == []
    with pytest.raises(SystemExit):
        target_positions("4", 4)


def test_window_share_is_the_filled_part_of_the_window_capped_at_one():
    shares = window_shares(
        encoded([1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], more={2: [[1, 0, 0, 0]]})
    )
    # a silent item keeps a small positive share rather than dividing by zero
    np.testing.assert_allclose(shares, [0.5, 1.0, 0.625, 1e-3])


def test_the_window_share_correction_lifts_a_short_track_above_a_longer_twin():
    # a target filling a quarter of the window: its full-window near-twin scores more before
    # the correction and less after it
    shares = window_shares(encoded([1, 0, 0, 0], [1, 1, 1, 1], [1, 1, 1, 1]))
    tau = np.array([0.20, 0.30, 0.01])
    assert rank_of(tau, 0) == 2
    assert rank_of(tau / shares, 0) == 1


def row(seconds, rank, corrected, runner_up_seconds):
    return {
        "seconds_total": seconds,
        "rank": rank,
        "rank_window_share": corrected,
        "runner_up_seconds_total": runner_up_seconds,
    }


def test_duration_breakdown_bins_targets_by_their_length():
    rows = [
        row(1.0, 3, 1, 5.0),
        row(1.5, 1, 1, 1.0),
        row(3.0, 2, 2, 2.5),
        row(7.0, 1, 2, 6.0),
    ]
    bins = duration_breakdown(rows, [2.0, 6.0], ["rank", "rank_window_share"])
    assert [b["seconds"] for b in bins] == ["0-2", "2-6", ">=6"]
    assert [b["targets"] for b in bins] == [2, 1, 1]
    assert bins[0]["rank_mean"] == 2.0 and bins[0]["rank_at_1"] == 1
    assert bins[0]["rank_window_share_at_1"] == 2 and bins[0]["rank_worst"] == 3
    assert bins[0]["missed_runner_up_longer"] == 1  # the 1 s target lost to a 5 s track
    assert bins[1]["missed_runner_up_longer"] == 0  # lost to a shorter one
    assert bins[2]["rank_window_share_mean"] == 2.0


def test_an_empty_bin_has_no_mean():
    bins = duration_breakdown([row(1.0, 1, 1, 2.0)], [2.0], ["rank"])
    assert bins[1] == {
        "seconds": ">=2",
        "targets": 0,
        "rank_mean": None,
        "rank_at_1": 0,
        "rank_worst": None,
        "missed_runner_up_longer": 0,
    }


def test_train_shards_split_the_trainings_between_processes():
    plan = list(range(10))
    shards = [plan[i::n] for i, n in (train_shard("0/2"), train_shard("1/2"))]
    assert sorted(shards[0] + shards[1]) == plan
    assert train_shard("2/3") == (2, 3)
    for bad in ("2/2", "-1/2", "1", "a/b"):
        with pytest.raises(argparse.ArgumentTypeError):
            train_shard(bad)
