"""The unlearning update (Eq. 5-6 of Choi et al., after Wang et al.).

Minimising Eq. 5, -L(z_hat, theta) + (N/2)(theta - theta0)^T F (theta - theta0), gives Eq. 6:

    theta' = theta0 + eta (F + lambda)^-1 grad_theta L(z_hat, theta)

on the target weights only (the others keep theta0). eta is cfg.lr; the paper's 1/N is absorbed
into it unless cfg.lr_times_inverse_n, then eta = lr / N; with cfg.target_update_norm, eta is
the step whose first update has that norm relative to the weights' (update_regime says
whether the step is one Eq. 4 and float32 can read). lambda = cfg.damping * mean(F) over
the target weights. L(z_hat, theta) is averaged over cfg.unlearn_timesteps draws (2048 in the
paper) from the "unlearn" stream, with the padding mask M_U when cfg.unlearn_mask. With
cfg.steps > 1 the gradient of step k is taken at theta_{k-1}, and the update is added to the
current weights as the reference implementation of Wang et al. does (cfg.step_rule
"accumulate"): theta_k = theta_{k-1} + eta (F + lambda)^-1 grad L(z_hat, theta_{k-1}); or, with
"fixed_point", to theta0: theta_k = theta0 + eta (F + lambda)^-1 grad L(z_hat, theta_{k-1}).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

import torch

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.fisher import target_parameters
from attribution.engine.items import EncodedItem
from attribution.engine.loss import Progress, chunks, draw, row_losses


def mean_gradient(
    model: EngineModel,
    item: EncodedItem,
    cfg: EngineConfig,
    params: dict[str, torch.nn.Parameter],
    *,
    stream: str,
    timesteps: int,
    mask: bool,
    progress: Progress | None = None,
    on_chunk: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
) -> dict[str, torch.Tensor]:
    """grad_theta of (1/T) sum_t L_t(z, theta) over T keyed draws of one stream (Sec. 2.1),
    accumulated batch by batch in draw order.

    The sums accumulate in the parameters' own ``.grad`` (autograd adds each batch in place),
    so a model of p target weights holds one gradient of p numbers, not a running sum beside
    each batch's gradient; the values are those of summing the batches' gradients in order.
    `on_chunk(draws_done, running_sums)` sees the running sum (scaled by 1/T) after each
    batch of draws: the estimate over the first draws (fidelity curves over T_u)."""
    names = list(params)
    tensors = [params[name] for name in names]
    for tensor in tensors:
        tensor.grad = None
    try:
        for indices in chunks(timesteps, cfg.batch_size):
            t, noise = draw(model, item, cfg, stream, indices)
            losses = row_losses(
                model, item, t, noise, mask=mask, indices=indices, timesteps=timesteps,
                activation_checkpointing=cfg.activation_checkpointing,
            )  # (K,)  # fmt: skip
            (losses.sum() / timesteps).backward(inputs=tensors)
            if progress is not None:
                progress(stream, indices.stop, timesteps)
            if on_chunk is not None:
                on_chunk(indices.stop, _gradients(params))
        return _gradients(params)
    finally:
        for tensor in tensors:
            tensor.grad = None  # the model keeps no gradient


def _gradients(params: dict[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    """Each parameter's accumulated ``.grad`` (zeros where the loss does not reach it)."""
    return {
        name: param.grad if param.grad is not None else torch.zeros_like(param)
        for name, param in params.items()
    }


def query_gradient(
    model: EngineModel,
    query: EncodedItem,
    cfg: EngineConfig,
    params: dict[str, torch.nn.Parameter],
    progress: Progress | None = None,
    on_chunk: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
) -> dict[str, torch.Tensor]:
    """grad_theta of L(z_hat, theta) = (1/T_u) sum_t L_t(z_hat, theta) (Sec. 2.1), mask M_U,
    over the "unlearn" stream (progress stage "unlearn"; `on_chunk` as in `mean_gradient`)."""
    return mean_gradient(
        model, query, cfg, params, stream="unlearn", timesteps=cfg.unlearn_timesteps,
        mask=cfg.unlearn_mask, progress=progress, on_chunk=on_chunk,
    )  # fmt: skip


def eq6_update(
    theta0: dict[str, torch.Tensor],
    grad: dict[str, torch.Tensor],
    fisher: dict[str, torch.Tensor],
    eta: float,
    damping: float,
    *,
    in_place: bool = False,
) -> dict[str, torch.Tensor]:
    """Eq. 6: theta' = theta0 + eta (F + lambda)^-1 grad, elementwise for a diagonal F. `theta0`
    is the point the step starts from (theta_{k-1} when steps accumulate). With `in_place`,
    theta' is written over `grad` (the same operations in the same order, so the same bits)
    and no third copy of the target weights is made."""
    if not in_place:
        return {
            name: theta0[name] + eta * grad[name] / (fisher[name].to(grad[name]) + damping)
            for name in theta0
        }
    for name in theta0:
        grad[name].mul_(eta).div_(fisher[name].to(grad[name]) + damping).add_(theta0[name])
    return {name: grad[name] for name in theta0}


# Where the update stands (update_regime). Above FIRST_ORDER_LIMIT the scores stop scaling
# with the step, so Eq. 4's expansion is in doubt (BENCHMARKS.md, "Step size and the
# first-order regime"). Below, the arithmetic is the limit: a float32 weight moves only by at
# least half its last bit, and a step most weights do not feel is rounding noise.
FIRST_ORDER_LIMIT = 1e-3
RESOLVED_FRACTION = 0.5


def relative_norm_per_unit_step(
    theta0: dict[str, torch.Tensor],
    grad: dict[str, torch.Tensor],
    fisher: dict[str, torch.Tensor],
    damping: float,
) -> float:
    """||(F + lambda)^-1 grad|| / ||theta0|| over the target weights: the relative norm of the
    Eq. 6 update for eta = 1 (it scales linearly with eta)."""
    direction = sum(
        float((grad[n] / (fisher[n].to(grad[n]) + damping)).double().pow(2).sum()) for n in grad
    )
    size = sum(float(theta0[n].detach().double().pow(2).sum()) for n in grad)
    return (direction / size) ** 0.5 if size > 0 else 0.0


def step_for_target_norm(
    theta0: dict[str, torch.Tensor],
    grad: dict[str, torch.Tensor],
    fisher: dict[str, torch.Tensor],
    damping: float,
    target: float,
) -> float:
    """eta with ||eta (F + lambda)^-1 grad|| = target * ||theta0|| over the target weights."""
    per_unit = relative_norm_per_unit_step(theta0, grad, fisher, damping)
    if per_unit == 0.0:
        raise EngineError("The query's gradient is zero: there is nothing to unlearn.")
    return target / per_unit


def update_regime(relative_norm: float, changed_fraction: float | None = None) -> str:
    """ "unresolved" (float32 leaves most target weights where they were), "first_order" (the
    regime Eq. 2 and 4 rest on) or "beyond_first_order" (see FIRST_ORDER_LIMIT)."""
    if changed_fraction is not None and changed_fraction < RESOLVED_FRACTION:
        return "unresolved"
    if relative_norm > FIRST_ORDER_LIMIT:
        return "beyond_first_order"
    return "first_order"


def unresolved_update_message(statistics: dict) -> str | None:
    """A readable refusal for a query state whose update float32 did not resolve, else None."""
    if statistics.get("update_regime") != "unresolved":
        return None
    return (
        f"The unlearning step changed only {statistics['weights_changed_fraction']:.1%} of the "
        f"unlearned weights (relative norm {statistics['update_relative_norm']:.2e}): below "
        "what float32 arithmetic resolves, so the scores would be rounding noise. Raise the "
        "engine's lr, or set target_update_norm (e.g. 1e-4) so the step is chosen by its "
        "effect on the weights."
    )


def damping_value(fisher: dict[str, torch.Tensor], names: list[str], relative: float) -> float:
    """lambda = relative * mean(F) over the target weights."""
    total = sum(float(fisher[name].double().sum()) for name in names)
    count = sum(fisher[name].numel() for name in names)
    return relative * total / count


def checked_damping(
    params: dict[str, torch.nn.Parameter], fisher: dict[str, torch.Tensor], relative: float
) -> float:
    """lambda of Eq. 6 for these target weights, after checking that the Fisher covers them
    with the right shapes and that (F + lambda) can be inverted."""
    names = list(params)
    missing = [name for name in names if name not in fisher]
    if missing:
        raise EngineError(f"The Fisher has no entry for {missing[0]} (is it from this model?).")
    for name in names:
        if fisher[name].shape != params[name].shape:
            raise EngineError(f"The Fisher's {name} has the wrong shape for this model.")
    damping = damping_value(fisher, names, relative)
    if damping == 0.0 and any(bool((fisher[name] <= 0).any()) for name in names):
        raise EngineError("The Fisher has zero entries on target weights; set a damping > 0.")
    return damping


@contextmanager
def parameters_swapped(model: EngineModel, values: dict[str, torch.Tensor]) -> Iterator[None]:
    """Temporarily make `values` (theta') the model's weights; theta0 is restored bit for bit
    afterwards. The tensors are exchanged, not copied: no second copy of the weights is made
    (values on another device or dtype than the weights are converted first)."""
    params = dict(model.module.named_parameters())
    saved: dict[str, torch.Tensor] = {}
    try:
        with torch.no_grad():
            for name, value in values.items():
                param = params[name]
                if value.shape != param.shape:
                    raise EngineError(f"{name} has the wrong shape for this model.")
                saved[name] = param.data
                param.data = value.to(device=param.device, dtype=param.dtype)
        yield
    finally:
        with torch.no_grad():
            for name, original in saved.items():
                params[name].data = original


def unlearn(
    model: EngineModel,
    query: EncodedItem,
    fisher: dict[str, torch.Tensor],
    cfg: EngineConfig,
    n_train: int,
    progress: Progress | None = None,
    *,
    statistics: dict | None = None,
) -> dict[str, torch.Tensor]:
    """theta' on the target weights after cfg.steps Eq. 6 updates (on the model's device); the
    model is left at theta0. eta is lr / N (or lr), or with cfg.target_update_norm the step
    whose first update has that relative norm (then kept for later steps); it is recorded in
    `statistics["eta"]` when a dict is given."""
    params = target_parameters(model, cfg.target_layers)
    names = list(params)
    eta = cfg.lr / n_train if cfg.lr_times_inverse_n else cfg.lr
    damping = checked_damping(params, fisher, cfg.damping)
    # Memory: one gradient of the target weights, overwritten by theta' (eq6_update in
    # place); theta0 is the model's own weights, which later steps exchange with theta_k.
    theta0 = {name: params[name].detach() for name in names}
    current: dict[str, torch.Tensor] | None = None  # None: the model is at theta0
    for _ in range(cfg.steps):
        with nullcontext() if current is None else parameters_swapped(model, current):
            grad = query_gradient(model, query, cfg, params, progress)
        if current is None and cfg.target_update_norm is not None:
            eta = step_for_target_norm(theta0, grad, fisher, damping, cfg.target_update_norm)
        start = current if cfg.step_rule == "accumulate" and current is not None else theta0
        current = eq6_update(start, grad, fisher, eta, damping, in_place=True)
    if statistics is not None:
        statistics["eta"] = eta
    return current
