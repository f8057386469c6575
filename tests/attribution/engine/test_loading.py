"""Checkpoint round trip through stable-audio-tools' factory, and clear refusals."""

import json

import pytest
import torch

from attribution.engine.loading import CheckpointError, build_model, load_model
from demo.world.training import save_checkpoint
from tests.demo.world.helpers import tiny_config


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    config = tiny_config()
    model = build_model(config)
    folder = tmp_path_factory.mktemp("ckpt")
    save_checkpoint(model, config, folder)
    return model, config, folder


def test_round_trip_gives_the_same_weights_and_outputs(saved):
    model, config, folder = saved
    loaded, loaded_config = load_model(folder)
    assert loaded_config == config
    assert not loaded.training
    original = model.state_dict()
    for k, v in loaded.state_dict().items():
        assert torch.equal(v, original[k]), k
    # the frozen MiniLM encoder is not part of the checkpoint
    assert not any(k.startswith("conditioner.conditioners.prompt.model") for k in original)
    metadata = [{"prompt": "a chorale on the organ", "seconds_start": 0, "seconds_total": 1}]
    x = torch.randn(1, model.io_channels, 64)  # (B, C, L)
    t = torch.tensor([0.5])
    model.eval()
    with torch.no_grad():
        a = model(x, t, cond=model.conditioner(metadata, "cpu"), cfg_dropout_prob=0.0)
        b = loaded(x, t, cond=loaded.conditioner(metadata, "cpu"), cfg_dropout_prob=0.0)
    assert torch.allclose(a, b)


def test_the_loaded_model_accepts_stable_audio_tools_state_dict_naming(saved):
    _, _, folder = saved
    from safetensors.torch import load_file
    from stable_audio_tools.models.factory import create_model_from_config

    keys = set(load_file(str(folder / "model.safetensors")))
    assert any(k.startswith("model.model.transformer.") for k in keys)
    # A standard-conditioner config (as in a real Stable Audio checkpoint) goes straight
    # through stable-audio-tools' factory.
    config = json.loads((folder / "model_config.json").read_text())
    config["model"]["conditioning"]["configs"] = config["model"]["conditioning"]["configs"][1:]
    config["model"]["diffusion"]["cross_attention_cond_ids"] = ["seconds_start", "seconds_total"]
    # ... and so does one of its own pretransforms in place of the log_mel one, which adds
    # nothing to the state dict.
    hop = config["model"]["pretransform"]["config"]["hop_length"]
    config["model"]["pretransform"] = {
        "type": "patched",
        "config": {"channels": 1, "patch_size": hop},
    }
    assert (
        build_model(config).state_dict().keys()
        == create_model_from_config(config).state_dict().keys()
    )


def test_missing_or_broken_checkpoints_are_refused_clearly(saved, tmp_path):
    _, config, _ = saved
    with pytest.raises(CheckpointError, match="is not a directory"):
        load_model(tmp_path / "nope")
    with pytest.raises(CheckpointError, match=r"has no model_config\.json"):
        load_model(tmp_path)
    (tmp_path / "model_config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(tmp_path)
    (tmp_path / "model_config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="has no weights file"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_model(tmp_path)


def test_weights_that_do_not_match_the_config_are_refused(saved, tmp_path):
    _, config, folder = saved
    bigger = json.loads(json.dumps(config))
    bigger["model"]["diffusion"]["config"]["depth"] = 2
    (tmp_path / "model_config.json").write_text(json.dumps(bigger))
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match=r"does not match model_config\.json: .*missing"):
        load_model(tmp_path)


@pytest.mark.parametrize("prefix", ["", "diffusion."])
def test_a_ckpt_with_a_state_dict_loads_as_stable_audio_tools_reads_it(saved, tmp_path, prefix):
    """A release's ``model.ckpt`` ({"state_dict": ...}), or a training checkpoint whose
    weights sit under the training wrapper's ``diffusion.`` (beside its optimiser state)."""
    model, config, _ = saved
    state = {prefix + name: tensor for name, tensor in model.state_dict().items()}
    if prefix:
        state["diffusion_ema.ema_model.unused"] = torch.zeros(1)  # left out
    torch.save({"state_dict": state, "epoch": 3}, tmp_path / "model.ckpt")
    (tmp_path / "model_config.json").write_text(json.dumps(config))
    loaded, _ = load_model(tmp_path)
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_the_weights_file_named_is_the_one_read(saved, tmp_path):
    """A registration hashes one file; the worker must read that one even if the folder
    also holds the other format."""
    model, config, folder = saved
    (tmp_path / "model_config.json").write_text(json.dumps(config))
    (tmp_path / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes())
    other = {name: tensor + 1.0 for name, tensor in model.state_dict().items()}
    torch.save({"state_dict": other}, tmp_path / "model.ckpt")
    default, _ = load_model(tmp_path)
    named, _ = load_model(tmp_path, weights_file=tmp_path / "model.ckpt")
    name = next(iter(other))
    assert torch.equal(default.state_dict()[name], model.state_dict()[name])
    assert torch.equal(named.state_dict()[name], other[name])
    with pytest.raises(CheckpointError, match="is not a file"):
        load_model(tmp_path, weights_file=tmp_path / "missing.ckpt")
