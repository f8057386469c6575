"""Diagonal Fisher (Sec. 2.2): per-sample squares, chunked, resumable, keyed by checkpoint."""

import pytest
import torch

from attribution.engine.artifacts import ArtifactStore, verify_fisher_file
from attribution.engine.errors import EngineError
from attribution.engine.fisher import block_parameters, diagonal_fisher
from attribution.engine.items import encode_items
from attribution.engine.loss import draw, row_losses

from .conftest import build_tiny


def test_fisher_is_the_mean_of_per_sample_squared_gradients(tiny_model, tiny_train_set, tiny_cfg):
    items = encode_items(tiny_model, tiny_train_set.items[:3], tiny_cfg)
    fisher = diagonal_fisher(tiny_model, items, tiny_cfg)
    params = block_parameters(tiny_model)
    names = list(params)
    expected = {name: torch.zeros_like(params[name]) for name in names}
    batch_mean_squared = {name: torch.zeros_like(params[name]) for name in names}
    for item in items:  # a plain loop over single (item, timestep) draws
        t, noise = draw(tiny_model, item, tiny_cfg, "fisher", range(tiny_cfg.fisher_timesteps))
        for k in range(tiny_cfg.fisher_timesteps):
            tiny_model.module.zero_grad()
            row_losses(tiny_model, item, t[k : k + 1], noise[k : k + 1], mask=False)[0].backward()
            for name in names:
                expected[name] += params[name].grad ** 2
        tiny_model.module.zero_grad()
        row_losses(tiny_model, item, t, noise, mask=False).mean().backward()
        for name in names:
            batch_mean_squared[name] += params[name].grad ** 2
    count = len(items) * tiny_cfg.fisher_timesteps
    assert set(fisher) == set(names) and len(names) > 10
    for name in names:
        torch.testing.assert_close(fisher[name], expected[name] / count, rtol=1e-4, atol=1e-12)
    # the square of a batch mean is a different (smaller) quantity
    total = sum(float(fisher[n].sum()) for n in names)
    total_batch = sum(float(batch_mean_squared[n].sum()) for n in names) / len(items)
    assert total_batch < 0.9 * total


def test_fisher_artifact_resumes_after_interruption_bit_identically(
    tmp_path, tiny_model, tiny_train_set, tiny_cfg
):
    items = encode_items(tiny_model, tiny_train_set.items, tiny_cfg)
    reference = ArtifactStore(None).fisher(tiny_model, items, tiny_train_set, tiny_cfg)

    class Interrupted(Exception):
        pass

    def stop_after_three(stage, done, total):
        if stage == "fisher" and done == 3:
            raise Interrupted

    store = ArtifactStore(tmp_path, chunk_items=2)
    with pytest.raises(Interrupted):
        store.fisher(tiny_model, items, tiny_train_set, tiny_cfg, stop_after_three)
    seen = []
    resumed = ArtifactStore(tmp_path, chunk_items=2).fisher(
        tiny_model, items, tiny_train_set, tiny_cfg, lambda stage, done, total: seen.append(done)
    )
    assert seen == [3, 4, 5, 6]  # items 1-2 came from the partial artifact
    for name in reference:
        assert torch.equal(resumed[name], reference[name])
    # a finished artifact is loaded, not recomputed
    again = ArtifactStore(tmp_path).fisher(
        tiny_model, items, tiny_train_set, tiny_cfg, lambda *a: pytest.fail("recomputed")
    )
    assert all(torch.equal(again[n], reference[n]) for n in reference)


def test_fisher_artifact_from_another_checkpoint_is_refused(
    tmp_path, tiny_model, tiny_train_set, tiny_cfg
):
    items = encode_items(tiny_model, tiny_train_set.items[:2], tiny_cfg)
    store = ArtifactStore(tmp_path)
    store.fisher(tiny_model, items, tiny_train_set, tiny_cfg)
    (folder,) = (tmp_path / tiny_model.checkpoint_sha256).glob("fisher-*")
    other = build_tiny(seed=1)
    assert other.checkpoint_sha256 != tiny_model.checkpoint_sha256
    with pytest.raises(EngineError, match="computed for checkpoint"):
        verify_fisher_file(folder, other)
    (folder / "fisher.pt").write_bytes(b"tampered")
    with pytest.raises(EngineError, match="corrupted"):
        verify_fisher_file(folder, tiny_model)


def test_theta0_losses_are_stored_once_and_verified(tmp_path, tiny_model, tiny_train_set, tiny_cfg):
    from attribution.engine.loss import dataset_losses

    items = encode_items(tiny_model, tiny_train_set.items, tiny_cfg)
    calls = []
    store = ArtifactStore(tmp_path, chunk_items=4)
    losses = store.base_losses(
        tiny_model, items, tiny_train_set, tiny_cfg, lambda *a: calls.append(a)
    )
    assert len(calls) == len(items)
    assert losses.tobytes() == dataset_losses(tiny_model, items, tiny_cfg).tobytes()
    again = ArtifactStore(tmp_path).base_losses(
        tiny_model, items, tiny_train_set, tiny_cfg, lambda *a: pytest.fail("recomputed")
    )
    assert again.tobytes() == losses.tobytes()
    (path,) = (tmp_path / tiny_model.checkpoint_sha256).glob("losses-*/losses.npy")
    path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(EngineError, match="corrupted"):
        ArtifactStore(tmp_path).base_losses(tiny_model, items, tiny_train_set, tiny_cfg)


def test_artifacts_of_another_timestep_sequence_are_not_reused(
    tmp_path, tiny_model, tiny_train_set, tiny_cfg
):
    """Sobol and i.i.d. timesteps give different Fisher and theta0 losses; each is stored under
    its own key, so switching `timestep_sequence` never reads the other's artifact."""
    iid = tiny_cfg.replace(timestep_sequence="iid")
    items = encode_items(tiny_model, tiny_train_set.items, tiny_cfg)
    store = ArtifactStore(tmp_path)
    sobol_fisher = store.fisher(tiny_model, items, tiny_train_set, tiny_cfg)
    sobol_losses = store.base_losses(tiny_model, items, tiny_train_set, tiny_cfg)
    calls = []
    iid_fisher = store.fisher(tiny_model, items, tiny_train_set, iid, lambda *a: calls.append(a))
    iid_losses = store.base_losses(
        tiny_model, items, tiny_train_set, iid, lambda *a: calls.append(a)
    )
    assert {stage for stage, *_ in calls} == {"fisher", "base_losses"}  # computed, not loaded
    assert any(not torch.equal(sobol_fisher[n], iid_fisher[n]) for n in sobol_fisher)
    assert sobol_losses.tobytes() != iid_losses.tobytes()
    assert len(list((tmp_path / tiny_model.checkpoint_sha256).glob("fisher-*"))) == 2
