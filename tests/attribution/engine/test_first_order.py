"""The first-order method and its projections (methods/first_order.py, projection.py)."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from attribution.engine.artifacts import ArtifactStore
from attribution.engine.errors import ArtifactNotComputedError, EngineError
from attribution.engine.features import FeatureMap
from attribution.engine.items import QueryItem
from attribution.engine.methods import METHODS
from attribution.engine.pipeline import attribute, combine, score_slice, slice_bounds
from attribution.engine.projection import Projection, whiten

FAST = METHODS["first_order"]
EXACT = METHODS["unlearning"]
SHAPES = {"a.weight": (6, 5), "a.bias": (6,), "b.weight": (4, 3)}


def _named(seed):
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) for name, shape in SHAPES.items()}


def _flat(tensors):
    return torch.cat([tensors[name].reshape(-1) for name in sorted(tensors)]).double()


@pytest.mark.parametrize("offset", [0.0, 3.0])  # 3: colliding coordinates do not cancel
@pytest.mark.parametrize("kind", ["sjlt", "gaussian", "rademacher", "factored"])
def test_projections_keep_inner_products_in_expectation(kind, offset):
    a = {name: value + offset for name, value in _named(1).items()}
    b = {name: value + offset for name, value in _named(2).items()}
    exact = float(_flat(a) @ _flat(b))
    estimates = []
    for seed in range(400):
        projection = Projection(kind, 16, SHAPES, seed)
        estimates.append(float(projection.apply(a) @ projection.apply(b)))
    mean, error = np.mean(estimates), np.std(estimates) / np.sqrt(len(estimates))
    assert abs(mean - exact) < 4 * error, (mean, exact, error)


def test_a_projection_is_the_same_in_every_process_and_differs_by_seed():
    a = _named(3)
    first = Projection("sjlt", 8, SHAPES, 0).apply(a)
    assert torch.equal(first, Projection("sjlt", 8, SHAPES, 0).apply(a))
    assert not torch.equal(first, Projection("sjlt", 8, SHAPES, 1).apply(a))
    assert Projection("sjlt", 8, SHAPES, 0).apply(a).shape == (8,)


def test_no_projection_is_the_flat_vector_and_rows_match_single_applications():
    a = _named(4)
    assert torch.equal(Projection("none", 1, SHAPES, 0).apply(a), _flat(a))
    rows = torch.stack([_flat(_named(s)).float() for s in (5, 6)])  # (2, p)
    for kind in ("sjlt", "gaussian", "factored"):
        projection = Projection(kind, 12, SHAPES, 0)
        batched = projection.apply_rows(rows)
        one = projection.apply(
            {
                name: rows[0, offset : offset + int(np.prod(shape))].reshape(shape)
                for name, shape, offset in _offsets()
            }
        )
        torch.testing.assert_close(batched[0], one, rtol=1e-5, atol=1e-6)


def _offsets():
    offset = 0
    for name in sorted(SHAPES):
        yield name, SHAPES[name], offset
        offset += int(np.prod(SHAPES[name]))


def test_an_unknown_projection_is_refused_by_name():
    with pytest.raises(EngineError, match="Unknown projection 'dense'"):
        Projection("dense", 8, SHAPES, 0)


def test_whitening_divides_by_the_damped_fisher_square_root():
    grads = {"w": torch.tensor([2.0, 3.0])}
    fisher = {"w": torch.tensor([3.0, 8.0])}
    torch.testing.assert_close(whiten(grads, fisher, 1.0)["w"], torch.tensor([1.0, 1.0]))


def _query(train_set, position=0):
    item = train_set.items[position]
    return QueryItem(
        item_id="query",
        audio=item.audio.clone(),
        prompt=item.prompt,
        seconds_start=item.seconds_start,
        seconds_total=item.seconds_total,
    )


def test_unprojected_first_order_scores_match_the_exact_scores_for_a_small_step(
    tiny_model, tiny_train_set, tiny_cfg
):
    # the same draws: the query gradient over all of the exact method's unlearning draws
    cfg = tiny_cfg.replace(
        projection="none", first_order_timesteps=tiny_cfg.unlearn_timesteps, lr=1e-7
    )
    store = ArtifactStore(None)
    query = _query(tiny_train_set)
    exact = attribute(EXACT, tiny_model, query, tiny_train_set, cfg, store=store)
    fast = attribute(FAST, tiny_model, query, tiny_train_set, cfg, store=store)
    np.testing.assert_allclose(fast.tau, exact.tau, rtol=2e-2, atol=1e-3 * np.abs(exact.tau).max())
    assert fast.provenance["method"] == "first_order"
    ratio = (
        fast.provenance["statistics"]["update_relative_norm"]
        / exact.provenance["statistics"]["update_relative_norm"]
    )
    assert ratio == pytest.approx(1.0, rel=1e-4)


def test_projected_scores_keep_the_ranking_and_are_linear_in_the_step(
    tiny_model, tiny_train_set, tiny_cfg
):
    cfg = tiny_cfg.replace(projection="sjlt", projection_dim=4096, first_order_timesteps=32)
    store = ArtifactStore(None)
    query = _query(tiny_train_set, 2)
    full = attribute(FAST, tiny_model, query, tiny_train_set, cfg.replace(projection="none"))
    projected = attribute(FAST, tiny_model, query, tiny_train_set, cfg, store=store)
    assert spearmanr(full.tau, projected.tau).statistic > 0.9
    doubled = attribute(FAST, tiny_model, query, tiny_train_set, cfg.replace(lr=2 * cfg.lr))
    np.testing.assert_allclose(doubled.tau, 2 * projected.tau, rtol=1e-12)


def test_scores_are_identical_however_the_training_set_is_sliced(
    tiny_model, tiny_train_set, tiny_cfg
):
    cfg = tiny_cfg.replace(projection_dim=64, first_order_timesteps=8)
    store = ArtifactStore(None)
    prepared = FAST.prepare(tiny_model, tiny_train_set, cfg, store)
    state = FAST.query_state(prepared, _query(tiny_train_set, 1))
    whole = combine(FAST, prepared, state, [score_slice(FAST, prepared, state, 0, 6)])
    pieces = [score_slice(FAST, prepared, state, a, b) for a, b in slice_bounds(6, 4)][::-1]
    sliced = combine(FAST, prepared, state, pieces)
    assert whole.tau.tobytes() == sliced.tau.tobytes()
    assert whole.provenance["tau_sha256"] == sliced.provenance["tau_sha256"]


def test_features_are_stored_resumed_bit_identically_and_never_computed_by_a_scorer(
    tiny_model, tiny_train_set, tiny_cfg, tmp_path
):
    cfg = tiny_cfg.replace(projection_dim=32)
    ArtifactStore(tmp_path).fisher(
        tiny_model, lambda: ArtifactStore(None).encodings(tiny_model, tiny_train_set, cfg),
        tiny_train_set, cfg,
    )  # fmt: skip
    with pytest.raises(ArtifactNotComputedError, match="first-order features"):
        FAST.prepare(tiny_model, tiny_train_set, cfg, ArtifactStore(tmp_path), compute=False)
    in_memory = ArtifactStore(None)
    encoded = in_memory.encodings(tiny_model, tiny_train_set, cfg)
    reference = np.array(in_memory.features(tiny_model, encoded, tiny_train_set, cfg))

    class Interrupt(Exception):
        pass

    def stop_after_three(stage, done, total):
        if stage == "features" and done == 3:
            raise Interrupt

    store = ArtifactStore(tmp_path, chunk_items=3)
    with pytest.raises(Interrupt):
        store.features(tiny_model, encoded, tiny_train_set, cfg, stop_after_three)
    resumed = ArtifactStore(tmp_path, chunk_items=3).features(
        tiny_model, encoded, tiny_train_set, cfg
    )
    assert isinstance(resumed, np.memmap)
    assert resumed.shape == (6, 32) and resumed.dtype == np.float32
    assert resumed.tobytes() == reference.tobytes()
    loaded = ArtifactStore(tmp_path).features(
        tiny_model, encoded, tiny_train_set, cfg, compute=False
    )
    assert loaded.tobytes() == reference.tobytes()


def test_a_corrupted_feature_file_is_refused(tiny_model, tiny_train_set, tiny_cfg, tmp_path):
    cfg = tiny_cfg.replace(projection_dim=16)
    store = ArtifactStore(tmp_path)
    encoded = store.encodings(tiny_model, tiny_train_set, cfg)
    store.features(tiny_model, encoded, tiny_train_set, cfg)
    path = store.artifact_file(tiny_model, "features", tiny_train_set, cfg)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(EngineError, match="corrupted"):
        ArtifactStore(tmp_path).features(tiny_model, encoded, tiny_train_set, cfg)


def test_the_feature_map_whitens_before_projecting(tiny_model, tiny_train_set, tiny_cfg):
    cfg = tiny_cfg.replace(projection="none")
    store = ArtifactStore(None)
    encoded = store.encodings(tiny_model, tiny_train_set, cfg)
    fisher = store.fisher(tiny_model, encoded, tiny_train_set, cfg)
    feature_map = FeatureMap(tiny_model, fisher, cfg)
    grads = {name: torch.ones_like(p) for name, p in feature_map.params.items()}
    phi = feature_map(grads)
    expected = torch.cat(
        [
            (1.0 / (fisher[name] + feature_map.damping).sqrt()).reshape(-1).double()
            for name in sorted(grads)
        ]
    )
    torch.testing.assert_close(phi, expected)


def test_stored_encodings_are_read_a_chunk_at_a_time_and_give_the_same_scores(
    tiny_model, tiny_train_set, tiny_cfg, tmp_path, monkeypatch
):
    import attribution.engine.artifacts as artifacts

    monkeypatch.setattr(artifacts, "ENCODING_CHUNK", 4)  # 6 items -> chunks of 4 and 2
    cfg = tiny_cfg.replace(projection_dim=32, first_order_timesteps=8)
    query = _query(tiny_train_set, 3)
    in_memory = attribute(FAST, tiny_model, query, tiny_train_set, cfg)
    stored = ArtifactStore(tmp_path).encodings(tiny_model, tiny_train_set, cfg)
    assert isinstance(stored, artifacts.EncodedItems) and len(stored) == 6
    assert sorted(p.name for p in next(tmp_path.glob("*/encodings-*")).glob("chunk-*.pt")) == [
        "chunk-000000.pt",
        "chunk-000001.pt",
    ]
    reader = ArtifactStore(tmp_path).encodings(tiny_model, tiny_train_set, cfg)
    assert [item.item_id for item in reader[4:6]] == ["track-4", "track-5"]
    assert reader._chunk[0] == 1  # only the chunk the slice needs was read
    from_disk = attribute(
        FAST, tiny_model, query, tiny_train_set, cfg, store=ArtifactStore(tmp_path)
    )
    assert from_disk.tau.tobytes() == in_memory.tau.tobytes()
    chunk = next(tmp_path.glob("*/encodings-*/chunk-000000.pt"))
    chunk.write_bytes(chunk.read_bytes()[:-1] + b"x")
    with pytest.raises(EngineError, match="missing or corrupted"):
        ArtifactStore(tmp_path).encodings(tiny_model, tiny_train_set, cfg)[0]


def test_partial_results_are_written_by_time_not_after_every_chunk(
    tiny_model, tiny_train_set, tiny_cfg, tmp_path
):
    cfg = tiny_cfg.replace(projection_dim=16)
    encoded = ArtifactStore(None).encodings(tiny_model, tiny_train_set, cfg)
    ArtifactStore(tmp_path).fisher(tiny_model, encoded, tiny_train_set, cfg)

    class Interrupt(Exception):
        pass

    def stop_at_four(stage, done, total):
        if stage == "features" and done == 4:
            raise Interrupt

    for seconds, resumed_from in ((3600.0, 1), (0.0, 4)):
        store = ArtifactStore(tmp_path / str(seconds), chunk_items=1, checkpoint_seconds=seconds)
        store.fisher(tiny_model, encoded, tiny_train_set, cfg)
        with pytest.raises(Interrupt):
            store.features(tiny_model, encoded, tiny_train_set, cfg, stop_at_four)
        seen = []
        ArtifactStore(tmp_path / str(seconds), chunk_items=1).features(
            tiny_model, encoded, tiny_train_set, cfg, lambda s, d, t, seen=seen: seen.append(d)
        )
        assert seen[0] == resumed_from, (seconds, seen)
