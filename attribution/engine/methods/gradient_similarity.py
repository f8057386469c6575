"""Gradient similarity without unlearning (TracIn with one checkpoint, no Fisher).

TracIn (Pruthi et al. 2020) scores a training item by the inner product of its loss
gradient with the query's, summed over checkpoints with their learning rates; with the one
released checkpoint and a unit rate,

    tau_i = gbar_i . ghat

with gbar_i the gradient of item i's Eq. 2 loss at theta0 (the exact method's scoring draws)
and ghat the query's unlearning gradient (the first cfg.first_order_timesteps draws, mask
M_U), both on the target weights. It is the first-order method's score (features.py) with
(F + lambda)^-1 replaced by the identity and eta = 1: what the Fisher adds.

The first-order method stores whitened features, P (F + lambda)^-1/2 gbar_i; a projection
mixes coordinates, so they cannot be un-whitened afterwards. This method stores its own
artifact instead, P gbar_i with the same projection P (kind "gradients", computed like the
features without the Fisher), and scores tau_i ~ (P gbar_i) . (P ghat), which equals the
inner product in expectation (projection.py).

    prepare      the stored gradients P gbar (N, k), memory-mapped
    query_state  P ghat, (k,)
    score_slice  P gbar[start:stop] @ P ghat
    finalize     tau = the values
"""

from __future__ import annotations

import numpy as np

from attribution.engine.artifacts import ArtifactStore, array_sha256
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.features import FeatureMap
from attribution.engine.items import QueryItem, TrainingSet, encode_item
from attribution.engine.loss import Progress
from attribution.engine.pipeline import Prepared, QueryState, query_record


class GradientSimilarityMethod:
    name = "gradient_similarity"
    description = "gradient similarity without unlearning (TracIn, one checkpoint, no Fisher)"

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

        gradients = store.features(
            model, encode, train_set, cfg, progress, compute=compute, whitened=False
        )  # (N, k)
        recorded = store.recorded_sha256(model, "gradients", train_set, cfg)
        return Prepared(
            method=self.name,
            model=model,
            train_set=train_set,
            cfg=cfg,
            encode=encode,
            artifacts={"gradients": gradients},
            artifact_sha256={"gradients": recorded or array_sha256(np.asarray(gradients))},
        )

    def query_state(
        self, prepared: Prepared, query: QueryItem, progress: Progress | None = None
    ) -> QueryState:
        model, cfg = prepared.model, prepared.cfg
        feature_map = FeatureMap(model, None, cfg)
        projected = feature_map(feature_map.query_gradient(encode_item(model, query, cfg)))
        return QueryState(
            tensors={"query_gradient": projected},  # (k,) float64
            meta={
                "query": query_record(query),
                "statistics": {
                    "first_order_timesteps": cfg.first_order_timesteps,
                    "projection": cfg.projection,
                    "projection_dim": feature_map.dim,
                    "query_gradient_norm": float(projected.norm()),
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
        rows = np.asarray(prepared.artifacts["gradients"][start:stop], dtype=np.float64)  # (S, k)
        query = state.tensors["query_gradient"].numpy()  # (k,)
        if progress is not None:
            progress(self.name, stop - start, stop - start)
        return rows @ query  # (S,)

    def finalize(
        self, prepared: Prepared, state: QueryState, values: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return values, {}
