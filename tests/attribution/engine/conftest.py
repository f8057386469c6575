"""Tiny stable-audio-tools models and training sets for the engine tests (seconds on CPU)."""

import copy
import math

import pytest
import torch

from attribution.engine.checkpoint import engine_model_from_module
from attribution.engine.config import EngineConfig
from attribution.engine.items import TrainingItem, TrainingSet
from tests.attribution.tiny_models import tiny_dit_config

# The CPUs are shared; one intra-op thread avoids contention between test processes.
torch.set_num_threads(1)

SAMPLE_RATE = 1000
SAMPLE_SIZE = 512  # 0.512 s; patch 16 -> 32 latent frames

TINY_CONFIG = tiny_dit_config(sample_rate=SAMPLE_RATE, sample_size=SAMPLE_SIZE, patch_size=16)


def build_tiny(config=None, seed=0):
    from stable_audio_tools.models.factory import create_model_from_config

    config = copy.deepcopy(config or TINY_CONFIG)
    torch.manual_seed(seed)
    module = create_model_from_config(config)
    with torch.no_grad():  # DiT zero-initialises output projections; a trained model has none
        for param in module.model.parameters():
            if not param.any():
                param.normal_(0.0, 0.05)
    return engine_model_from_module(module, config)


@pytest.fixture
def tiny_model():
    return build_tiny()


def make_items(n=6, seed=0, short_every=3):
    """n distinct tones (some shorter than sample_size, so they are padded)."""
    generator = torch.Generator().manual_seed(seed)
    items = []
    for i in range(n):
        length = SAMPLE_SIZE if i % short_every else SAMPLE_SIZE * 5 // 8
        time = torch.arange(length) / SAMPLE_RATE
        freq = 40.0 + 37.0 * i
        audio = 0.5 * torch.sin(2 * math.pi * freq * time) + 0.05 * torch.randn(
            length, generator=generator
        )
        items.append(
            TrainingItem(
                item_id=f"track-{i}",
                audio=audio[None].float(),  # (1, T)
                prompt=f"tone {i}",
                seconds_start=0.0,
                seconds_total=float(math.ceil(length / SAMPLE_RATE)),
            )
        )
    return items


@pytest.fixture
def tiny_train_set():
    return TrainingSet.from_items(make_items())


@pytest.fixture
def tiny_cfg():
    # eta = lr = 1e-4 (1/N absorbed), so tests read the step size off the config directly.
    return EngineConfig(
        unlearn_timesteps=32,
        score_timesteps=4,
        fisher_timesteps=2,
        batch_size=4,
        lr=1e-4,
        lr_times_inverse_n=False,
    )
