"""The staged pipeline: slices combine into the same bytes as one pass, gaps are refused, the
query state round-trips, methods are looked up by name, and artifacts are never recomputed
where computing is not allowed."""

import numpy as np
import pytest
import torch

from attribution.engine.artifacts import ArtifactStore
from attribution.engine.errors import EngineError
from attribution.engine.items import query_from_training_item
from attribution.engine.methods import METHODS, method_named, unlearning_scores
from attribution.engine.pipeline import QueryState, combine, score_slice, slice_bounds


@pytest.fixture
def staged(tiny_model, tiny_train_set, tiny_cfg):
    method = method_named("unlearning")
    store = ArtifactStore(None)
    prepared = method.prepare(tiny_model, tiny_train_set, tiny_cfg, store)
    query = query_from_training_item(tiny_train_set.items[2])
    state = method.query_state(prepared, query)
    return method, prepared, state, query, store


def test_slices_in_any_order_combine_to_the_bytes_of_one_pass(
    staged, tiny_model, tiny_train_set, tiny_cfg
):
    method, prepared, state, query, store = staged
    pieces = [
        score_slice(method, prepared, state, start, stop)
        for start, stop in slice_bounds(len(tiny_train_set), 4)
    ]
    combined = combine(method, prepared, state, list(reversed(pieces)))
    whole = unlearning_scores(tiny_model, query, tiny_train_set, tiny_cfg, store=store)
    assert combined.tau.tobytes() == whole.tau.tobytes()
    assert combined.tau_sha256() == whole.provenance["tau_sha256"]
    assert combined.provenance["query_state_sha256"] == whole.provenance["query_state_sha256"]
    # tau = L(theta') - L(theta0), the two terms kept beside it
    assert np.array_equal(combined.tau, combined.unlearned_losses - combined.base_losses)


def test_combine_refuses_a_gap_an_overlap_and_a_missing_tail(staged, tiny_train_set):
    method, prepared, state, _, _ = staged
    n = len(tiny_train_set)
    first, second = (
        score_slice(method, prepared, state, 0, 3),
        score_slice(method, prepared, state, 3, n),
    )
    with pytest.raises(EngineError, match="gap at training position 0"):
        combine(method, prepared, state, [second])
    with pytest.raises(EngineError, match="overlap at training position 3"):
        combine(method, prepared, state, [first, score_slice(method, prepared, state, 2, n)])
    with pytest.raises(EngineError, match=f"cover 3 of {n}"):
        combine(method, prepared, state, [first])
    with pytest.raises(EngineError, match="outside the training set"):
        score_slice(method, prepared, state, 3, n + 1)


def test_the_query_state_round_trips_and_refuses_a_corrupted_file(staged, tmp_path):
    _, _, state, _, _ = staged
    path = tmp_path / "query_state.pt"
    sha = state.save(path)
    loaded = QueryState.load(path, sha)
    assert loaded.sha256() == state.sha256() and loaded.meta == state.meta
    assert all(torch.equal(loaded.tensors[n], state.tensors[n]) for n in state.tensors)
    assert all(t.device.type == "cpu" for t in state.tensors.values())
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(EngineError, match="corrupted"):
        QueryState.load(path, sha)


def test_methods_are_looked_up_by_name():
    assert method_named("unlearning") is METHODS["unlearning"]
    with pytest.raises(EngineError, match=r"Unknown attribution method 'trak' \(known: "):
        method_named("trak")


def test_a_store_that_may_not_compute_refuses_missing_artifacts_and_reads_finished_ones(
    tmp_path, tiny_model, tiny_train_set, tiny_cfg
):
    method = method_named("unlearning")
    with pytest.raises(EngineError, match="not been computed for this engine configuration"):
        method.prepare(tiny_model, tiny_train_set, tiny_cfg, ArtifactStore(tmp_path), compute=False)
    computed = method.prepare(tiny_model, tiny_train_set, tiny_cfg, ArtifactStore(tmp_path))
    again = method.prepare(
        tiny_model, tiny_train_set, tiny_cfg, ArtifactStore(tmp_path), compute=False
    )
    assert again.artifact_sha256 == computed.artifact_sha256
    # another batch size rounds differently: its theta0 losses are a different artifact
    with pytest.raises(EngineError, match="theta0 losses"):
        method.prepare(
            tiny_model, tiny_train_set, tiny_cfg.replace(batch_size=3), ArtifactStore(tmp_path),
            compute=False,
        )  # fmt: skip


def test_artifact_keys_name_the_device_and_dtype(tiny_model, tiny_train_set, tiny_cfg):
    key = ArtifactStore.artifact_key(tiny_model, "fisher", tiny_train_set, tiny_cfg)
    assert key["device"] == "cpu" and key["dtype"] == "float32"
    assert "batch_size" not in key  # one backward pass per draw
    doubled = tiny_model.module.double()
    try:
        assert (
            ArtifactStore.artifact_key(tiny_model, "losses", tiny_train_set, tiny_cfg)["dtype"]
            == "float64"
        )
    finally:
        doubled.float()
