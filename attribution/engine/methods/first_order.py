"""First-order unlearning attribution: the fast path for settlement.

For one Eq. 6 step, theta' - theta0 = eta (F + lambda)^-1 ghat, and to first order in it

    tau_i = L(z_i, theta') - L(z_i, theta0) ~ eta gbar_i^T (F + lambda)^-1 ghat
          = eta phi_i . psi                                          (features.py, projection.py)

(times `steps` for several accumulated steps, whose gradients agree to first order). The
training features phi_i are computed once per checkpoint and stored (like the Fisher), so a
query costs its own gradient (cfg.first_order_timesteps draws) and one (N, k) x (k,) product,
instead of the exact method's N x T_s forward passes.

    prepare      the Fisher and the stored features phi (N, k), memory-mapped
    query_state  psi = P (F + lambda)^-1/2 ghat, (k,), and the update's relative norm
    score_slice  eta * steps * phi[start:stop] @ psi
    finalize     tau = the values (no per-item columns)
"""

from __future__ import annotations

import numpy as np

from attribution.engine.artifacts import ArtifactStore, array_sha256, tensors_sha256
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.features import FeatureMap
from attribution.engine.items import QueryItem, TrainingSet, encode_item
from attribution.engine.loss import Progress
from attribution.engine.pipeline import Prepared, QueryState, query_record
from attribution.engine.unlearn import (
    relative_norm_per_unit_step,
    step_for_target_norm,
    update_regime,
)


def step_size(cfg: EngineConfig, n_train: int) -> float:
    """eta of Eq. 6 (config.py: lr / N, or lr when the 1/N is absorbed)."""
    return cfg.lr / n_train if cfg.lr_times_inverse_n else cfg.lr


class FirstOrderMethod:
    name = "first_order"
    description = "first-order unlearning (Eq. 2 to first order in the Eq. 6 step)"

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
        features = store.features(model, encode, train_set, cfg, progress, compute=compute)
        recorded = store.recorded_sha256(model, "features", train_set, cfg)
        return Prepared(
            method=self.name,
            model=model,
            train_set=train_set,
            cfg=cfg,
            encode=encode,
            artifacts={"fisher": fisher, "features": features},
            artifact_sha256={
                "fisher": tensors_sha256(fisher),
                # the file's hash when stored (checked on load), else the rows' bytes
                "features": recorded or array_sha256(np.asarray(features)),
            },
        )

    def query_state(
        self, prepared: Prepared, query: QueryItem, progress: Progress | None = None
    ) -> QueryState:
        model, cfg = prepared.model, prepared.cfg
        feature_map = FeatureMap(model, prepared.artifacts["fisher"], cfg)
        grads = feature_map.query_gradient(encode_item(model, query, cfg))
        psi = feature_map(grads)  # (k,) float64
        preconditioning = (feature_map.params, grads, feature_map.fisher, feature_map.damping)
        eta = step_size(cfg, len(prepared.train_set))
        if cfg.target_update_norm is not None:  # the step the exact method would choose
            eta = step_for_target_norm(*preconditioning, cfg.target_update_norm)
        # the relative norm the exact method's Eq. 6 update would have
        relative = eta * relative_norm_per_unit_step(*preconditioning) * cfg.steps
        return QueryState(
            tensors={"psi": psi},
            meta={
                "query": query_record(query),
                "statistics": {
                    "update_relative_norm": relative,
                    "update_regime": update_regime(relative),
                    "eta": eta,
                    "first_order_timesteps": cfg.first_order_timesteps,
                    "projection": cfg.projection,
                    "projection_dim": feature_map.dim,
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
        cfg = prepared.cfg
        rows = np.asarray(prepared.artifacts["features"][start:stop], dtype=np.float64)  # (S, k)
        psi = state.tensors["psi"].numpy()  # (k,)
        statistics = state.meta.get("statistics", {})
        eta = statistics.get("eta", step_size(cfg, len(prepared.train_set)))
        scale = eta * cfg.steps
        if progress is not None:
            progress("first_order", stop - start, stop - start)
        return scale * (rows @ psi)  # (S,)

    def finalize(
        self, prepared: Prepared, state: QueryState, values: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return values, {}
