"""Unlearning-based attribution (Choi et al., Sec. 2-3): the exact method, and the audit path.

    prepare      training-set encodings, the diagonal Fisher F (Sec. 2.2) and the theta0 losses
                 L(z_i, theta0) (second term of Eq. 2), as store artifacts
    query_state  theta' = theta0 + eta (F + lambda)^-1 grad L(z_hat, theta0) on the target
                 weights (Eq. 5-6, unlearn.py), on CPU
    score_slice  L(z_i, theta') for a slice of the training set (first term of Eq. 2)
    finalize     tau_i = L(z_i, theta') - L(z_i, theta0) (Eq. 2)

Both losses of an item use the same (t, noise) draws (common random numbers, keyed by item id
and timestep index), so tau_i = 0 exactly when theta' = theta0, and a score does not depend on
the order of the training set or on how it is sliced. (The batch size of the forward passes
can change the last bits, which is why the theta0 losses are keyed by it.)
"""

from __future__ import annotations

import numpy as np
import torch

from attribution.engine.artifacts import ArtifactStore, array_sha256, tensors_sha256
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import QueryItem, TrainingSet, encode_item
from attribution.engine.loss import Progress, dataset_losses
from attribution.engine.pipeline import Prepared, QueryState, query_record
from attribution.engine.unlearn import parameters_swapped, unlearn, update_regime


def update_statistics(model: EngineModel, theta_prime: dict[str, torch.Tensor]) -> dict:
    """The update's relative norm, the share of target weights float32 moved, and its regime
    (unlearn.update_regime)."""
    params = dict(model.module.named_parameters())
    changed = sum(
        int((theta_prime[n].to(params[n].device) != params[n].detach()).sum()) for n in theta_prime
    )
    total = sum(theta_prime[n].numel() for n in theta_prime)
    relative = relative_update_norm(model, theta_prime)
    fraction = changed / total if total else 0.0
    return {
        "update_relative_norm": relative,
        "weights_changed_fraction": fraction,
        "update_regime": update_regime(relative, fraction),
    }


def relative_update_norm(model: EngineModel, theta_prime: dict[str, torch.Tensor]) -> float:
    """||theta' - theta0|| / ||theta0|| over the target weights: Eq. 2 reads as a first-order
    (counterfactual) effect only while this is small."""
    params = dict(model.module.named_parameters())
    moved = sum(
        float((theta_prime[n].to(params[n].device) - params[n].detach()).double().pow(2).sum())
        for n in theta_prime
    )
    size = sum(float(params[n].detach().double().pow(2).sum()) for n in theta_prime)
    return (moved / size) ** 0.5 if size > 0 else 0.0


class UnlearningMethod:
    name = "unlearning"
    description = "unlearning (Choi et al. 2025, Eq. 2 and 6)"

    def prepare(
        self,
        model: EngineModel,
        train_set: TrainingSet,
        cfg: EngineConfig,
        store: ArtifactStore,
        progress: Progress | None = None,
        *,
        compute: bool = True,
    ) -> Prepared:
        def encode():
            return store.encodings(model, train_set, cfg, progress)

        fisher = store.fisher(model, encode, train_set, cfg, progress, compute=compute)
        base = store.base_losses(model, encode, train_set, cfg, progress, compute=compute)
        return Prepared(
            method=self.name,
            model=model,
            train_set=train_set,
            cfg=cfg,
            encode=encode,
            artifacts={"fisher": fisher, "base_losses": base},
            artifact_sha256={"fisher": tensors_sha256(fisher), "base_losses": array_sha256(base)},
        )

    def query_state(
        self, prepared: Prepared, query: QueryItem, progress: Progress | None = None
    ) -> QueryState:
        model, cfg = prepared.model, prepared.cfg
        encoded_query = encode_item(model, query, cfg)
        recorded: dict = {}
        theta_prime = unlearn(
            model, encoded_query, prepared.artifacts["fisher"], cfg, len(prepared.train_set),
            progress, statistics=recorded,
        )  # fmt: skip
        return QueryState(
            tensors={name: value.detach().cpu() for name, value in theta_prime.items()},
            meta={
                "query": query_record(query),
                "statistics": {**update_statistics(model, theta_prime), **recorded},
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
        with parameters_swapped(prepared.model, state.tensors):
            return dataset_losses(
                prepared.model, prepared.encoded[start:stop], prepared.cfg, progress,
                stream="score",
            )  # fmt: skip  # (stop - start,) L(z_i, theta')

    def finalize(
        self, prepared: Prepared, state: QueryState, values: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        base = prepared.artifacts["base_losses"]  # (N,)
        tau = values - base  # (N,) Eq. 2
        return tau, {"base_losses": base, "unlearned_losses": values}
