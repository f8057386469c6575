"""Hub tracks in the comparison benchmark (benchmarks/attribution_methods_compare.py): the
tracks among the top places of generations from another collection, and the corrections of
the scores measured against them."""

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from attribution_common import hub_report, leave_one_out_moments, same_collection, standardised
from attribution_methods_compare import (
    chance_levels,
    gradient_norm_normalised,
    hub_analysis,
    own_collection_share,
    per_generation_standardised,
    prior_removed,
    prompt_collection,
    rank_agreement,
    stored_gradient_norms,
)

COLLECTIONS = ["A", "A", "A", "B", "B", "B"]  # six training tracks, two collections
GENERATIONS = [{"collection": c} for c in ("A", "A", "B", "B")]


def catalog():
    tracks = [
        SimpleNamespace(
            track_id=f"t{i}", title=f"Track {i}", collection=collection, ensemble=f"ensemble {i}"
        )
        for i, collection in enumerate(COLLECTIONS)
    ]
    train_set = SimpleNamespace(items=[SimpleNamespace(item_id=t.track_id) for t in tracks])
    return train_set, tracks


def planted_hub() -> np.ndarray:
    """(4, 6): every generation raises its own collection's tracks by 1; track 0 (collection
    A) scores 10 more than any other track for every generation, so it takes a top-3 place
    of both B generations."""
    related = np.array([[c == g["collection"] for c in COLLECTIONS] for g in GENERATIONS])
    scores = related.astype(float)
    scores[:, 0] += 10.0
    return scores


def test_the_hub_report_counts_a_planted_hub_in_unrelated_top_places():
    train_set, tracks = catalog()
    report = hub_report(planted_hub(), train_set, tracks, GENERATIONS, k=3)
    assert report["top_k_slots"] == 12
    assert report["unrelated_top_k_slots"] == 2
    assert report["unrelated_top_k_share"] == pytest.approx(2 / 12)
    assert report["tracks_in_unrelated_top_k_twice_or_more"] == 1
    assert report["most_frequent"] == [
        {
            "track_id": "t0",
            "title": "Track 0",
            "collection": "A",
            "ensemble": "ensemble 0",
            "unrelated_generations_in_top_k": 2,
        }
    ]


def test_same_collection_marks_the_tracks_of_each_generations_collection():
    train_set, tracks = catalog()
    related = same_collection(train_set, tracks, GENERATIONS)
    assert related.tolist() == [[True] * 3 + [False] * 3] * 2 + [[False] * 3 + [True] * 3] * 2


def test_leave_one_out_moments_leave_out_the_generation_itself():
    scores = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    mean, std = leave_one_out_moments(scores)
    assert mean == pytest.approx(np.array([[4.0, 6.5], [3.0, 5.5], [2.0, 3.0]]))
    assert std == pytest.approx(np.array([[1.0, 2.5], [2.0, 3.5], [1.0, 1.0]]))
    with pytest.raises(ValueError):
        leave_one_out_moments(scores[:1])


def test_prior_removal_takes_the_planted_hub_out_of_unrelated_top_places():
    train_set, tracks = catalog()
    corrected = prior_removed(planted_hub())
    # B generation 2: track 0 scores 10, 32/3 on average over the others
    assert corrected[2, 0] == pytest.approx(10.0 - 32.0 / 3.0)
    report = hub_report(corrected, train_set, tracks, GENERATIONS, k=3)
    assert report["unrelated_top_k_slots"] == 0
    assert report["most_frequent"] == []


def test_standardisation_takes_the_planted_hub_out_and_leaves_constant_tracks_centred():
    train_set, tracks = catalog()
    corrected = standardised(planted_hub())
    assert corrected[2, 0] == pytest.approx((10.0 - 32.0 / 3.0) / np.std([11.0, 11.0, 10.0]))
    assert hub_report(corrected, train_set, tracks, GENERATIONS, k=3)["unrelated_top_k_slots"] == 0
    constant = np.array([[2.0, 1.0], [2.0, 3.0], [2.0, 5.0]])
    assert standardised(constant)[:, 0].tolist() == [0.0, 0.0, 0.0]


def test_gradient_norm_normalisation_divides_each_track_by_its_norm():
    # track 0's score is large because its gradient is long, not because it points the same way
    norms = np.array([100.0, 1.0, 2.0])
    cosines = np.array([[0.1, 0.9, 0.5]])
    corrected = gradient_norm_normalised(cosines * norms, norms)
    assert corrected == pytest.approx(cosines)
    assert gradient_norm_normalised(np.ones((1, 2)), np.array([0.0, 2.0])).tolist() == [[1.0, 0.5]]
    with pytest.raises(ValueError):
        gradient_norm_normalised(cosines, norms[:2])


def test_own_collection_share_is_the_ledger_split_of_the_prompts_collection():
    scores = np.array([[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    related = np.array([[True, False, False], [True, True, False]])
    share = own_collection_share(scores, related)
    assert share[0] > 0.8  # the top track is its own collection's
    assert share[1] < 0.2  # the top track is another collection's
    assert own_collection_share(scores, np.ones_like(related)).tolist() == pytest.approx([1, 1])


def test_rank_agreement_is_the_spearman_correlation_per_generation():
    scores = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 2.0]])
    assert rank_agreement(2 * scores + 1, scores).tolist() == pytest.approx([1.0, 1.0])
    assert rank_agreement(-scores, scores).tolist() == pytest.approx([-1.0, -1.0])


def test_prompt_collection_reads_the_name_in_parentheses():
    collections = {"Bach chorales", "Josquin masses", "Haydn string quartets"}
    assert prompt_collection("chorale by J. S. Bach (Bach chorales), organ", collections) == (
        "Bach chorales"
    )
    assert prompt_collection("motet by Josquin des Prez (Josquin), choir", collections) == (
        "Josquin masses"
    )
    with pytest.raises(ValueError):
        prompt_collection("string quartet (Mozart string quartets)", collections)
    with pytest.raises(ValueError):
        prompt_collection("a waltz, accordion", collections)


def test_stored_gradient_norms_come_only_from_methods_storing_per_track_gradients():
    rows = np.array([[3.0, 4.0], [0.0, 1.0]])
    prepared = {
        "gradient_similarity": SimpleNamespace(artifacts={"gradients": rows}),
        "first_order": SimpleNamespace(artifacts={"fisher": None, "features": 2 * rows}),
        "unlearning": SimpleNamespace(artifacts={"fisher": None, "base_losses": rows[0]}),
    }
    norms = stored_gradient_norms(prepared)
    assert sorted(norms) == ["first_order", "gradient_similarity"]
    assert norms["gradient_similarity"].tolist() == [5.0, 1.0]
    assert norms["first_order"].tolist() == [10.0, 2.0]


def test_hub_analysis_reports_every_correction_beside_the_uncorrected_scores():
    train_set, tracks = catalog()
    scores = {"hubby": planted_hub(), "other": planted_hub()[:, ::-1].copy()}
    norms = {"hubby": np.array([11.0, 1.0, 1.0, 1.0, 1.0, 1.0])}
    result = hub_analysis(scores, train_set, tracks, GENERATIONS, norms)
    assert list(result["hubby"]) == [
        "uncorrected",
        "prior_removed",
        "standardised",
        "generation_standardised_prior_removed",
        "generation_standardised_standardised",
        "gradient_norm",
    ]
    assert "gradient_norm" not in result["other"]  # no stored gradients
    uncorrected = result["hubby"]["uncorrected"]
    assert uncorrected["hub"]["unrelated_top_k_slots"] == 2
    assert uncorrected["spearman_with_uncorrected"]["mean"] == pytest.approx(1.0)
    for correction in list(result["hubby"])[1:]:
        entry = result["hubby"][correction]
        assert entry["hub"]["unrelated_top_k_slots"] == 0, correction
        # the B generations' pools go to collection B once the hub is corrected
        own = entry["own_collection_pool_share"]
        assert (
            own["per_generation"][2] > uncorrected["own_collection_pool_share"]["per_generation"][2]
        )
        assert own["mean"] == pytest.approx(np.mean(own["per_generation"]))
        assert entry["spearman_with_uncorrected"]["min"] < 1.0


def test_chance_levels_are_what_random_top_places_and_a_uniform_split_give():
    related = np.array([[True, False, False, False], [True, True, False, False]])
    chance = chance_levels(related)
    assert chance["own_collection_pool_share"] == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert chance["unrelated_top_k_share"] == pytest.approx((3 / 4 + 2 / 4) / 2)
    assert own_collection_share(np.zeros((2, 4)), related).mean() == pytest.approx(
        chance["own_collection_pool_share"]
    )


def test_per_generation_standardisation_makes_generations_of_any_scale_weigh_alike():
    scores = np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    assert per_generation_standardised(scores) == pytest.approx(
        np.array([[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]) * np.array([[1.5**0.5], [1.0]])
    )
    # a generation whose scores are all 100 times larger moves no track's prior
    hub = planted_hub()
    scaled = hub * np.array([[1.0], [1.0], [100.0], [1.0]]) + 7.0
    assert prior_removed(per_generation_standardised(scaled)) == pytest.approx(
        prior_removed(per_generation_standardised(hub))
    )
