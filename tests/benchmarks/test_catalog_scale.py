"""The staged catalog benchmark's figure of how long the batch's row went without
progress (benchmarks/catalog_scale.py --staged)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from catalog_scale import max_gap


def test_the_longest_silence_is_between_consecutive_writes_not_first_and_last():
    # task start 10.0, writes at 10.5, 11.0 and 14.2, task end 14.5
    assert max_gap([10.0, 10.5, 11.0, 14.2, 14.5]) == pytest.approx(3.2)


def test_a_task_that_starts_and_ends_without_a_write_is_silent_throughout():
    assert max_gap([3.0, 7.5]) == pytest.approx(4.5)


def test_fewer_than_two_moments_have_no_gap():
    assert max_gap([5.0]) == 0.0
    assert max_gap([]) == 0.0
