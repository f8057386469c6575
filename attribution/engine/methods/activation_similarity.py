"""White-box activation similarity (the paper's "LPIPS" second opinion, Sec. 3.3).

LPIPS compares two images through a network's layer activations: each layer's activations
unit-normalised over channels, compared position by position, averaged over positions and
summed over layers. Here the network is the DiT itself: the query and a training item go
through the same draws (t, noise) (activations.shared_draws), and

    s_l(z_hat, z_i) = mean over draws k and latent tokens j of  u_l(z_hat)[k, j] . u_l(z_i)[k, j]
    tau_i           = (1/B) sum_l s_l(z_hat, z_i)                       (averaged over layers)

with u_l the output of transformer block l with each token's vector scaled to unit length
(the cosine similarity per token; LPIPS's squared distance with uniform weights is 2 - 2 of
it). A track seen through several windows (cfg.max_windows) scores its best window, as the
paper's windowed methods take the maximum. A query identical to a training item (same
audio, prompt and timing) has tau = 1 for it, the largest value tau can take, when the
pretransform is deterministic (a VAE that samples draws its latents per item id, so the
two encodings differ by that sampling).

    prepare      the training set's encodings (no other artifact)
    query_state  u_l(z_hat) for every block, (B, K, T, D)
    score_slice  tau_i for the slice's items: their activations at the shared draws
    finalize     tau = the values
"""

from __future__ import annotations

import numpy as np
import torch

from attribution.engine.activations import unit_tokens, window_activations
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import EncodedItem, QueryItem, encode_item
from attribution.engine.loss import Progress
from attribution.engine.methods.without_artifacts import WithoutArtifacts
from attribution.engine.pipeline import Prepared, QueryState, query_record


def layer_similarity(query: torch.Tensor, item: torch.Tensor) -> float:
    """s_l: mean over draws and tokens of the per-token cosine, (K, T, D) x (K, T, D)."""
    return float((query.double() * item.double()).sum(dim=-1).mean())


def activation_similarity(
    query_layers: torch.Tensor, model: EngineModel, item: EncodedItem, cfg: EngineConfig
) -> float:
    """tau_i: the layer average of s_l, at the item's best window; query_layers (B, K, T, D)."""
    best = -np.inf
    for position in range(item.window_count):
        layers = window_activations(model, item.window(position), cfg).layers  # B x (K, T, D)
        similarities = [
            layer_similarity(query_layers[index], unit_tokens(hidden))
            for index, hidden in enumerate(layers)
        ]
        best = max(best, float(np.mean(similarities)))
    return best


class ActivationSimilarityMethod(WithoutArtifacts):
    name = "activation_similarity"
    description = "DiT activation similarity (the paper's LPIPS second opinion, Sec. 3.3)"

    def query_state(
        self, prepared: Prepared, query: QueryItem, progress: Progress | None = None
    ) -> QueryState:
        model, cfg = prepared.model, prepared.cfg
        layers = window_activations(model, encode_item(model, query, cfg), cfg).layers
        stacked = torch.stack([unit_tokens(hidden) for hidden in layers])  # (B, K, T, D)
        return QueryState(
            tensors={"layers": stacked.contiguous()},
            meta={
                "query": query_record(query),
                "statistics": {
                    "similarity_timesteps": cfg.similarity_timesteps,
                    "blocks": int(stacked.shape[0]),
                },
            },
        )

    def score_slice(
        self,
        prepared: Prepared,
        state: QueryState,
        start: int,
        stop: int,
        progress: Progress | None = None,
    ) -> np.ndarray:
        query_layers = state.tensors["layers"]  # (B, K, T, D)
        values = np.empty(stop - start, dtype=np.float64)  # (S,)
        for offset, item in enumerate(prepared.encoded[start:stop]):
            values[offset] = activation_similarity(query_layers, prepared.model, item, prepared.cfg)
            if progress is not None:
                progress(self.name, offset + 1, stop - start)
        return values
