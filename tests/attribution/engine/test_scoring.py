"""Eq. 2 scores: common random numbers, independence of batch size, provenance."""

import numpy as np
import torch

from attribution.engine.artifacts import ArtifactStore
from attribution.engine.fisher import target_parameters
from attribution.engine.items import query_from_training_item
from attribution.engine.methods import unlearning as unlearning_method
from attribution.engine.methods import unlearning_scores
from attribution.engine.scoring import rank_of


def test_common_random_numbers_give_zero_scores_when_nothing_is_unlearned(
    monkeypatch, tiny_model, tiny_train_set, tiny_cfg
):
    def no_update(model, query, fisher, cfg, n_train, progress=None, **kwargs):
        params = target_parameters(model, cfg.target_layers)
        return {name: p.detach().clone() for name, p in params.items()}  # theta' = theta0

    store = ArtifactStore(None)
    query = query_from_training_item(tiny_train_set.items[0])
    real = unlearning_scores(tiny_model, query, tiny_train_set, tiny_cfg, store=store)
    assert np.abs(real.tau).max() > 0
    monkeypatch.setattr(unlearning_method, "unlearn", no_update)
    null = unlearning_scores(tiny_model, query, tiny_train_set, tiny_cfg, store=store)
    assert np.array_equal(null.tau, np.zeros(len(tiny_train_set)))
    assert np.array_equal(null.base_losses, real.base_losses)


def test_scores_do_not_depend_on_batch_size(tiny_model, tiny_train_set, tiny_cfg):
    query = query_from_training_item(tiny_train_set.items[2])
    a = unlearning_scores(tiny_model, query, tiny_train_set, tiny_cfg.replace(batch_size=4))
    b = unlearning_scores(tiny_model, query, tiny_train_set, tiny_cfg.replace(batch_size=3))
    assert np.abs(a.tau - b.tau).max() <= 1e-3 * np.abs(a.tau).max()
    assert list(a.ranking()) == list(b.ranking())


def test_scores_carry_what_reproduces_them(tmp_path, tiny_model, tiny_train_set, tiny_cfg):
    query = query_from_training_item(tiny_train_set.items[1])
    scores = unlearning_scores(tiny_model, query, tiny_train_set, tiny_cfg)
    prov = scores.provenance
    assert prov["checkpoint_sha256"] == tiny_model.checkpoint_sha256
    assert prov["training_manifest_sha256"] == tiny_train_set.manifest_sha256
    assert prov["engine_config"] == tiny_cfg.to_dict() and prov["seed"] == tiny_cfg.seed
    assert prov["library_versions"]["torch"].split("+")[0] == torch.__version__.split("+")[0]
    assert prov["method"] == "unlearning"
    assert set(prov["artifact_sha256"]) == {"fisher", "base_losses"}
    assert all(len(digest) == 64 for digest in prov["artifact_sha256"].values())
    assert prov["tau_sha256"] == scores.tau_sha256() and len(prov["query_state_sha256"]) == 64
    assert prov["device"] == "cpu" and prov["dtype"] == "float32"
    assert 0 < prov["statistics"]["update_relative_norm"] < float("inf")
    path = scores.save(tmp_path / "scores.json")
    import json

    saved = json.loads(path.read_text())
    assert [float.fromhex(h) for h in saved["tau_hex"]] == list(scores.tau)
    assert saved["item_ids"] == tiny_train_set.item_ids


def test_rank_counts_ties_against_the_target():
    tau = np.array([0.3, 0.5, 0.3, 0.1])
    assert rank_of(tau, 1) == 1
    assert rank_of(tau, 0) == 3  # tied with position 2: not ranked ahead of it
    assert rank_of(tau, 3) == 4
