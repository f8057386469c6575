"""The stages every attribution method shares (the shape of TRAK's featurize -> score -> finalize).

    prepare      per checkpoint, once: encode the training set, compute or load the method's
                 artifacts (for unlearning: the diagonal Fisher and the theta0 losses)
    query_state  per query: what the method keeps from it (for unlearning: theta' of Eq. 6)
    score_slice  per contiguous slice [start, stop) of the training set: one float64 per item
    combine      the slices, checked to cover [0, N) without a gap or an overlap, become `Scores`:
                 tau, its hash and the provenance, computed once, here

`attribute` is their composition in one process; the Celery tasks call the same stages on
several workers (prepare and query_state in one task, score_slice in one task per shard, combine
in the last), so both give the same bytes. Every tensor that leaves a stage is on CPU.

A method implements `AttributionMethod`; `attribution.engine.methods` looks them up by name.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from attribution.engine.artifacts import (
    ArtifactStore,
    array_sha256,
    atomic_write_bytes,
    tensors_sha256,
)
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.items import EncodedItem, QueryItem, TrainingSet
from attribution.engine.loss import Progress
from attribution.engine.scoring import Scores, library_versions


@dataclass(eq=False)
class Prepared:
    """A checkpoint made ready for one method and config (the output of `prepare`)."""

    method: str
    model: EngineModel
    train_set: TrainingSet
    cfg: EngineConfig
    artifacts: dict[str, Any]  # the method's per-checkpoint results, on CPU
    artifact_sha256: dict[str, str]  # content hash of each artifact (provenance)
    # The training set as the model sees it, (N,) items, encoded on first use (memoised by the
    # store): combining slices needs only the artifacts, scoring a slice needs the encodings.
    encode: Callable[[], list[EncodedItem]]

    @property
    def encoded(self) -> list[EncodedItem]:
        return self.encode()


@dataclass(eq=False)
class QueryState:
    """What a method keeps from one query between stages: named CPU tensors and JSON metadata.

    It is saved once by the worker that computes it and read by every worker that scores a
    slice; `sha256` names its content (tensors and metadata).
    """

    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def sha256(self) -> str:
        digest = hashlib.sha256(tensors_sha256(self.tensors).encode())
        digest.update(json.dumps(self.meta, sort_keys=True).encode())
        return digest.hexdigest()

    def save(self, path: str | Path) -> str:
        """Write atomically; returns the file's SHA-256 (checked by `load`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save({"tensors": self.tensors, "meta": json.dumps(self.meta)}, buffer)
        data = buffer.getvalue()
        atomic_write_bytes(path, data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: str | Path, sha256: str) -> QueryState:
        path = Path(path)
        if not path.is_file():
            raise EngineError(f"The query state {path} is missing.", field="query_state")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise EngineError(f"The query state {path} is corrupted (hash mismatch).")
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return cls(tensors=state["tensors"], meta=json.loads(state["meta"]))


@dataclass(frozen=True)
class SliceValues:
    """The method's value for training positions [start, stop)."""

    start: int
    stop: int
    values: np.ndarray  # (stop - start,) float64


class AttributionMethod(Protocol):
    """One attribution method: its stages, and (by `attribute`) their composition.

    `prepare(model, train_set, cfg, store, progress, compute=...)` -> `Prepared`;
    `query_state(prepared, query, progress)` -> `QueryState`;
    `score_slice(prepared, state, start, stop, progress)` -> (stop - start,) float64;
    `finalize(prepared, state, values)` -> (tau (N,) float64, per-item columns worth keeping,
    e.g. the two losses of Eq. 2) from the values of all N items.
    """

    name: str
    description: str

    def prepare(
        self,
        model: EngineModel,
        train_set: TrainingSet,
        cfg: EngineConfig,
        store: ArtifactStore,
        progress: Progress | None = None,
        *,
        compute: bool = True,
    ) -> Prepared: ...

    def query_state(
        self, prepared: Prepared, query: QueryItem, progress: Progress | None = None
    ) -> QueryState: ...

    def score_slice(
        self,
        prepared: Prepared,
        state: QueryState,
        start: int,
        stop: int,
        progress: Progress | None = None,
    ) -> np.ndarray: ...

    def finalize(
        self, prepared: Prepared, state: QueryState, values: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...


def slice_bounds(n_items: int, slice_size: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) slices of at most `slice_size` items covering [0, n_items)."""
    if slice_size < 1:
        raise EngineError("The slice size must be at least 1.", field="shard_size")
    return [(start, min(start + slice_size, n_items)) for start in range(0, n_items, slice_size)]


def score_slice(
    method: AttributionMethod,
    prepared: Prepared,
    state: QueryState,
    start: int,
    stop: int,
    progress: Progress | None = None,
) -> SliceValues:
    """Stage 3: the method's values for training positions [start, stop)."""
    if not 0 <= start < stop <= len(prepared.train_set):
        raise EngineError(
            f"Slice [{start}, {stop}) is outside the training set of {len(prepared.train_set)}."
        )
    values = np.asarray(
        method.score_slice(prepared, state, start, stop, progress), dtype=np.float64
    )
    assert values.shape == (stop - start,), values.shape
    return SliceValues(start, stop, values)


def query_record(query: QueryItem) -> dict[str, Any]:
    """The query as provenance records it (its audio by content hash)."""
    return {
        "item_id": query.item_id,
        "prompt": query.prompt,
        "seconds_start": query.seconds_start,
        "seconds_total": query.seconds_total,
        "audio_sha256": hashlib.sha256(
            query.audio.detach().cpu().contiguous().numpy().tobytes()
        ).hexdigest(),
    }


def combine(
    method: AttributionMethod,
    prepared: Prepared,
    state: QueryState,
    slices: Sequence[SliceValues],
) -> Scores:
    """Stage 4: slices covering [0, N) exactly -> `Scores` with tau, its hash and provenance.

    Refuses a gap, an overlap or a slice that runs past the training set, naming it.
    """
    n_items = len(prepared.train_set)
    values = np.empty(n_items, dtype=np.float64)
    covered = 0
    for piece in sorted(slices, key=lambda s: s.start):
        if piece.start != covered:
            what = "gap" if piece.start > covered else "overlap"
            raise EngineError(
                f"The scored slices leave a {what} at training position {covered} "
                f"(next slice starts at {piece.start})."
            )
        if piece.stop > n_items or piece.values.shape != (piece.stop - piece.start,):
            raise EngineError(f"Slice [{piece.start}, {piece.stop}) does not fit the training set.")
        values[piece.start : piece.stop] = piece.values
        covered = piece.stop
    if covered != n_items:
        raise EngineError(
            f"The scored slices cover {covered} of {n_items} training items; "
            f"positions {covered} to {n_items - 1} are missing."
        )
    tau, columns = method.finalize(prepared, state, values)
    tau = np.asarray(tau, dtype=np.float64)  # (N,)
    assert tau.shape == (n_items,), tau.shape
    cfg, model = prepared.cfg, prepared.model
    provenance = {
        "method": method.name,
        "method_description": method.description,
        "checkpoint_sha256": model.checkpoint_sha256,
        "training_manifest_sha256": prepared.train_set.manifest_sha256,
        "n_training_items": n_items,
        "engine_config": cfg.to_dict(),
        "seed": cfg.seed,
        "device": model.device,
        "dtype": model.dtype,
        "query": state.meta.get("query", {}),
        "query_state_sha256": state.sha256(),
        "artifact_sha256": dict(prepared.artifact_sha256),
        "statistics": state.meta.get("statistics", {}),
        "tau_sha256": array_sha256(tau),
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(),
    }
    return Scores(
        query_id=str(state.meta.get("query", {}).get("item_id", "")),
        item_ids=prepared.train_set.item_ids,
        tau=tau,
        columns=columns,
        provenance=provenance,
    )


def configure_arithmetic(cfg: EngineConfig) -> None:
    """float32 throughout unless cfg.allow_tf32: PyTorch lets cuDNN convolutions use TF32 by
    default, which rounds inputs to 10 mantissa bits (the VAE encodings, and any update near
    float32 resolution, would change). Set before every stage's work in a process."""
    torch.backends.cuda.matmul.allow_tf32 = cfg.allow_tf32
    torch.backends.cudnn.allow_tf32 = cfg.allow_tf32


def attribute(
    method: AttributionMethod,
    model: EngineModel,
    query: QueryItem,
    train_set: TrainingSet,
    cfg: EngineConfig,
    progress: Progress | None = None,
    *,
    store: ArtifactStore | None = None,
) -> Scores:
    """Every stage in one process: prepare -> query_state -> score_slice over [0, N) -> combine.

    `store` holds the per-checkpoint artifacts (computed once); without one they are computed
    in memory.
    """
    store = store if store is not None else ArtifactStore(None)
    configure_arithmetic(cfg)
    prepared = method.prepare(model, train_set, cfg, store, progress)
    state = method.query_state(prepared, query, progress)
    whole = score_slice(method, prepared, state, 0, len(train_set), progress)
    return combine(method, prepared, state, [whole])
