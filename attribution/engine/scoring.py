"""Attribution scores (Eq. 2): tau_i = L(z_i, theta') - L(z_i, theta0), theta' from Eq. 6.

A larger tau_i means unlearning the query raised training item i's loss more, i.e. item i is
more attributable to the query. Both losses of an item use the same (t, noise) draws (common
random numbers, keyed by item id and timestep index), so tau_i = 0 exactly when theta' = theta0
and a score does not depend on batch size, order or sharding of the training set.

Every attribution method has the signature `(model, query, train_set, cfg, progress=None)
-> Scores`; `progress(stage, done, total)` is called as work advances.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attribution.engine.artifacts import ArtifactStore, atomic_write_bytes
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import EncodedItem, QueryItem, TrainingSet, encode_item, encode_items
from attribution.engine.loss import Progress, dataset_losses
from attribution.engine.unlearn import parameters_swapped, unlearn


@dataclass(eq=False)
class Scores:
    """tau (N,) for one query over the training set, with everything that reproduces it."""

    query_id: str
    item_ids: list[str]
    tau: np.ndarray  # (N,) float64, Eq. 2
    base_losses: np.ndarray  # (N,) L(z_i, theta0)
    unlearned_losses: np.ndarray  # (N,) L(z_i, theta')
    provenance: dict[str, Any] = field(default_factory=dict)

    def ranking(self) -> np.ndarray:
        """Training positions from most to least attributable (stable for ties)."""
        return np.argsort(-self.tau, kind="stable")

    def rank_of(self, position: int) -> int:
        """R(z) of Sec. 3.2: 1 + the number of other items scored at least as high (ties count
        against the item)."""
        others = np.delete(self.tau, position)
        return 1 + int((others >= self.tau[position]).sum())

    def tau_sha256(self) -> str:
        return hashlib.sha256(np.ascontiguousarray(self.tau).tobytes()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "query_id": self.query_id,
            "item_ids": self.item_ids,
            "tau": [float(x) for x in self.tau],
            "tau_hex": [float(x).hex() for x in self.tau],  # exact float64 values
            "tau_sha256": self.tau_sha256(),
            "base_losses": [float(x) for x in self.base_losses],
            "unlearned_losses": [float(x) for x in self.unlearned_losses],
            "provenance": self.provenance,
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1, sort_keys=True).encode())
        return path


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("torch", "numpy", "stable-audio-tools", "scipy", "scikit-learn"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def provenance(
    model: EngineModel,
    query: QueryItem,
    train_set: TrainingSet,
    cfg: EngineConfig,
    fisher: dict[str, torch.Tensor],
) -> dict[str, Any]:
    fisher_digest = hashlib.sha256()
    for name in sorted(fisher):
        fisher_digest.update(name.encode())
        fisher_digest.update(fisher[name].contiguous().numpy().tobytes())
    return {
        "method": "unlearning (Choi et al. 2025, Eq. 2 and 6)",
        "checkpoint_sha256": model.checkpoint_sha256,
        "training_manifest_sha256": train_set.manifest_sha256,
        "n_training_items": len(train_set),
        "engine_config": cfg.to_dict(),
        "seed": cfg.seed,
        "query": {
            "item_id": query.item_id,
            "prompt": query.prompt,
            "seconds_start": query.seconds_start,
            "seconds_total": query.seconds_total,
            "audio_sha256": hashlib.sha256(
                query.audio.detach().cpu().contiguous().numpy().tobytes()
            ).hexdigest(),
        },
        "fisher_sha256": fisher_digest.hexdigest(),
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(),
    }


class EncodedTrainingSet:
    """Encodings of a training set for one (checkpoint, seed, device), memoised across queries."""

    cache: dict[tuple[str, str, int, str], list[EncodedItem]] = {}

    @classmethod
    def get(
        cls, model: EngineModel, train_set: TrainingSet, cfg: EngineConfig, progress=None
    ) -> list[EncodedItem]:
        key = (train_set.manifest_sha256, model.checkpoint_sha256, cfg.seed, cfg.device)
        if key not in cls.cache:
            cls.cache.clear()  # keep one training set in memory
            cls.cache[key] = encode_items(model, train_set.items, cfg, progress)
        return cls.cache[key]


def unlearning_scores(
    model: EngineModel,
    query: QueryItem,
    train_set: TrainingSet,
    cfg: EngineConfig,
    progress: Progress | None = None,
    *,
    store: ArtifactStore | None = None,
) -> Scores:
    """Eq. 2 scores of every training item for a query: unlearn z_hat (Eq. 6), then compare losses.

    `store` holds the Fisher and theta0 losses (computed once per checkpoint); without one they
    are computed in memory.
    """
    store = store if store is not None else ArtifactStore(None)
    encoded = EncodedTrainingSet.get(model, train_set, cfg, progress)
    fisher = store.fisher(model, encoded, train_set, cfg, progress)
    base = store.base_losses(model, encoded, train_set, cfg, progress)
    encoded_query = encode_item(model, query, cfg)
    theta_prime = unlearn(model, encoded_query, fisher, cfg, len(train_set), progress)
    with parameters_swapped(model, theta_prime):
        unlearned = dataset_losses(model, encoded, cfg, progress, stream="score")
    record = provenance(model, query, train_set, cfg, fisher)
    # How far Eq. 6 moved the weights: ||theta' - theta0|| / ||theta0|| over the target weights.
    # Eq. 2 reads as a first-order (counterfactual) effect only while this is small.
    params = dict(model.module.named_parameters())
    moved = sum(
        float((theta_prime[n] - params[n].detach()).double().pow(2).sum()) for n in theta_prime
    )
    size = sum(float(params[n].detach().double().pow(2).sum()) for n in theta_prime)
    record["update_relative_norm"] = (moved / size) ** 0.5 if size > 0 else 0.0
    return Scores(
        query_id=query.item_id,
        item_ids=train_set.item_ids,
        tau=unlearned - base,  # (N,) Eq. 2
        base_losses=base,
        unlearned_losses=unlearned,
        provenance=record,
    )
