"""Black-box audio similarity (the paper's CLAP / CLEWS second opinion, Sec. 3.3).

The model is not consulted: the query's audio and each training track's audio are cut into
overlapping windows (the paper: 10 s every 1 s on a ~120 s model window; here the same
shares of this model's window, config.audio_window_share / audio_hop_share), every window is
embedded (audio_features.py: MFCC and chroma statistics, as CLAP and CLEWS weights are not
available offline), and

    tau_i = max over query windows a and track windows b of  cos(e(z_hat)_a, e(z_i)_b)

(all-against-all, the maximum). A query identical to a training track shares its windows,
so that track scores the largest value a cosine takes, 1.

    prepare      nothing (the training audio is read when a slice is scored)
    query_state  the query's window embeddings, (W, 62)
    score_slice  tau_i for the slice's tracks (their whole audio, every window)
    finalize     tau = the values
"""

from __future__ import annotations

import numpy as np
import torch

from attribution.engine.audio_features import (
    best_window_similarity,
    window_embeddings,
    window_geometry,
)
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.items import AudioItem, QueryItem, check_audio
from attribution.engine.loss import Progress
from attribution.engine.methods.without_artifacts import WithoutArtifacts
from attribution.engine.pipeline import Prepared, QueryState, query_record


def embed(model: EngineModel, item: AudioItem, cfg: EngineConfig) -> torch.Tensor:
    """The windows' embeddings of an item's audio at the model's rate, (W, 62) float64."""
    check_audio(item.audio, what=f"Item {item.item_id}")
    window, hop = window_geometry(
        model.sample_size, model.sample_rate, cfg.audio_window_share, cfg.audio_hop_share
    )
    return window_embeddings(item.audio, model.sample_rate, window, hop)


class AudioSimilarityMethod(WithoutArtifacts):
    name = "audio_similarity"
    description = "audio similarity, MFCC and chroma windows, maximum cosine (Sec. 3.3)"

    def query_state(
        self, prepared: Prepared, query: QueryItem, progress: Progress | None = None
    ) -> QueryState:
        model, cfg = prepared.model, prepared.cfg
        window, hop = window_geometry(
            model.sample_size, model.sample_rate, cfg.audio_window_share, cfg.audio_hop_share
        )
        embeddings = embed(model, query, cfg)  # (W, 62)
        return QueryState(
            tensors={"windows": embeddings.contiguous()},
            meta={
                "query": query_record(query),
                "statistics": {
                    "embedding": "mfcc1-19+chroma mean/std",
                    "window_samples": window,
                    "hop_samples": hop,
                    "query_windows": int(embeddings.shape[0]),
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
        query = state.tensors["windows"]  # (Wq, 62)
        values = np.empty(stop - start, dtype=np.float64)  # (S,)
        for offset, item in enumerate(prepared.train_set.items[start:stop]):
            values[offset] = best_window_similarity(
                query, embed(prepared.model, item, prepared.cfg)
            )
            if progress is not None:
                progress(self.name, offset + 1, stop - start)
        return values
