"""Bad inputs get EngineError with a readable message, not a traceback."""

import hashlib
import json

import numpy as np
import pytest
import soundfile
import torch

from attribution.engine.checkpoint import load_engine_model
from attribution.engine.errors import EngineError
from attribution.engine.items import (
    QueryItem,
    TrainingSet,
    encode_item,
    load_training_set,
    make_query,
)

from .conftest import SAMPLE_RATE, SAMPLE_SIZE, TINY_CONFIG, build_tiny


def save_checkpoint(folder, model, config):
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_config.json").write_text(json.dumps(config))
    state = {k: v.contiguous().clone() for k, v in model.module.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))


def test_checkpoint_that_does_not_match_its_config(tmp_path, tiny_model):
    save_checkpoint(tmp_path / "good", tiny_model, TINY_CONFIG)
    loaded = load_engine_model(tmp_path / "good")
    assert loaded.checkpoint_sha256 == tiny_model.checkpoint_sha256

    deeper = json.loads(json.dumps(TINY_CONFIG))
    deeper["model"]["diffusion"]["config"]["depth"] = 3
    save_checkpoint(tmp_path / "bad", tiny_model, deeper)
    with pytest.raises(EngineError, match="does not match its model config") as info:
        load_engine_model(tmp_path / "bad")
    assert "Traceback" not in str(info.value)
    with pytest.raises(EngineError, match=r"No model_config\.json"):
        load_engine_model(tmp_path / "missing")


def test_query_longer_than_the_model_maximum(tiny_model, tiny_cfg):
    long_audio = np.random.default_rng(0).normal(size=SAMPLE_SIZE + 1).astype(np.float32) * 0.1
    with pytest.raises(EngineError, match=r"the model takes at most 0\.51 s"):
        make_query(long_audio, SAMPLE_RATE, "a tone", tiny_model)
    query = QueryItem("q", torch.from_numpy(long_audio)[None], "a tone", 0.0, 1.0)
    with pytest.raises(EngineError, match="at most"):
        encode_item(tiny_model, query, tiny_cfg)


@pytest.mark.parametrize(
    ("audio", "message"),
    [
        (np.zeros(300, dtype=np.float32), "silent"),
        (np.full(300, np.nan, dtype=np.float32), "NaN"),
        (np.zeros(0, dtype=np.float32), "no audio samples"),
    ],
)
def test_silent_nan_or_empty_query(tiny_model, audio, message):
    with pytest.raises(EngineError, match=message):
        make_query(audio, SAMPLE_RATE, "a tone", tiny_model)


def test_valid_query_is_conformed_to_the_model(tiny_model):
    stereo_at_double_rate = np.random.default_rng(1).normal(size=(2, 600)).astype(np.float32)
    query = make_query(stereo_at_double_rate, 2 * SAMPLE_RATE, "noise", tiny_model)
    assert query.audio.shape == (1, 300) and query.seconds_total == 1.0


def test_empty_training_set(tmp_path):
    with pytest.raises(EngineError, match="empty"):
        TrainingSet(items=[], manifest_sha256="0" * 64)
    manifest = tmp_path / "training_manifest.json"
    manifest.write_text(json.dumps({"seed": 0, "sample_rate": SAMPLE_RATE, "tracks": []}))
    with pytest.raises(EngineError, match="lists no tracks"):
        load_training_set(manifest, build_tiny())


def test_training_manifest_is_loaded_in_order_and_checked(tmp_path, tiny_model):
    rng = np.random.default_rng(2)
    tracks = []
    for i in range(3):
        path = tmp_path / "audio" / f"t{i}.wav"
        path.parent.mkdir(exist_ok=True)
        soundfile.write(path, rng.normal(size=400).astype(np.float32) * 0.2, SAMPLE_RATE)
        tracks.append(
            {
                "track_id": f"T{i}",
                "isrc": f"XX0000000{i}",
                "audio_path": f"audio/t{i}.wav",
                "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                "caption": f"caption {i}",
                "seconds_start": 0,
                "seconds_total": 1,
            }
        )
    manifest = tmp_path / "training_manifest.json"
    manifest.write_text(json.dumps({"seed": 0, "sample_rate": SAMPLE_RATE, "tracks": tracks}))
    train_set = load_training_set(manifest, tiny_model)
    assert train_set.item_ids == ["T0", "T1", "T2"]
    assert train_set.items[2].prompt == "caption 2" and train_set.items[2].audio.shape == (1, 400)
    assert train_set.manifest_sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest()
    soundfile.write(tmp_path / "audio" / "t1.wav", np.zeros(400, np.float32) + 0.1, SAMPLE_RATE)
    reloaded = load_training_set(manifest, tiny_model)  # reads no audio
    with pytest.raises(EngineError, match="does not match the manifest's sha256"):
        _ = reloaded.items[1].audio
