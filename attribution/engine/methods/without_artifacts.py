"""The stages shared by the methods that need no per-checkpoint artifact (the similarity
second opinions and representer points, Sec. 3.3): the prepared stage only encodes the
training set, and the values of the slices are the scores as they are."""

from __future__ import annotations

import numpy as np

from attribution.engine.artifacts import ArtifactStore
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import TrainingSet
from attribution.engine.loss import Progress
from attribution.engine.pipeline import Prepared, QueryState


class WithoutArtifacts:
    """``prepare`` and ``finalize`` of a method whose scores need only the encodings."""

    name: str

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

        return Prepared(
            method=self.name, model=model, train_set=train_set, cfg=cfg, encode=encode,
            artifacts={}, artifact_sha256={},
        )  # fmt: skip

    def finalize(
        self, prepared: Prepared, state: QueryState, values: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        return values, {}
