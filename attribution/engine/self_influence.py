"""Train-to-Train self-influence validation (Sec. 3.2 of Choi et al.).

Unlearn a training item z_tar as if it were a generation, score every training item (Eq. 2),
and report
    R(z_tar)  its rank among all N scores (1 = the highest tau; ties count against it),
    sim_topk  the mean embedding cosine similarity of the k highest-scored items to z_tar,
    sim_botk  the same for the k lowest-scored items
(the paper's CLAP_topk / CLAP_botk with k = 100). z_tar itself is left out of both lists.
Targets are chosen for diversity as in the paper: k-means over track embeddings, the item
nearest each centroid.

The embedding is offline and audio-based, standing in for CLAP audio embeddings: per track,
the mean and standard deviation over time of a log-mel spectrogram (64 bands, ~64 ms
windows, torchaudio.transforms.MelSpectrogram), each dimension z-scored over the training set,
then L2-normalised. Because of the z-scoring, similarities are centred near 0 for unrelated
tracks (CLAP similarities in the paper are not centred), so only the gap top-k vs bottom-k is
comparable, not the absolute values.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import TrainingSet, query_from_training_item
from attribution.engine.loss import Progress
from attribution.engine.methods import unlearning_scores
from attribution.engine.scoring import Scores

EMBEDDING_NAME = "log-mel mean+std (64 bands), z-scored over the training set, cosine"


def logmel_embeddings(train_set: TrainingSet, sample_rate: int) -> np.ndarray:
    """Track embeddings (N, 2 * n_mels), unit norm; see the module docstring."""
    import torchaudio.transforms as T

    n_fft = 2 ** max(5, round(math.log2(0.064 * sample_rate)))  # ~64 ms window
    n_mels = min(64, n_fft // 4)
    mel = T.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, hop_length=n_fft // 4, n_mels=n_mels
    )
    rows = []
    for item in train_set.items:
        mono = item.audio.mean(dim=0)  # (T,)
        if mono.shape[0] < n_fft:
            mono = torch.nn.functional.pad(mono, (0, n_fft - mono.shape[0]))
        spec = torch.log(mel(mono) + 1e-6)  # (n_mels, frames)
        rows.append(torch.cat([spec.mean(dim=1), spec.std(dim=1, unbiased=False)]))  # (2 n_mels,)
    features = torch.stack(rows).double().numpy()  # (N, 2 n_mels)
    features = (features - features.mean(axis=0)) / (features.std(axis=0) + 1e-8)
    return features / (np.linalg.norm(features, axis=1, keepdims=True) + 1e-12)


def kmeans_targets(embeddings: np.ndarray, k: int, seed: int = 0) -> list[int]:
    """k diverse targets: k-means (k clusters) over embeddings, the item nearest each centroid."""
    from sklearn.cluster import KMeans

    n = embeddings.shape[0]
    if k >= n:
        return list(range(n))
    kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(embeddings)
    chosen: list[int] = []
    for centroid in kmeans.cluster_centers_:
        order = np.argsort(((embeddings - centroid) ** 2).sum(axis=1), kind="stable")
        chosen.append(int(next(i for i in order if i not in chosen)))
    return sorted(chosen)


def top_bottom_similarity(
    tau: np.ndarray, embeddings: np.ndarray, target: int, k: int
) -> tuple[float, float]:
    """Mean cosine similarity to z_tar of the k highest- and k lowest-scored other items."""
    order = [i for i in np.argsort(-tau, kind="stable") if i != target]  # best first
    sims = embeddings @ embeddings[target]  # (N,) unit vectors -> cosine
    return float(sims[order[:k]].mean()), float(sims[order[-k:]].mean())


@dataclass
class TargetResult:
    position: int
    item_id: str
    rank: int
    sim_topk: float
    sim_botk: float
    seconds: float
    tau_sha256: str
    # The target's own tau and the highest-scored other item (position, tau): how close a
    # rank 1 was, or which track beat it.
    tau_target: float
    runner_up: int
    tau_runner_up: float
    extra: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (top, bottom)


@dataclass
class SelfInfluenceReport:
    config: dict[str, Any]
    embedding: str
    k: int
    n_items: int
    targets: list[TargetResult] = field(default_factory=list)

    @property
    def mean_rank(self) -> float:
        return float(np.mean([t.rank for t in self.targets]))

    @property
    def mean_sim_topk(self) -> float:
        return float(np.mean([t.sim_topk for t in self.targets]))

    @property
    def mean_sim_botk(self) -> float:
        return float(np.mean([t.sim_botk for t in self.targets]))

    @property
    def mean_seconds(self) -> float:
        return float(np.mean([t.seconds for t in self.targets]))


ScoringMethod = Callable[..., Scores]


def self_influence(
    model: EngineModel,
    train_set: TrainingSet,
    cfg: EngineConfig,
    targets: list[int],
    embeddings: np.ndarray,
    *,
    k: int = 100,
    method: ScoringMethod = unlearning_scores,
    progress: Progress | None = None,
    extra_embeddings: dict[str, np.ndarray] | None = None,
    **method_kwargs: Any,
) -> SelfInfluenceReport:
    """R(z_tar), sim_topk and sim_botk (Sec. 3.2) for each target position; the same top/bottom
    similarities under each of `extra_embeddings` (e.g. caption embeddings) go to `extra`."""
    k = max(1, min(k, (len(train_set) - 1) // 2))  # top and bottom lists never overlap
    report = SelfInfluenceReport(cfg.to_dict(), EMBEDDING_NAME, k, len(train_set))
    for done, position in enumerate(targets):
        started = time.perf_counter()
        query = query_from_training_item(train_set.items[position])
        scores = method(model, query, train_set, cfg, None, **method_kwargs)
        top, bottom = top_bottom_similarity(scores.tau, embeddings, position, k)
        runner_up = next(int(i) for i in scores.ranking() if i != position)
        report.targets.append(
            TargetResult(
                position=position,
                item_id=train_set.items[position].item_id,
                rank=scores.rank_of(position),
                sim_topk=top,
                sim_botk=bottom,
                seconds=time.perf_counter() - started,
                tau_sha256=scores.tau_sha256(),
                extra={
                    name: top_bottom_similarity(scores.tau, other, position, k)
                    for name, other in (extra_embeddings or {}).items()
                },
                tau_target=float(scores.tau[position]),
                runner_up=runner_up,
                tau_runner_up=float(scores.tau[runner_up]),
            )
        )
        if progress is not None:
            progress("self_influence", done + 1, len(targets))
    return report
