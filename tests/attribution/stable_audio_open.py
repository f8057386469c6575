"""Stable Audio Open 1.0 as published (its model_config.json), cut down only where a test
needs it, with a randomly initialised T5 encoder written the way a local copy of t5-base is
laid out (config.json, model.safetensors, tokenizer.json): nothing is downloaded."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

T5_NAME = "t5-base"

# stabilityai/stable-audio-open-1.0, model_config.json (the sections the model is built from).
STABLE_AUDIO_OPEN_1_0: dict = {
    "model_type": "diffusion_cond",
    "sample_size": 2097152,
    "sample_rate": 44100,
    "audio_channels": 2,
    "model": {
        "pretransform": {
            "type": "autoencoder",
            "iterate_batch": True,
            "config": {
                "encoder": {
                    "type": "oobleck",
                    "config": {
                        "in_channels": 2,
                        "channels": 128,
                        "c_mults": [1, 2, 4, 8, 16],
                        "strides": [2, 4, 4, 8, 8],
                        "latent_dim": 128,
                        "use_snake": True,
                    },
                },
                "decoder": {
                    "type": "oobleck",
                    "config": {
                        "out_channels": 2,
                        "channels": 128,
                        "c_mults": [1, 2, 4, 8, 16],
                        "strides": [2, 4, 4, 8, 8],
                        "latent_dim": 64,
                        "use_snake": True,
                        "final_tanh": False,
                    },
                },
                "bottleneck": {"type": "vae"},
                "latent_dim": 64,
                "downsampling_ratio": 2048,
                "io_channels": 2,
            },
        },
        "conditioning": {
            "configs": [
                {
                    "id": "prompt",
                    "type": "t5",
                    "config": {"t5_model_name": T5_NAME, "max_length": 128},
                },
                {
                    "id": "seconds_start",
                    "type": "number",
                    "config": {"min_val": 0, "max_val": 512},
                },
                {
                    "id": "seconds_total",
                    "type": "number",
                    "config": {"min_val": 0, "max_val": 512},
                },
            ],
            "cond_dim": 768,
        },
        "diffusion": {
            "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
            "global_cond_ids": ["seconds_start", "seconds_total"],
            "type": "dit",
            "config": {
                "io_channels": 64,
                "embed_dim": 1536,
                "depth": 24,
                "num_heads": 24,
                "cond_token_dim": 768,
                "global_cond_dim": 1536,
                "project_cond_tokens": False,
                "transformer_type": "continuous_transformer",
            },
        },
        "io_channels": 64,
    },
    "training": {"use_ema": True, "log_loss_info": False},
}


def stable_audio_open_config(*, depth: int = 24, sample_size: int | None = None) -> dict:
    """The published config with the DiT cut to ``depth`` blocks and, where given, a shorter
    window (a multiple of the VAE's 2048-sample downsampling)."""
    config = copy.deepcopy(STABLE_AUDIO_OPEN_1_0)
    config["model"]["diffusion"]["config"]["depth"] = depth
    if sample_size is not None:
        assert sample_size % 2048 == 0, sample_size
        config["sample_size"] = sample_size
    return config


WORDS = [
    "a",
    "an",
    "the",
    "and",
    "of",
    "with",
    "in",
    "on",
    "for",
    "solo",
    "slow",
    "fast",
    "bright",
    "dark",
    "soft",
    "loud",
    "tone",
    "chord",
    "song",
    "piano",
    "organ",
    "guitar",
    "violin",
    "cello",
    "flute",
    "choir",
    "drums",
    "bass",
    "strings",
    "brass",
    "reel",
    "chorale",
    "mass",
    "tin",
    "whistle",
    "church",
    "quartet",
    "minor",
    "major",
    "stereo",
]


def write_t5_encoder(
    folder: Path, *, seed: int = 0, num_layers: int = 1, d_ff: int = 512, vocab_size: int = 0
) -> Path:
    """A T5 encoder of t5-base's width (d_model 768) with random weights and a word-level
    tokenizer, saved as a local copy of t5-base is (``save_pretrained``). t5-base itself has
    num_layers 12, d_ff 3072 and a vocabulary of 32,128 (``vocab_size``; the word-level
    tokenizer uses the first ids)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, T5Config, T5EncoderModel

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for word in WORDS:
        vocab.setdefault(word, len(vocab))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    ).save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=max(vocab_size, len(vocab)),
        d_model=768,
        d_kv=64,
        d_ff=d_ff,
        num_layers=num_layers,
        num_heads=12,
        pad_token_id=0,
        eos_token_id=1,
    )
    T5EncoderModel(config).save_pretrained(str(folder))
    return folder


def write_checkpoint(folder: Path, config: dict, module: torch.nn.Module) -> Path:
    """``model_config.json`` and ``model.safetensors`` with the model wrapper's names, the
    layout of the published release."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.contiguous().clone() for name, tensor in module.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    (folder / "model_config.json").write_text(json.dumps(config, indent=2))
    return folder


def build_random_model(config: dict, encoders: Path, *, seed: int = 0) -> torch.nn.Module:
    """The model a config describes with random weights (``seed``), its T5 read from
    ``encoders``. The DiT zero-initialises its output projections, which a trained model does
    not have (its gradients would vanish there), so those get small random values too."""
    from attribution.engine.loading import build_model

    torch.manual_seed(seed)
    module = build_model(config, text_encoder_dirs=[encoders])
    with torch.no_grad():
        for param in module.model.parameters():
            if not param.any():
                param.normal_(0.0, 0.02)
    return module


def stereo_tone(index: int, seconds: float, sample_rate: int = 44100) -> np.ndarray:
    """(T, 2): the test tone of the attribution tests at ``sample_rate``, its right channel a
    little quieter and delayed."""
    from tests.attribution.conftest import tone

    left = tone(index, seconds, sample_rate)
    right = 0.8 * np.roll(left, 37)
    return np.stack([left, right], axis=1)
