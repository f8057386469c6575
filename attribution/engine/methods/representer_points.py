"""Representer points (RPS, Yeh et al. 2018), as Sec. 3.3 of Choi et al. applies them to an
MSE-trained model.

The representer theorem writes a prediction whose last layer is linear in a feature f as a
sum over training samples, Phi(z_hat) = sum_i alpha_i f(z_i)^T f(z_hat), with

    alpha_i = -1/(2 lambda n) dL(z_i)/dPhi(z_i) = (Phi(z_i) - y_i) / (-lambda n)     (MSE loss)

and the attribution of sample i is its term, tau(z_hat, z_i) = alpha_i f(z_i)^T f(z_hat),
"the average of [the] signed sum of its components". In the DiT the last layer is the
transformer's output projection (and the 1x1 post-convolution after it), applied token by
token: every (draw k, latent token j) of a training item is one sample of that layer, with
feature f_i[k, j] (D,) and alpha_i[k, j] = residual_i[k, :, j] / (-lambda n) over the token's
C x patch outputs, the residual being Phi - y of the v-objective at draw k. Averaging the
term over the query's outputs (its draws, tokens and output components) and over the item's
draws (its loss averages over them) gives

    tau_i = -1/(lambda n) (1/K) sum_k sum_j rbar_i[k, j] f_i[k, j] . fbar(z_hat)

with rbar the mean of the residual over the token's outputs and fbar(z_hat) the query's mean
feature over its draws and tokens. Both sides use the shared draws (activations.py). A track
seen through several windows averages its windows (its loss does).

    prepare      the training set's encodings (no other artifact)
    query_state  fbar(z_hat), (D,)
    score_slice  tau_i for the slice's items
    finalize     tau = the values
"""

from __future__ import annotations

import numpy as np
import torch

from attribution.engine.activations import Activations, window_activations
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import EncodedItem, QueryItem, encode_item
from attribution.engine.loss import Progress
from attribution.engine.methods.without_artifacts import WithoutArtifacts
from attribution.engine.pipeline import Prepared, QueryState, query_record


def token_residual(activations: Activations) -> torch.Tensor:
    """rbar[k, j]: the residual Phi - y averaged over the C x patch outputs of token j,
    (K, C, T * patch) -> (K, T) float64."""
    residual = activations.residual.double()  # (K, C, L)
    draws, channels, frames = residual.shape
    patch = activations.patch_size
    return residual.reshape(draws, channels, frames // patch, patch).mean(dim=(1, 3))  # (K, T)


def representer_vector(activations: Activations) -> torch.Tensor:
    """(1/K) sum_k sum_j rbar[k, j] f[k, j]: the item's side of tau_i before the query's
    feature and -1/(lambda n), (D,) float64."""
    rbar = token_residual(activations)  # (K, T)
    features = activations.features.double()  # (K, T, D)
    return torch.einsum("kt,ktd->d", rbar, features) / features.shape[0]  # (D,)


def representer_score(
    query_feature: torch.Tensor,
    model: EngineModel,
    item: EncodedItem,
    cfg: EngineConfig,
    n_train: int,
) -> float:
    """tau_i = -1/(lambda n) representer_vector(z_i) . fbar(z_hat), averaged over windows."""
    vectors = [
        representer_vector(window_activations(model, item.window(position), cfg))
        for position in range(item.window_count)
    ]
    vector = torch.stack(vectors).mean(dim=0)  # (D,)
    return float(vector @ query_feature) / (-cfg.representer_lambda * n_train)


class RepresenterPointsMethod(WithoutArtifacts):
    name = "representer_points"
    description = "representer points (Yeh et al. 2018, Sec. 3.3 of Choi et al.)"

    def query_state(
        self, prepared: Prepared, query: QueryItem, progress: Progress | None = None
    ) -> QueryState:
        model, cfg = prepared.model, prepared.cfg
        features = window_activations(model, encode_item(model, query, cfg), cfg).features
        mean_feature = features.double().mean(dim=(0, 1))  # (K, T, D) -> (D,)
        return QueryState(
            tensors={"mean_feature": mean_feature.contiguous()},
            meta={
                "query": query_record(query),
                "statistics": {
                    "similarity_timesteps": cfg.similarity_timesteps,
                    "representer_lambda": cfg.representer_lambda,
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
        query_feature = state.tensors["mean_feature"]  # (D,)
        n_train = len(prepared.train_set)
        values = np.empty(stop - start, dtype=np.float64)  # (S,)
        for offset, item in enumerate(prepared.encoded[start:stop]):
            values[offset] = representer_score(
                query_feature, prepared.model, item, prepared.cfg, n_train
            )
            if progress is not None:
                progress(self.name, offset + 1, stop - start)
        return values
