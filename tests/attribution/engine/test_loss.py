"""Eq. 2 losses: the training v-objective, masks, keyed draws (common random numbers)."""

import math

import torch

from attribution.engine.items import encode_item, encode_items
from attribution.engine.loss import dataset_losses, draw, item_loss, row_losses, sobol_points
from attribution.engine.randomness import keyed_generator


def hand_v_loss(model, item, audio, t, noise, mask_frames=None):
    """The v-objective written out by hand, from the raw audio (patched pretransform)."""
    padded = torch.zeros(1, 1, model.sample_size)
    padded[..., : audio.shape[-1]] = audio
    # patched pretransform: (1, 1, L*16) -> (1, 16, L), sample h of patch l -> channel h
    x = padded.reshape(1, 1, -1, 16).permute(0, 1, 3, 2).reshape(1, 16, -1)  # (1, 16, L)
    alpha = torch.cos(t * math.pi / 2)[:, None, None]
    sigma = torch.sin(t * math.pi / 2)[:, None, None]
    cond = model.module.conditioner(
        [{"seconds_start": item.seconds_start, "seconds_total": item.seconds_total}] * len(t),
        "cpu",
    )
    out = model.module(x * alpha + noise * sigma, t, cond=cond, cfg_dropout_prob=0.0)
    err = (out - (noise * alpha - x * sigma)) ** 2  # (K, 16, L)
    if mask_frames is None:
        return err.mean(dim=(1, 2))
    return err[:, :, :mask_frames].mean(dim=(1, 2))


def test_loss_equals_hand_computed_v_objective(tiny_model, tiny_train_set, tiny_cfg):
    item = tiny_train_set.items[0]  # 320 of 512 samples: padded to 20 of 32 latent frames
    assert item.audio.shape[-1] == 320
    encoded = encode_item(tiny_model, item, tiny_cfg)
    assert encoded.latents.shape == (16, 32)
    assert int(encoded.padding_mask.sum()) == 20
    t, noise = draw(tiny_model, encoded, tiny_cfg, "score", range(4))
    with torch.no_grad():
        ours = row_losses(tiny_model, encoded, t, noise, mask=False)
        ours_masked = row_losses(tiny_model, encoded, t, noise, mask=True)
        hand = hand_v_loss(tiny_model, item, item.audio, t, noise)
        hand_masked = hand_v_loss(tiny_model, item, item.audio, t, noise, mask_frames=20)
    torch.testing.assert_close(ours, hand, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(ours_masked, hand_masked, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(ours, ours_masked)
    # L(z) is the mean of L_t over the T draws (Sec. 2.1)
    assert math.isclose(
        item_loss(tiny_model, encoded, tiny_cfg, stream="score", timesteps=4, mask=False),
        float(hand.double().mean()),
        rel_tol=1e-6,
    )


def test_draws_are_keyed_by_item_and_timestep_index(tiny_model, tiny_train_set, tiny_cfg):
    encoded = encode_item(tiny_model, tiny_train_set.items[1], tiny_cfg)
    t_all, noise_all = draw(tiny_model, encoded, tiny_cfg, "score", range(6))
    t_tail, noise_tail = draw(tiny_model, encoded, tiny_cfg, "score", range(3, 6))
    assert torch.equal(t_all[3:], t_tail) and torch.equal(noise_all[3:], noise_tail)
    # uniform t: point 2 of the item's own scrambled Sobol sequence; noise from its generator
    assert tiny_cfg.timestep_sequence == "sobol"
    assert torch.equal(
        t_all[2:3], sobol_points(tiny_cfg.seed, "score", encoded.item_id, range(2, 3))
    )
    generator = keyed_generator(tiny_cfg.seed, "score", encoded.item_id, 2)
    assert torch.equal(noise_all[2], torch.randn(encoded.latents.shape, generator=generator))
    other = encode_item(tiny_model, tiny_train_set.items[2], tiny_cfg)
    assert not torch.equal(draw(tiny_model, other, tiny_cfg, "score", range(6))[0], t_all)
    assert not torch.equal(draw(tiny_model, encoded, tiny_cfg, "unlearn", range(6))[0], t_all)
    # i.i.d.: t then noise from the item's own generator
    iid = tiny_cfg.replace(timestep_sequence="iid")
    t_iid, noise_iid = draw(tiny_model, encoded, iid, "score", range(6))
    generator = keyed_generator(tiny_cfg.seed, "score", encoded.item_id, 2)
    assert torch.equal(t_iid[2:3], torch.rand(1, generator=generator))
    assert torch.equal(noise_iid[2], torch.randn(encoded.latents.shape, generator=generator))
    assert torch.equal(draw(tiny_model, encoded, iid, "score", range(3, 6))[0], t_iid[3:])


def test_sobol_timesteps_are_stratified(tiny_model, tiny_train_set, tiny_cfg):
    """The first 2^m draws of an item put one t in each of 2^m equal intervals, as the scrambled
    Sobol sequence of training does; i.i.d. draws almost never do."""
    encoded = encode_item(tiny_model, tiny_train_set.items[0], tiny_cfg)
    for m in (2, 4, 6):
        t, _ = draw(tiny_model, encoded, tiny_cfg, "score", range(2**m))
        assert bool(((t >= 0) & (t < 1)).all())
        assert sorted((t * 2**m).floor().long().tolist()) == list(range(2**m))
    t_iid, _ = draw(
        tiny_model, encoded, tiny_cfg.replace(timestep_sequence="iid"), "fisher", range(64)
    )
    assert len(set((t_iid * 64).floor().long().tolist())) < 64


def test_losses_do_not_depend_on_batch_size_or_order(tiny_model, tiny_train_set, tiny_cfg):
    items = encode_items(tiny_model, tiny_train_set.items, tiny_cfg)
    cfg = tiny_cfg.replace(score_timesteps=6, batch_size=6)
    reference = dataset_losses(tiny_model, items, cfg)
    # order and sharding: exactly the same numbers
    reversed_losses = dataset_losses(tiny_model, items[::-1], cfg)[::-1]
    shards = [
        dataset_losses(tiny_model, items[:2], cfg),
        dataset_losses(tiny_model, items[2:], cfg),
    ]
    assert reversed_losses.tobytes() == reference.tobytes()
    assert list(reference) == [*shards[0], *shards[1]]
    # batch size changes only floating-point reassociation inside the forward pass
    for batch_size in (1, 4):
        other = dataset_losses(tiny_model, items, cfg.replace(batch_size=batch_size))
        assert abs(other - reference).max() <= 1e-6 * abs(reference).max()
