"""The whole build on a tiny model: manifest determinism for a seed, reuse by content hashes."""

import json

import pytest

from demo.world import build, world
from tests.demo.world.helpers import TINY_ARCH


@pytest.fixture(scope="module")
def score_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("score-cache")


def _world(root, score_cache, steps=1):
    root.mkdir(parents=True, exist_ok=True)
    if not (root / "cache").exists():
        (root / "cache").symlink_to(score_cache, target_is_directory=True)
    cfg = world.WorldConfig(
        root=root, tracks=3, heldout=1, seed=3, train_steps=steps, arch=TINY_ARCH, batch_size=2
    )
    return world.build_world(cfg)


def _manifest_without_time(path):
    data = json.loads(path.read_text())
    data.pop("created_at")
    return data


def test_training_manifest_and_weights_are_fixed_by_the_seed(tmp_path, score_cache):
    a = _world(tmp_path / "a", score_cache)
    b = _world(tmp_path / "b", score_cache)
    ma = _manifest_without_time(tmp_path / "a" / "model" / "training_manifest.json")
    assert ma == _manifest_without_time(tmp_path / "b" / "model" / "training_manifest.json")
    assert ma["seed"] == 3 and ma["sample_rate"] == 16000 and len(ma["tracks"]) == 3
    first = ma["tracks"][0]
    assert first["audio_path"].startswith("../catalog/audio/")
    audio = tmp_path / "a" / "model" / first["audio_path"]
    assert build.sha256_file(audio) == first["sha256"]
    for name in ("model.safetensors", "model_config.json"):
        assert (tmp_path / "a" / "model" / name).read_bytes() == (
            tmp_path / "b" / "model" / name
        ).read_bytes()
    config = json.loads((tmp_path / "a" / "model" / "model_config.json").read_text())
    assert config["training"]["timestep_sampler"] == "uniform" and config["training"]["seed"] == 3
    assert (tmp_path / "a" / "model" / "loss_curve.png").stat().st_size > 1000
    assert (
        a.report["eval_loss_heldout_tracks"] is not None
        and not a.model_reused
        and not b.model_reused
    )


def test_a_second_build_reuses_the_model_unless_a_file_changed(tmp_path, score_cache):
    root = tmp_path / "c"
    _world(root, score_cache)
    again = _world(root, score_cache)
    assert again.catalog_reused and again.model_reused
    weights = root / "model" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x00")
    rebuilt = _world(root, score_cache)
    assert rebuilt.catalog_reused and not rebuilt.model_reused
    more_steps = _world(root, score_cache, steps=2)
    assert not more_steps.model_reused


def test_gap_standard_error_is_welch_and_the_summary_states_it():
    from demo.world.world import gap_standard_error, summary_lines

    train, heldout = [1.0, 2.0, 3.0], [2.0, 4.0]
    # var(train)/3 + var(heldout)/2 = 1/3 + 2/2
    assert gap_standard_error(train, heldout) == pytest.approx((1 / 3 + 1) ** 0.5)
    assert gap_standard_error([1.0], heldout) is None
    report = {
        "loss_first_20_steps": 0.5,
        "loss_last_20_steps": 0.1,
        "eval_timesteps": [0.5],
        "eval_loss_train_tracks": 2.0,
        "eval_loss_heldout_tracks": 3.0,
        "eval_loss_per_train_track": dict(zip("abc", train, strict=True)),
        "eval_loss_per_heldout_track": dict(zip("de", heldout, strict=True)),
    }
    lines = summary_lines(report)
    assert lines[-1].startswith("held-out - train = +1.0000 +- 1.1547")
