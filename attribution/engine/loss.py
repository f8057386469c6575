"""The diffusion training loss L(z, theta), mirrored from stable-audio-tools (Sec. 2, Eq. 1-2).

For an encoded item z (latents x, conditioning c) and one draw (t, noise):
    alpha, sigma = cos(t pi/2), sin(t pi/2)          (v-objective; rectified flow: 1-t, t)
    x_t = alpha x + sigma noise
    target = alpha noise - sigma x                   (v; rectified flow: noise - x)
    L_t(z, theta) = mean over channels and latent frames of (model(x_t, t, c) - target)^2
exactly as `DiffusionCondTrainingWrapper.training_step` computes it, with the same conditioning
(prompt, seconds_start, seconds_total), the training config's timestep sampler, distribution
shift and `p_one_shot`, and no classifier-free-guidance dropout (cfg_dropout_prob = 0). The
optional padding mask takes the mean over the item's own non-padded latent frames (per item,
never pooled across a batch). L(z, theta) = (1/T) sum_t L_t(z, theta) (Sec. 2.1, last line).

Draws are keyed by (seed, stream, item id, timestep index) (see randomness.py), so L(z, theta0)
and L(z, theta') use the same (t, noise) for every item: common random numbers.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import EncodedItem
from attribution.engine.randomness import keyed_generator, stable_seed

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def sample_t(
    model: EngineModel, generator: torch.Generator, uniform: torch.Tensor | None = None
) -> torch.Tensor:
    """One training timestep t, shape (1,), from the training config's sampler.

    Mirrors training/diffusion.py: "uniform" (training takes it from a scrambled Sobol
    sequence: pass that point as `uniform`, shape (1,); without it, t is drawn i.i.d. from
    `generator`), "logit_normal", "trunc_logit_normal" (then flipped, t = 1 - t) and "log_snr";
    then `p_one_shot` and the distribution shift.
    """
    sampler = model.timestep_sampler
    options = model.timestep_sampler_options
    if sampler == "uniform":
        t = uniform if uniform is not None else torch.rand(1, generator=generator)
    elif sampler == "logit_normal":
        t = torch.sigmoid(torch.randn(1, generator=generator))
    elif sampler == "trunc_logit_normal":
        # truncated_logistic_normal_rescaled(left_trunc=0.075, right_trunc=1), then 1 - t
        normal = torch.distributions.Normal(0.0, 1.0)
        left, right = 0.075, 1.0
        cdf = normal.cdf(torch.randn(1, generator=generator))
        lower = normal.cdf(torch.logit(torch.tensor(left)))
        upper = normal.cdf(torch.logit(torch.tensor(right)))
        samples = torch.sigmoid(normal.icdf(lower + (upper - lower) * cdf))
        t = 1 - (samples - left) / (right - left)
    elif sampler == "log_snr":
        mean = options.get("mean_logsnr", -1.2)
        std = options.get("std_logsnr", 2.0)
        logsnr = torch.randn(1, generator=generator) * std + mean
        t = torch.sigmoid(-logsnr).clamp(1e-4, 1 - 1e-4)
    else:  # validated when the model was wrapped
        raise AssertionError(sampler)
    dist_shift = getattr(model.module, "dist_shift", None)
    if dist_shift is not None:
        # training shifts with reals.shape[2]: the padded audio length (not pre-encoded)
        t = dist_shift.time_shift(t, model.sample_size)
    if model.p_one_shot > 0:
        u = torch.rand(1, generator=generator)
        t = torch.where(u < model.p_one_shot, torch.ones_like(t), t)
    return t.float()


def sobol_points(seed: int, stream: str, item_id: str, indices: range) -> torch.Tensor:
    """Points `indices` of the scrambled Sobol sequence of one (stream, item), shape (K,).

    Training draws its uniform timesteps from a scrambled Sobol sequence
    (`torch.quasirandom.SobolEngine(1, scramble=True)`); each (stream, item) gets its own, with
    the scramble seeded by (seed, stream, item id), so point k does not depend on which other
    points are drawn, how many, or in what batches. The first 2^m points of the sequence put
    one point in each of 2^m equal intervals of [0, 1).
    """
    engine = torch.quasirandom.SobolEngine(
        1, scramble=True, seed=stable_seed(seed, f"{stream}:sobol", item_id, 0)
    )
    if indices.start > 0:
        engine.fast_forward(indices.start)
    return engine.draw(len(indices), dtype=torch.float64)[:, 0].float()  # (K,)


def draw(
    model: EngineModel, item: EncodedItem, cfg: EngineConfig, stream: str, indices: range
) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, noise) for timestep indices of one item: shapes (K,) and (K, C_lat, L), on cfg.device."""
    sobol = None
    if cfg.timestep_sequence == "sobol" and model.timestep_sampler == "uniform":
        sobol = sobol_points(cfg.seed, stream, item.item_id, indices)  # (K,)
    ts, noises = [], []
    for k, index in enumerate(indices):
        generator = keyed_generator(cfg.seed, stream, item.item_id, index)
        uniform = None if sobol is None else sobol[k : k + 1]  # (1,)
        ts.append(sample_t(model, generator, uniform))  # (1,)
        noises.append(torch.randn(item.latents.shape, generator=generator))  # (C_lat, L)
    t = torch.cat(ts).to(cfg.device)  # (K,)
    noise = torch.stack(noises).to(cfg.device)  # (K, C_lat, L)
    return t, noise


def alphas_sigmas(objective: str, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise schedule of training: v -> (cos(t pi/2), sin(t pi/2)); rectified flow -> (1-t, t)."""
    if objective == "v":
        return torch.cos(t * math.pi / 2), torch.sin(t * math.pi / 2)
    return 1 - t, t


def expand_conditioning(conditioning: dict[str, Any], rows: int) -> dict[str, Any]:
    """Repeat one item's cached conditioner output (batch 1) to `rows` rows."""

    def expand(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.expand(rows, *value.shape[1:])  # (rows, ...)
        if isinstance(value, list | tuple):
            return type(value)(expand(v) for v in value)
        return value

    return {key: expand(value) for key, value in conditioning.items()}


def no_activation_checkpointing(module: torch.nn.Module) -> bool:
    """Whether the DiT's transformer is stable-audio-tools' ContinuousTransformer (which takes
    `use_checkpointing`)."""
    from stable_audio_tools.models.transformer import ContinuousTransformer

    transformer = getattr(
        getattr(getattr(module, "model", None), "model", None), "transformer", None
    )
    return isinstance(transformer, ContinuousTransformer)


def model_output(
    model: EngineModel,
    item: EncodedItem,
    t: torch.Tensor,
    noise: torch.Tensor,
    *,
    activation_checkpointing: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's prediction on K noised copies of one item (one window) and the training
    target it is regressed on (Sec. 2, the v-objective): shapes (K, C, L) and (K, C, L)."""
    module = model.module
    rows = t.shape[0]
    x = item.latents[None]  # (1, C, L)
    alpha, sigma = alphas_sigmas(module.diffusion_objective, t)
    alpha, sigma = alpha[:, None, None], sigma[:, None, None]  # (K, 1, 1)
    noised = x * alpha + noise * sigma  # (K, C, L)
    v_objective = module.diffusion_objective == "v"
    target = noise * alpha - x * sigma if v_objective else noise - x  # (K, C, L)
    extra: dict[str, Any] = {}
    if no_activation_checkpointing(module):
        # stable-audio-tools recomputes each block in backward to save memory; the values are
        # the same either way, so by default the engine keeps the activations (faster)
        extra["use_checkpointing"] = activation_checkpointing
    if model.attention_padding_mask:  # training passed the padding mask to the transformer
        extra["mask"] = item.padding_mask[None].expand(rows, -1)  # (K, L)
    output = module(
        noised, t, cond=expand_conditioning(item.conditioning, rows), cfg_dropout_prob=0.0, **extra
    )  # (K, C, L)
    return output, target


def row_losses(
    model: EngineModel,
    item: EncodedItem,
    t: torch.Tensor,
    noise: torch.Tensor,
    *,
    mask: bool,
    activation_checkpointing: bool = False,
    indices: range | None = None,
    timesteps: int | None = None,
) -> torch.Tensor:
    """L_t(z, theta) for K draws of one item, shape (K,) (Sec. 2, the v-objective of training).

    With `mask`, the mean runs over the item's non-padded latent frames only (M_U / M_L, Sec. 2.3).
    `indices` are the draws' indices among `timesteps`: an item seen through several windows
    takes each draw on its window (EncodedItem.window_of), each window's rows in one forward
    pass.
    """
    if indices is not None and timesteps is not None and item.window_count > 1:
        # windows take consecutive blocks of draws, so each window's rows are one run here
        pieces, start = [], 0
        for window, run in itertools.groupby(item.window_of(i, timesteps) for i in indices):
            stop = start + len(list(run))
            window_losses = row_losses(
                model, item.window(window), t[start:stop], noise[start:stop], mask=mask,
                activation_checkpointing=activation_checkpointing,
            )  # fmt: skip
            pieces.append(window_losses)  # (stop - start,)
            start = stop
        return torch.cat(pieces)  # (K,) in draw order
    output, target = model_output(
        model, item, t, noise, activation_checkpointing=activation_checkpointing
    )  # (K, C, L) each
    squared = (output - target) ** 2  # (K, C, L)
    if not mask:
        return squared.mean(dim=(1, 2))  # (K,)
    frames = item.padding_mask.to(squared.dtype)  # (L,)
    count = frames.sum() * squared.shape[1]  # non-padded frames x channels
    return (squared * frames).sum(dim=(1, 2)) / count  # (K,)


def chunks(total: int, size: int) -> Iterator[range]:
    for start in range(0, total, size):
        yield range(start, min(start + size, total))


def item_loss(
    model: EngineModel,
    item: EncodedItem,
    cfg: EngineConfig,
    *,
    stream: str,
    timesteps: int,
    mask: bool,
) -> float:
    """L(z, theta) = (1/T) sum_t L_t(z, theta) (Sec. 2.1), without gradients, as a float64."""
    per_draw = []
    with torch.no_grad():
        for indices in chunks(timesteps, cfg.batch_size):
            t, noise = draw(model, item, cfg, stream, indices)
            losses = row_losses(
                model, item, t, noise, mask=mask, indices=indices, timesteps=timesteps
            )  # (K,)
            per_draw.append(losses.double().cpu())
    # summed in timestep order, in float64, whatever the chunking
    return float(torch.cat(per_draw).sum()) / timesteps  # (T,) -> scalar


def dataset_losses(
    model: EngineModel,
    items: list[EncodedItem],
    cfg: EngineConfig,
    progress: Progress | None = None,
    *,
    stream: str = "score",
) -> np.ndarray:
    """L(z_i, theta) for every item (the two terms of Eq. 2), shape (N,), float64.

    Uses cfg.score_timesteps draws per item and the loss mask M_L when cfg.loss_mask.
    """
    losses = np.empty(len(items), dtype=np.float64)
    for position, item in enumerate(items):
        losses[position] = item_loss(
            model, item, cfg, stream=stream, timesteps=cfg.score_timesteps, mask=cfg.loss_mask
        )
        if progress is not None:
            progress("losses", position + 1, len(items))
    return losses
