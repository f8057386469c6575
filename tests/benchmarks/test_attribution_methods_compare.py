"""The comparison benchmark's figures (benchmarks/attribution_methods_compare.py): tracks
sorted by the reference method, the two normalisations, the correlation matrices."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from attribution_methods_compare import correlations, minmax, sorted_curves


def test_curves_follow_the_reference_ranking_of_each_generation():
    scores = {
        "reference": np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]]),  # (G, N)
        "other": np.array([[30.0, 10.0, 20.0], [9.0, 1.0, 3.0]]),
    }
    curves = sorted_curves(scores, "reference")
    # the reference's own min-max curve falls from 1 to 0 (its middle: 0.5 and 0.2)
    assert curves["reference"]["minmax"]["mean"] == pytest.approx([1.0, 0.35, 0.0])
    assert curves["reference"]["minmax"]["std"] == pytest.approx([0.0, 0.15, 0.0])
    # the other method at the reference's ranks: generation 0 agrees, generation 1 is reversed
    # (ranks: track 1, track 2, track 0 -> other's min-max 0, 0.25, 1)
    other = curves["other"]["minmax"]
    assert other["mean"] == pytest.approx([0.5, 0.375, 0.5])
    assert other["std"] == pytest.approx([0.5, 0.125, 0.5])
    # the softmax view is the ledger's split: each generation's shares sum to 1
    assert sum(curves["other"]["softmax"]["mean"]) == pytest.approx(1.0)
    assert curves["reference"]["softmax"]["mean"][0] > curves["reference"]["softmax"]["mean"][2]


def test_a_constant_row_is_normalised_to_zero():
    assert minmax(np.array([[2.0, 2.0]])).tolist() == [[0.0, 0.0]]


def test_correlations_are_per_generation_then_averaged():
    base = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 1.0, 3.0, 2.0]])
    scores = {"a": base, "same": 2 * base + 1, "reversed": -base, "cubed": base**3}
    result = correlations(scores)
    assert result["methods"] == ["a", "same", "reversed", "cubed"]
    pearson = np.array(result["pearson"]["mean"])
    spearman = np.array(result["spearman"]["mean"])
    assert pearson[0, 1] == pytest.approx(1.0) and pearson[0, 2] == pytest.approx(-1.0)
    assert spearman[0, 3] == pytest.approx(1.0) and pearson[0, 3] < 1.0
    assert np.allclose(np.diag(pearson), 1.0) and np.allclose(pearson, pearson.T)
    assert np.array(result["spearman"]["std"])[0, 3] == pytest.approx(0.0)
