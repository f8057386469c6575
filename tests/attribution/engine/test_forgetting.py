"""Unlearning a forget set from a tiny model: each method, resumption, the derived checkpoint,
and the validation checks."""

import json

import numpy as np
import pytest
import torch

from attribution.engine.checkpoint import engine_model_from_module, load_engine_model, state_sha256
from attribution.engine.config import EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.fisher import diagonal_fisher, target_parameters
from attribution.engine.forgetting import (
    ForgettingConfig,
    ValidationThresholds,
    derived_manifest,
    flatness_check,
    forget,
    group_means,
    loss_checks,
    membership_auc,
    set_losses,
    spectral_flatness,
    validation_passed,
    write_checkpoint,
)
from attribution.engine.items import encode_items
from attribution.engine.loss import draw, row_losses
from attribution.engine.unlearn import parameters_swapped
from tests.attribution.engine.conftest import build_tiny, make_items

ENGINE = EngineConfig(score_timesteps=4, fisher_timesteps=2, batch_size=8)
THRESHOLDS = ValidationThresholds(loss_timesteps=16)
METHOD_CONFIGS = {
    "gradient_ascent": ForgettingConfig(
        method="gradient_ascent", steps=4, lr=1.0, timesteps=4, max_update_norm=2e-3
    ),
    "random_labels": ForgettingConfig(
        method="random_labels", steps=4, lr=0.05, timesteps=4, max_update_norm=1e-3
    ),
    "fisher": ForgettingConfig(method="fisher", steps=3, timesteps=4, fisher_update_norm=3e-3),
}


def trained_tiny(items, steps=150):
    """The tiny DiT fitted to `items` (Adam on the training loss), so that it knows them
    better than tracks it never saw, and its conditioning (timing) tells them apart."""
    model = build_tiny()
    optimiser = torch.optim.Adam(model.module.model.parameters(), lr=2e-3)
    for step in range(steps):
        optimiser.zero_grad()
        loss = sum(
            row_losses(model, item, *draw(model, item, ENGINE, f"train:{step}", range(8)),
                       mask=False).mean()
            for item in items
        ) / len(items)  # fmt: skip
        loss.backward()
        optimiser.step()
    return engine_model_from_module(model.module, model.config)  # hash of the trained weights


@pytest.fixture(scope="module")
def world():
    """(model trained on 6 tracks, the 2 to forget, the 4 to retain, 2 held-out tracks)."""
    items = make_items(8)
    for index, item in enumerate(items):  # conditioning that tells the tracks apart
        item.seconds_start, item.seconds_total = float(index % 3), float(1 + index % 4)
    encoded = encode_items(build_tiny(), items, ENGINE)  # the patched pretransform is fixed
    model = trained_tiny(encoded[:6])
    return model, encoded[:2], encoded[2:6], encoded[6:]


def _fisher(model, items):
    return diagonal_fisher(model, items, ENGINE)


def _weights_bytes(weights):
    return b"".join(
        weights[name].contiguous().view(torch.uint8).numpy().tobytes() for name in sorted(weights)
    )


@pytest.mark.parametrize("method", sorted(METHOD_CONFIGS))
def test_each_method_raises_forget_loss_more_than_it_moves_retain_loss(world, method):
    model, forget_items, retain_items, _ = world
    cfg = METHOD_CONFIGS[method]
    fisher = _fisher(model, forget_items + retain_items) if method == "fisher" else None
    before_forget = set_losses(model, forget_items, ENGINE, THRESHOLDS).mean()
    before_retain = set_losses(model, retain_items, ENGINE, THRESHOLDS).mean()
    weights = forget(model, forget_items, retain_items, ENGINE, cfg, fisher=fisher)
    with parameters_swapped(model, weights):
        after_forget = set_losses(model, forget_items, ENGINE, THRESHOLDS).mean()
        after_retain = set_losses(model, retain_items, ENGINE, THRESHOLDS).mean()
    forget_rise = after_forget / before_forget - 1
    retain_change = abs(after_retain / before_retain - 1)
    assert forget_rise > 0.01, (method, forget_rise)
    assert forget_rise > retain_change, (method, forget_rise, retain_change)
    # the model is left at theta0
    assert set_losses(model, forget_items, ENGINE, THRESHOLDS).mean() == before_forget


def test_resuming_from_a_saved_state_gives_the_same_bytes(world, tmp_path):
    model, forget_items, retain_items, _ = world
    cfg = ForgettingConfig(
        method="gradient_ascent", steps=4, lr=3e-2, timesteps=2, retain_batch=2,
        checkpoint_seconds=0,
    )  # fmt: skip
    whole = forget(model, forget_items, retain_items, ENGINE, cfg, state_path=tmp_path / "a.pt")

    class Interrupted(Exception):
        pass

    def stop_after_two(stage, done, total):
        if done == 2:
            raise Interrupted

    state = tmp_path / "b.pt"
    with pytest.raises(Interrupted):
        forget(model, forget_items, retain_items, ENGINE, cfg, state_path=state,
               progress=stop_after_two)  # fmt: skip
    seen = []
    resumed = forget(
        model, forget_items, retain_items, ENGINE, cfg, state_path=state,
        progress=lambda stage, done, total: seen.append(done),
    )  # fmt: skip
    assert seen == [3, 4]  # it went on from the saved step
    assert _weights_bytes(resumed) == _weights_bytes(whole)
    # a state of another job is not resumed
    other = ForgettingConfig(
        method="gradient_ascent", steps=4, lr=1e-2, timesteps=2, retain_batch=2,
        checkpoint_seconds=0,
    )  # fmt: skip
    seen.clear()
    forget(model, forget_items, retain_items, ENGINE, other, state_path=state,
           progress=lambda stage, done, total: seen.append(done))  # fmt: skip
    assert seen == [1, 2, 3, 4]


def test_the_derived_checkpoint_loads_with_the_unlearned_weights(world, tmp_path):
    from safetensors.torch import save_file

    model, forget_items, retain_items, _ = world
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "model_config.json").write_text(json.dumps(model.config))
    save_file(
        {n: t.contiguous().clone() for n, t in model.module.state_dict().items()},
        str(parent / "model.safetensors"),
    )
    weights = forget(model, forget_items, retain_items, ENGINE, METHOD_CONFIGS["gradient_ascent"])
    manifest = derived_manifest(
        {"seed": 0, "tracks": [
            {"isrc": "A", "audio_path": "audio/a.wav"}, {"isrc": "B", "audio_path": "/x/b.wav"},
        ]},
        parent, {"A"}, {"parent": "p"},
    )  # fmt: skip
    assert [t["isrc"] for t in manifest["tracks"]] == ["B"]
    assert manifest["unlearned_from"] == {"parent": "p"}
    write_checkpoint(model, weights, parent, tmp_path / "derived", manifest)
    derived = load_engine_model(tmp_path / "derived")
    loaded = dict(derived.module.named_parameters())
    for name, value in weights.items():
        assert torch.equal(loaded[name], value), name
    assert derived.checkpoint_sha256 != model.checkpoint_sha256
    assert model.checkpoint_sha256 == state_sha256(model.module, model.config)  # parent intact
    others = set(dict(model.module.named_parameters())) - set(
        target_parameters(model, "all_blocks")
    )
    params = dict(model.module.named_parameters())
    assert all(torch.equal(loaded[n], params[n]) for n in others)


def test_membership_auc_is_the_loss_attack_probability():
    assert membership_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 1.0
    assert membership_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 0.0
    assert membership_auc(np.array([1.0, 3.0]), np.array([2.0, 3.0])) == 0.625
    assert membership_auc(np.array([1.0]), np.array([])) is None


def test_loss_checks_say_what_failed_and_what_cannot_be_measured():
    parent = {
        "forget": np.array([0.1, 0.1]),
        "retain": np.array([0.2]),
        "held_out": np.array([0.3, 0.3]),
    }
    good = {
        "forget": np.array([0.29, 0.31]),
        "retain": np.array([0.201]),
        "held_out": np.array([0.3, 0.3]),
    }
    checks = loss_checks(parent, good, THRESHOLDS)
    assert validation_passed(checks), checks
    weak = {**good, "forget": np.array([0.15, 0.15])}
    checks = loss_checks(parent, weak, THRESHOLDS)
    assert checks["forgetting"]["passed"] is False and checks["membership"]["passed"] is False
    assert not validation_passed(checks)
    broke = {**good, "retain": np.array([0.21])}
    assert loss_checks(parent, broke, THRESHOLDS)["retain_loss"]["passed"] is False
    none = {**good, "held_out": np.array([])}
    checks = loss_checks({**parent, "held_out": np.array([])}, none, THRESHOLDS)
    assert checks["forgetting"]["passed"] is None and "no held-out" in checks["forgetting"]["note"]
    assert not validation_passed(checks)
    retrained = {
        "forget": np.array([0.3, 0.3]),
        "retain": np.array([0.2]),
        "held_out": np.array([0.3, 0.3]),
    }
    checks = loss_checks(parent, good, THRESHOLDS, retrained)
    assert checks["forgetting"]["gap_to_retrained"] == pytest.approx(0.0)
    assert checks["membership"]["retrained"] == 0.5


def test_a_diverged_model_fails_every_check_it_touches_and_stores_as_json():
    parent = {
        "forget": np.array([0.1, 0.1]),
        "retain": np.array([0.2]),
        "held_out": np.array([0.3, 0.3]),
    }
    nan = np.array([np.nan, np.nan])
    diverged = {"forget": nan, "retain": np.array([np.inf]), "held_out": nan}
    checks = loss_checks(parent, diverged, THRESHOLDS, retrained=parent)
    checks["generation_flatness"] = flatness_check([0.2], [float("nan")], THRESHOLDS, [0.2])
    for name in ("forgetting", "retain_loss", "generation_flatness"):
        assert checks[name]["passed"] is False and checks[name]["value"] is None, name
        assert "diverged" in checks[name]["note"]
        assert checks[name]["gap_to_retrained"] is None
    assert checks["membership"]["value"] is None and checks["membership"]["passed"] is False
    assert not validation_passed(checks)
    means = group_means(diverged)
    assert means == {"forget": None, "retain": None, "held_out": None}
    json.dumps({"checks": checks, "means": means}, allow_nan=False)  # what PostgreSQL takes


def test_spectral_flatness_tells_noise_from_a_tone():
    time = torch.arange(4000) / 1000
    tone = torch.sin(2 * torch.pi * 50 * time)[None]
    noise = torch.randn(1, 4000, generator=torch.Generator().manual_seed(0))
    assert spectral_flatness(noise) > 0.5 > 0.05 > spectral_flatness(tone)


def test_bad_settings_and_an_empty_forget_set_are_refused(world):
    model, _, retain_items, _ = world
    with pytest.raises(EngineError, match="method"):
        ForgettingConfig(method="retrain")
    with pytest.raises(EngineError, match="steps"):
        ForgettingConfig(steps=0)
    with pytest.raises(EngineError, match="empty"):
        forget(model, [], retain_items, ENGINE, ForgettingConfig())
    with pytest.raises(EngineError, match="Fisher"):
        forget(model, retain_items[:1], retain_items, ENGINE, ForgettingConfig(method="fisher"))
