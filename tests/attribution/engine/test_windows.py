"""Training tracks longer than the model's window: scored on several keyed windows."""

import math

import numpy as np
import torch

from attribution.engine.artifacts import ArtifactStore
from attribution.engine.items import (
    TrainingItem,
    TrainingSet,
    encode_item,
    query_from_training_item,
    window_offsets,
)
from attribution.engine.loss import draw, item_loss, row_losses
from attribution.engine.methods import unlearning_scores
from tests.attribution.engine.conftest import SAMPLE_RATE, SAMPLE_SIZE, make_items


def long_item(seconds_start: float = 0.0) -> TrainingItem:
    length = int(SAMPLE_SIZE * 2.6)
    time = torch.arange(length) / SAMPLE_RATE
    audio = 0.4 * torch.sin(2 * math.pi * (50 + 30 * time) * time)  # a rising tone
    return TrainingItem("long-track", audio[None].float(), "a long glide", seconds_start, 2.0)


def test_windows_are_one_per_stratum_keyed_and_inside_the_track(tiny_cfg):
    cfg = tiny_cfg.replace(max_windows=3)
    length = int(SAMPLE_SIZE * 2.6)
    offsets = window_offsets(cfg, "long-track", length, SAMPLE_SIZE)
    span = length - SAMPLE_SIZE
    assert len(offsets) == 3
    for index, offset in enumerate(offsets):  # one in each third of the possible crops
        assert index * span / 3 <= offset <= (index + 1) * span / 3
    assert offsets == window_offsets(cfg, "long-track", length, SAMPLE_SIZE)  # keyed
    assert offsets != window_offsets(cfg, "another-track", length, SAMPLE_SIZE)
    assert window_offsets(cfg, "long-track", SAMPLE_SIZE, SAMPLE_SIZE) == [0]  # fits
    assert window_offsets(tiny_cfg, "long-track", length, SAMPLE_SIZE) == [0]  # max_windows 1
    assert len(window_offsets(cfg.replace(max_windows=8), "x", length, SAMPLE_SIZE)) == 3


def test_a_long_track_is_encoded_per_window_with_its_seconds_start(tiny_model, tiny_cfg):
    cfg = tiny_cfg.replace(max_windows=3)
    item = long_item(seconds_start=5.0)  # an excerpt starting 5 s into its recording
    encoded = encode_item(tiny_model, item, cfg)
    assert encoded.window_count == 3
    offsets = window_offsets(cfg, item.item_id, item.audio.shape[-1], SAMPLE_SIZE)
    for index, offset in enumerate(offsets):
        window = encoded.window(index)
        piece = TrainingItem(
            item.item_id,
            item.audio[:, offset : offset + SAMPLE_SIZE],
            item.prompt,
            item.seconds_start + math.floor(offset / SAMPLE_RATE),
            item.seconds_total,
        )
        alone = encode_item(tiny_model, piece, tiny_cfg)
        assert torch.equal(window.latents, alone.latents)
        for key, value in alone.conditioning.items():
            assert torch.equal(window.conditioning[key][0], value[0]), key
    # One window (the default): the track's start, as before.
    first = encode_item(tiny_model, item, tiny_cfg)
    assert first.window_count == 1
    start = TrainingItem(item.item_id, item.audio[:, :SAMPLE_SIZE], item.prompt, 5.0, 2.0)
    assert torch.equal(first.latents, encode_item(tiny_model, start, tiny_cfg).latents)


def test_a_long_tracks_loss_averages_its_windows_block_by_block(tiny_model, tiny_cfg):
    cfg = tiny_cfg.replace(max_windows=3)
    encoded = encode_item(tiny_model, long_item(), cfg)
    timesteps = 7
    t, noise = draw(tiny_model, encoded, cfg, "score", range(timesteps))
    with torch.no_grad():
        by_hand = [
            float(
                row_losses(
                    tiny_model,
                    encoded.window(encoded.window_of(k, timesteps)),
                    t[k : k + 1],
                    noise[k : k + 1],
                    mask=False,
                )[0]
            )
            for k in range(timesteps)
        ]
    with torch.no_grad():
        batched = item_loss(
            tiny_model, encoded, cfg, stream="score", timesteps=timesteps, mask=False
        )
    assert abs(batched - np.mean(by_hand)) < 1e-6 * abs(batched)


def test_stored_windows_round_trip_and_scores_use_them(tmp_path, tiny_model, tiny_cfg):
    cfg = tiny_cfg.replace(max_windows=3)
    train_set = TrainingSet.from_items([*make_items(4), long_item()])
    stored = ArtifactStore(tmp_path).encodings(tiny_model, train_set, cfg)
    memory = encode_item(tiny_model, train_set.items[-1], cfg)
    assert stored[-1].window_count == 3 and stored[0].window_count == 1
    for index in range(3):
        assert torch.equal(stored[-1].window(index).latents, memory.window(index).latents)
    query = query_from_training_item(train_set.items[1])
    windowed = unlearning_scores(tiny_model, query, train_set, cfg, store=ArtifactStore(tmp_path))
    first_only = unlearning_scores(tiny_model, query, train_set, tiny_cfg)
    assert windowed.tau[-1] != first_only.tau[-1]  # the long track is scored on its windows
    assert "max_windows" in cfg.scoring_key() and "max_windows" not in tiny_cfg.scoring_key()


def test_each_window_gets_a_block_of_draws_spread_over_every_noise_level(tiny_model, tiny_cfg):
    """Four windows, 32 Sobol draws: each window's eight timesteps fall one in each eighth of
    [0, 1), not in a half of it (what dealing the draws out k mod 4 would give)."""
    from attribution.engine.loss import sobol_points

    cfg = tiny_cfg.replace(max_windows=4)
    item = TrainingItem("four-windows", long_item().audio.repeat(1, 2), "a long glide", 0, 4)
    encoded = encode_item(tiny_model, item, cfg)
    assert encoded.window_count == 4
    t = sobol_points(cfg.seed, "score", item.item_id, range(32))
    for window in range(4):
        draws = [k for k in range(32) if encoded.window_of(k, 32) == window]
        assert len(draws) == 8
        assert sorted(int(t[k] * 8) for k in draws) == list(range(8))
    assert [encoded.window_of(k, 3) for k in range(3)] == [0, 1, 2]  # fewer draws: last has none
