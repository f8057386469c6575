"""The DiT's inner activations at shared draws: what the white-box second opinions read
(methods/activation_similarity.py, methods/representer_points.py; Sec. 3.3 of Choi et al.).

For an encoded item (one window) and cfg.similarity_timesteps draws (t, noise), one forward
pass of the training loss's computation (loss.model_output) with hooks on the DiT gives

    layers[l]  (K, T, D)  the output of transformer block l on the item's T latent tokens
    features   (K, T, D)  the input of the transformer's output projection: the last-layer
                          feature f(z) that the prediction is linear in
    residual   (K, C, L)  prediction - training target, Phi(z) - y (the v-objective's)

Memory tokens and prepended conditioning tokens are dropped; the last T = L / patch_size
tokens are the item's. The draws are keyed by draw index alone (`shared_draws`): the query
and every training item are seen at the same t and the same noise, so two items'
activations differ only by the items (the Eq. 2 losses key draws by item id instead, so
that an item's scoring draws never coincide with a query's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.items import EncodedItem
from attribution.engine.loss import chunks, draw, model_output

SIMILARITY_STREAM = "similarity"
SHARED_ITEM = "shared"  # the item key every item's similarity draws use


def diffusion_transformer(model: EngineModel) -> torch.nn.Module:
    """stable-audio-tools' DiffusionTransformer inside the conditioned wrapper."""
    dit = getattr(getattr(model.module, "model", None), "model", None)
    if dit is None or not hasattr(getattr(dit, "transformer", None), "layers"):
        raise EngineError("The model has no DiT transformer blocks to read activations from.")
    return dit


def shared_draws(
    model: EngineModel, item: EncodedItem, cfg: EngineConfig, indices: range
) -> tuple[torch.Tensor, torch.Tensor]:
    """(t (K,), noise (K, C_lat, L)) of the similarity stream, the same for every item of the
    same latent shape: keyed by (seed, stream, draw index), not by item id."""
    shared = dataclasses.replace(item, item_id=SHARED_ITEM, more_windows=())
    return draw(model, shared, cfg, SIMILARITY_STREAM, indices)


@dataclass(frozen=True)
class Activations:
    layers: list[torch.Tensor]  # per block, (K, T, D) float32 on CPU
    features: torch.Tensor  # (K, T, D) float32 on CPU, the output projection's input
    residual: torch.Tensor  # (K, C, L) float32 on CPU, Phi(z) - y
    patch_size: int  # latent frames per token


@contextmanager
def _hooked(dit: torch.nn.Module, found: dict[str, list[torch.Tensor]]) -> Iterator[None]:
    transformer = dit.transformer
    handles = []

    def keep_block(index: int):
        def hook(_module, _inputs, output):
            value = output[0] if isinstance(output, tuple) else output
            found.setdefault(f"layer{index}", []).append(value.detach())

        return hook

    def keep_feature(_module, inputs):
        found.setdefault("features", []).append(inputs[0].detach())

    try:
        for index, block in enumerate(transformer.layers):
            handles.append(block.register_forward_hook(keep_block(index)))
        handles.append(transformer.project_out.register_forward_pre_hook(keep_feature))
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def window_activations(model: EngineModel, item: EncodedItem, cfg: EngineConfig) -> Activations:
    """The activations of one window of an item at the shared draws, in batches of
    cfg.batch_size draws (concatenated in draw order)."""
    dit = diffusion_transformer(model)
    patch = int(getattr(dit, "patch_size", 1))
    tokens = item.latents.shape[-1] // patch  # T
    found: dict[str, list[torch.Tensor]] = {}
    residuals = []
    with _hooked(dit, found):
        for indices in chunks(cfg.similarity_timesteps, cfg.batch_size):
            t, noise = shared_draws(model, item, cfg, indices)  # (K,), (K, C, L)
            output, target = model_output(model, item, t, noise)  # (K, C, L) each
            residuals.append((output - target).float().cpu())
    blocks = len(dit.transformer.layers)

    def joined(name: str) -> torch.Tensor:
        # the last T positions are the item's tokens (memory and prepended tokens come first)
        return torch.cat([part[:, -tokens:, :].float().cpu() for part in found[name]])  # (K, T, D)

    return Activations(
        layers=[joined(f"layer{index}") for index in range(blocks)],
        features=joined("features"),
        residual=torch.cat(residuals),  # (K, C, L)
        patch_size=patch,
    )


def unit_tokens(hidden: torch.Tensor) -> torch.Tensor:
    """Each token's vector scaled to unit length over its D channels, as LPIPS normalises
    a layer's activations before comparing them: (K, T, D) -> (K, T, D)."""
    norms = hidden.double().norm(dim=-1, keepdim=True)  # (K, T, 1)
    return (hidden.double() / norms.clamp_min(1e-12)).float()
