"""Diagonal Fisher information of the training loss (Sec. 2.2).

    F_jj = (1/N) sum_i (1/T) sum_t ( dL_t(z_i, theta0) / d theta_j )^2

Per-sample squares: each (item, timestep) draw gets its own backward pass and its gradient is
squared before averaging (never the square of a batch mean). The loss is the training loss
without masks (the model was trained without them, Sec. 2.3). Draws come from the "fisher"
stream, keyed by (item id, timestep index). The Fisher is computed for every weight of every
transformer block (the union of all target-layer choices, see `target_parameters`).

`accumulate_fisher` adds the squared gradients of a range of items into running float64 sums,
in item order, so a computation split into chunks (and resumed after an interruption, see
artifacts.py) gives bit-identical sums to one done in a single pass.
"""

from __future__ import annotations

import torch

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.items import EncodedItem
from attribution.engine.loss import Progress, draw, row_losses

BLOCKS = ".transformer.layers."
TARGET_PATTERNS = {
    "all_blocks": BLOCKS,
    "self_attn": ".self_attn.",
    "cross_attn": ".cross_attn.",
    "cross_attn_to_kv": ".cross_attn.to_kv.",
}


def block_parameters(model: EngineModel) -> dict[str, torch.nn.Parameter]:
    """Every parameter inside the DiT's transformer blocks (`model.model.transformer.layers`)."""
    found = {
        name: param
        for name, param in model.module.named_parameters()
        if BLOCKS in name and not name.startswith("conditioner.")
    }
    if not found:
        raise EngineError("The model has no transformer blocks (model.model.transformer.layers).")
    return found


def target_parameters(model: EngineModel, target_layers: str) -> dict[str, torch.nn.Parameter]:
    """The weights Eq. 6 changes for a target-layer choice (Table 1 rows)."""
    pattern = TARGET_PATTERNS[target_layers]
    found = {name: p for name, p in block_parameters(model).items() if pattern in name}
    if not found:
        raise EngineError(f"The model has no '{target_layers}' weights to unlearn.")
    return found


def add_squared_gradients(
    model: EngineModel,
    item: EncodedItem,
    cfg: EngineConfig,
    params: dict[str, torch.nn.Parameter],
    sums: dict[str, torch.Tensor],
) -> None:
    """Add sum_t (dL_t(z, theta)/d theta)^2 over cfg.fisher_timesteps draws of one item
    (Sec. 2.2) into the float64 running `sums`, draw by draw (no second buffer of p float64
    numbers: at a billion weights each costs 8 GB)."""
    names = list(params)
    tensors = [params[name] for name in names]
    t_all, noise_all = draw(model, item, cfg, "fisher", range(cfg.fisher_timesteps))
    for k in range(cfg.fisher_timesteps):
        # one draw per backward pass: a per-sample gradient, squared before any averaging
        loss = row_losses(
            model, item, t_all[k : k + 1], noise_all[k : k + 1], mask=False,
            activation_checkpointing=cfg.activation_checkpointing, indices=range(k, k + 1),
            timesteps=cfg.fisher_timesteps,
        )[0]  # fmt: skip
        grads = torch.autograd.grad(loss, tensors, allow_unused=True)
        for name, grad in zip(names, grads, strict=True):
            if grad is not None:
                sums[name] += grad.double() ** 2
        del grads


def accumulate_fisher(
    model: EngineModel,
    items: list[EncodedItem],
    cfg: EngineConfig,
    sums: dict[str, torch.Tensor],
    start: int,
    stop: int,
    progress: Progress | None = None,
) -> None:
    """Add the per-sample squared gradients of items[start:stop] into `sums` (float64), in order."""
    params = {name: p for name, p in block_parameters(model).items() if name in sums}
    for position in range(start, stop):
        add_squared_gradients(model, items[position], cfg, params, sums)
        if progress is not None:
            progress("fisher", position + 1, len(items))


def finalize_fisher(
    sums: dict[str, torch.Tensor], n_items: int, timesteps: int
) -> dict[str, torch.Tensor]:
    """F = sums / (N T), as float32 on CPU (the mean of Sec. 2.2)."""
    return {name: (value / (n_items * timesteps)).float().cpu() for name, value in sums.items()}


def empty_sums(model: EngineModel) -> dict[str, torch.Tensor]:
    return {
        name: torch.zeros_like(p, dtype=torch.float64)
        for name, p in block_parameters(model).items()
    }


def diagonal_fisher(
    model: EngineModel,
    items: list[EncodedItem],
    cfg: EngineConfig,
    progress: Progress | None = None,
) -> dict[str, torch.Tensor]:
    """The diagonal Fisher of Sec. 2.2 in one pass, in memory (artifacts.py stores it on disk)."""
    if not items:
        raise EngineError("The training set is empty: the Fisher needs at least one item.")
    sums = empty_sums(model)
    accumulate_fisher(model, items, cfg, sums, 0, len(items), progress)
    return finalize_fisher(sums, len(items), cfg.fisher_timesteps)
