"""Per-checkpoint artifacts on disk: the training-set encodings, the diagonal Fisher
(Sec. 2.2), the theta0 losses (second term of Eq. 2), the first-order method's training
features and the gradient-similarity method's unwhitened ones (features.py), keyed by the
checkpoint's SHA-256 and verified on load.

Layout under the store root:
    <checkpoint_sha256>/encodings-<key>/chunk-*.pt  encoded items, 64 per file (read lazily)
    <checkpoint_sha256>/fisher-<key>/meta.json      what it was computed from, progress, file hash
    <checkpoint_sha256>/fisher-<key>/partial.pt     running float64 sums (while incomplete)
    <checkpoint_sha256>/fisher-<key>/fisher.pt      the finished Fisher (float32)
    <checkpoint_sha256>/losses-<key>/...            the same for the theta0 losses
    <checkpoint_sha256>/features-<key>/features.npy (N, k) float32, read memory-mapped
                                                    (features.partial.npy while incomplete)
    <checkpoint_sha256>/gradients-<key>/gradients.npy  the same, unwhitened (P gbar_i)
`<key>` hashes everything the artifact's numbers depend on: the training manifest hash, N, the
config fields of `EngineConfig.fisher_key` / `scoring_key` / `features_key` /
`gradients_key` (T, seed, timestep
sequence, masks, batch size, device; for the features also damping, target weights and the
projection), the weights' dtype, the torch version and the format version. (torch's CPU
thread count can change the last bits too; workers that share artifacts should set the same
ATTRIBUTION_TORCH_THREADS.) The store owns this layout:
callers ask it for an artifact or its file (`artifact_file`), never build the paths themselves.
Work is done in chunks of items; after each chunk the partial result is written atomically,
so an interrupted computation resumes where it stopped and ends bit-identical to an
uninterrupted one (partial sums are kept on CPU in the file and moved to the model's device to
continue). A finished artifact records the SHA-256 of its file; loading re-checks that and the
checkpoint hash, and refuses an artifact that belongs to another checkpoint. Every artifact the
store returns is on CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import EngineConfig
from attribution.engine.errors import ArtifactNotComputedError, EngineError
from attribution.engine.features import FeatureMap
from attribution.engine.fisher import (
    accumulate_fisher,
    block_parameters,
    empty_sums,
    finalize_fisher,
)
from attribution.engine.items import (
    EncodedItem,
    TrainingSet,
    encode_item,
    encode_items,
    file_sha256,
)
from attribution.engine.loss import Progress, item_loss

FORMAT_VERSION = 2
ENCODING_CHUNK = 64  # training items per stored chunk of encodings


def encoded_row(item: EncodedItem) -> dict[str, Any]:
    """An encoded item as stored (CPU tensors; the conditioner's output as it is)."""

    def to_cpu(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.detach().cpu()
        if isinstance(value, list | tuple):
            return type(value)(to_cpu(v) for v in value)
        if isinstance(value, dict):
            return {k: to_cpu(v) for k, v in value.items()}
        return value

    row = to_cpu(
        {
            "item_id": item.item_id,
            "latents": item.latents,
            "padding_mask": item.padding_mask,
            "conditioning": item.conditioning,
            "seconds_total": item.seconds_total,
        }
    )
    if item.more_windows:  # a one-window item is stored as before (the same bytes)
        row["more_windows"] = [encoded_row(window) for window in item.more_windows]
    return row


def encoded_item(row: dict[str, Any]) -> EncodedItem:
    """An encoded item from its stored row (`encoded_row`)."""
    more = tuple(encoded_item(window) for window in row.get("more_windows", ()))
    return EncodedItem(**{**row, "more_windows": more})


class EncodedItems(Sequence):
    """Stored encodings of a training set (`ArtifactStore.encodings`), read one chunk file at
    a time and checked against the hash recorded when it was written; the last chunk read is
    kept. Items come back on the device they were encoded on."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder, self.meta = folder, meta
        self.size = int(meta["chunk_items"])
        self.device = str(meta["key"]["device"])
        self._chunk: tuple[int, list[EncodedItem]] | None = None

    def __len__(self) -> int:
        return int(self.meta["items_total"])

    def _read(self, index: int) -> list[EncodedItem]:
        if self._chunk is None or self._chunk[0] != index:
            path = self.folder / f"chunk-{index:06d}.pt"
            if not path.is_file() or file_sha256(path) != self.meta["chunks"][index]:
                raise EngineError(
                    f"The stored encodings in {self.folder} are missing or corrupted."
                )
            rows = torch.load(path, map_location=self.device, weights_only=True)
            self._chunk = (index, [encoded_item(row) for row in rows])
        return self._chunk[1]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return self._read(index // self.size)[index % self.size]


def key_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _temporary_beside(path: Path) -> Path:
    """A temporary name next to `path`, unique per process and call, so that two workers
    writing the same artifact (a redelivered task) never write into one temporary file."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = _temporary_beside(path)
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = _temporary_beside(path)
    torch.save(obj, tmp)
    os.replace(tmp, path)


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Content hash of named tensors (name, dtype, shape and bytes, in name order), on CPU."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        flat = tensors[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{flat.dtype}|{tuple(flat.shape)}|".encode())
        digest.update(flat.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def array_sha256(values: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(values).tobytes()).hexdigest()


def write_json(path: Path, payload: dict[str, Any]) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=2, sort_keys=True).encode())


def verify_fisher_file(path: str | Path, model: EngineModel) -> dict[str, torch.Tensor]:
    """Load a finished Fisher artifact folder and check it belongs to `model`."""
    folder = Path(path)
    meta_path, data_path = folder / "meta.json", folder / "fisher.pt"
    if not meta_path.is_file() or not data_path.is_file():
        raise EngineError(f"{folder} is not a finished Fisher artifact.", field="fisher")
    meta = json.loads(meta_path.read_text())
    if meta.get("checkpoint_sha256") != model.checkpoint_sha256:
        raise EngineError(
            f"The Fisher artifact in {folder} was computed for checkpoint "
            f"{str(meta.get('checkpoint_sha256'))[:12]}, not for this checkpoint "
            f"({model.checkpoint_sha256[:12]}).",
            field="fisher",
        )
    if file_sha256(data_path) != meta.get("file_sha256"):
        raise EngineError(f"The Fisher artifact in {folder} is corrupted (hash mismatch).")
    fisher = torch.load(data_path, map_location="cpu", weights_only=True)
    params = block_parameters(model)
    if set(fisher) != set(params) or any(fisher[n].shape != params[n].shape for n in params):
        raise EngineError(f"The Fisher artifact in {folder} does not fit this model's weights.")
    return fisher


class ArtifactStore:
    """Per-checkpoint artifacts; `root=None` keeps them in memory only.

    `items` (the encoded training set) may be a callable: it is called only when an artifact
    has to be computed, so loading finished artifacts never encodes the training set.

    `fisher` and `base_losses` load a finished artifact, resume a partial one or compute it;
    with `compute=False` they refuse to compute (a worker scoring a run must find the
    artifacts its model version was prepared with, not silently make new ones).
    """

    FILES = {
        "fisher": "fisher.pt",
        "losses": "losses.npy",
        "features": "features.npy",
        "gradients": "gradients.npy",
    }

    def __init__(
        self, root: str | Path | None, chunk_items: int = 8, checkpoint_seconds: float = 0.0
    ) -> None:
        self.root = Path(root) if root is not None else None
        # Work goes in chunks of `chunk_items`; after a chunk, the partial result is written
        # when `checkpoint_seconds` have passed since the last write (0: after every chunk),
        # so a billion-weight Fisher is not rewritten every few items.
        self.chunk_items = chunk_items
        self.checkpoint_seconds = checkpoint_seconds
        self._last_checkpoint = time.monotonic()
        self.memory: dict[tuple, Any] = {}

    # keys and layout ----------------------------------------------------------------------
    @staticmethod
    def artifact_key(
        model: EngineModel, kind: str, train_set: TrainingSet, cfg: EngineConfig
    ) -> dict[str, Any]:
        """Everything the artifact's numbers depend on (see the module docstring)."""
        fields = {
            "fisher": cfg.fisher_key,
            "losses": cfg.scoring_key,
            "features": cfg.features_key,
            "gradients": cfg.gradients_key,
            "encodings": cfg.encoding_key,
        }[kind]()
        return {
            "format_version": FORMAT_VERSION,
            "manifest": train_set.manifest_sha256,
            "n": len(train_set),
            "dtype": model.dtype,
            # kernels change between releases; the same checkpoint may round differently
            "torch": torch.__version__,
            **fields,
        }

    def _folder(self, model: EngineModel, kind: str, key: dict[str, Any]) -> Path | None:
        if self.root is None:
            return None
        return self.root / model.checkpoint_sha256 / f"{kind}-{key_hash(key)}"

    def _work_folder(self, model: EngineModel, kind: str, key: dict[str, Any]) -> Path | None:
        folder = self._folder(model, kind, key)
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def artifact_file(
        self, model: EngineModel, kind: str, train_set: TrainingSet, cfg: EngineConfig
    ) -> Path | None:
        """The finished file of an artifact ("fisher", "losses", "features" or "gradients"),
        or None if not on disk."""
        folder = self._folder(model, kind, self.artifact_key(model, kind, train_set, cfg))
        if folder is None or not (folder / self.FILES[kind]).is_file():
            return None
        return folder / self.FILES[kind]

    def recorded_sha256(
        self, model: EngineModel, kind: str, train_set: TrainingSet, cfg: EngineConfig
    ) -> str | None:
        """The SHA-256 recorded for a finished artifact's file, or None if not on disk."""
        path = self.artifact_file(model, kind, train_set, cfg)
        if path is None:
            return None
        return json.loads((path.parent / "meta.json").read_text()).get("file_sha256")

    def _refuse_to_compute(self, what: str, model: EngineModel) -> EngineError:
        return ArtifactNotComputedError(
            f"The {what} of checkpoint {model.checkpoint_sha256[:12]} "
            f"{'have' if what.endswith('s') else 'has'} not been computed for "
            "this engine configuration; compute the model version's artifacts first.",
            field="model_version",
        )

    # encodings ------------------------------------------------------------------------------
    def encodings(
        self,
        model: EngineModel,
        train_set: TrainingSet,
        cfg: EngineConfig,
        progress: Progress | None = None,
    ) -> Sequence[EncodedItem]:
        """The training set encoded through the pretransform (latents, padding mask and the
        conditioner's output), computed once per (checkpoint, training set, seed, device).

        With a root, the encodings are stored in chunk files (resumably, a chunk at a time) and
        returned as `EncodedItems`, which reads a chunk only when one of its items is used: a
        worker scoring a slice reads that slice's chunks, whatever N is. Without a root they
        are encoded in memory. Encoding is cheap next to the other artifacts, so every
        caller may compute what is missing.
        """
        key = self.artifact_key(model, "encodings", train_set, cfg)
        memo = ("encoded", model.checkpoint_sha256, train_set.manifest_sha256, key_hash(key))
        if memo in self.memory:
            return self.memory[memo]
        for stale in [k for k in self.memory if k[0] == "encoded"]:
            del self.memory[stale]
        folder = self._folder(model, "encodings", key)
        if folder is None:
            self.memory[memo] = encode_items(model, train_set.items, cfg, progress)
            return self.memory[memo]
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if meta:
            self._check_meta(folder, meta, model)
        if meta.get("key") != key or meta.get("items_done", 0) < len(train_set):
            meta = self._encode_chunks(model, train_set, cfg, key, progress)
        self.memory[memo] = EncodedItems(folder, meta)
        return self.memory[memo]

    def _encode_chunks(
        self,
        model: EngineModel,
        train_set: TrainingSet,
        cfg: EngineConfig,
        key: dict[str, Any],
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Encode the items not stored yet, one chunk file at a time (resumable)."""
        folder = self._work_folder(model, "encodings", key)
        assert folder is not None
        meta_path = folder / "meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        if meta.get("key") != key:
            meta = {**self._meta(model, key, 0, len(train_set)), "chunk_items": ENCODING_CHUNK}
            meta["chunks"] = []
        size = int(meta["chunk_items"])
        done = int(meta["items_done"])
        while done < len(train_set):
            stop = min(done + size, len(train_set))
            rows = [
                encoded_row(encode_item(model, item, cfg)) for item in train_set.items[done:stop]
            ]
            path = folder / f"chunk-{done // size:06d}.pt"
            atomic_torch_save(rows, path)
            meta["chunks"].append(file_sha256(path))
            done = meta["items_done"] = stop
            write_json(meta_path, meta)
            if progress is not None:
                progress("encode", done, len(train_set))
        return meta

    # Fisher (Sec. 2.2) -------------------------------------------------------------------
    def fisher(
        self,
        model: EngineModel,
        items: list[EncodedItem] | Callable[[], list[EncodedItem]],
        train_set: TrainingSet,
        cfg: EngineConfig,
        progress: Progress | None = None,
        *,
        compute: bool = True,
    ) -> dict[str, torch.Tensor]:
        """The Fisher for (checkpoint, training set, config): loaded, resumed or computed; CPU."""
        key = self.artifact_key(model, "fisher", train_set, cfg)
        memo = ("fisher", model.checkpoint_sha256, key_hash(key))
        if memo in self.memory:
            return self.memory[memo]
        folder = self._folder(model, "fisher", key)
        if folder is not None and (folder / "fisher.pt").is_file():
            fisher = verify_fisher_file(folder, model)
            self.memory[memo] = fisher
            return fisher
        if not compute:
            raise self._refuse_to_compute("Fisher", model)
        items = items() if callable(items) else items
        folder = self._work_folder(model, "fisher", key)
        device = model.device
        sums, done = self._resume(folder, model, key, device)
        if sums is None:
            sums = empty_sums(model)
        while done < len(items):
            stop = min(done + self.chunk_items, len(items))
            accumulate_fisher(model, items, cfg, sums, done, stop, progress)
            done = stop
            if folder is not None and self._checkpoint_due(done, len(items)):
                cpu_sums = {name: value.cpu() for name, value in sums.items()}
                atomic_torch_save({"sums": cpu_sums, "done": done}, folder / "partial.pt")
                write_json(folder / "meta.json", self._meta(model, key, done, len(items)))
        fisher = finalize_fisher(sums, len(items), cfg.fisher_timesteps)
        if folder is not None:
            atomic_torch_save(fisher, folder / "fisher.pt")
            meta = self._meta(model, key, done, len(items))
            meta["file_sha256"] = file_sha256(folder / "fisher.pt")
            write_json(folder / "meta.json", meta)
            (folder / "partial.pt").unlink(missing_ok=True)
        self.memory[memo] = fisher
        return fisher

    # theta0 losses (Eq. 2, second term) ------------------------------------------------------
    def base_losses(
        self,
        model: EngineModel,
        items: list[EncodedItem] | Callable[[], list[EncodedItem]],
        train_set: TrainingSet,
        cfg: EngineConfig,
        progress: Progress | None = None,
        *,
        compute: bool = True,
    ) -> np.ndarray:
        """L(z_i, theta0) for every training item, shape (N,): loaded, resumed or computed."""
        key = self.artifact_key(model, "losses", train_set, cfg)
        memo = ("losses", model.checkpoint_sha256, key_hash(key))
        if memo in self.memory:
            return self.memory[memo]
        folder = self._folder(model, "losses", key)
        if folder is not None and (folder / "losses.npy").is_file():
            losses = self._load_array(folder, "losses.npy", model, "theta0-loss")
            self.memory[memo] = losses
            return losses
        if not compute:
            raise self._refuse_to_compute("theta0 losses", model)
        items = items() if callable(items) else items
        folder = self._work_folder(model, "losses", key)
        losses, done = self._resume(folder, model, key, "cpu")
        if losses is None:
            losses = np.full(len(items), np.nan)
        while done < len(items):
            stop = min(done + self.chunk_items, len(items))
            for position in range(done, stop):
                losses[position] = item_loss(
                    model,
                    items[position],
                    cfg,
                    stream="score",
                    timesteps=cfg.score_timesteps,
                    mask=cfg.loss_mask,
                )
                if progress is not None:
                    progress("base_losses", position + 1, len(items))
            done = stop
            if folder is not None and self._checkpoint_due(done, len(items)):
                atomic_torch_save({"sums": losses, "done": done}, folder / "partial.pt")
                write_json(folder / "meta.json", self._meta(model, key, done, len(items)))
        if folder is not None:
            np.save(folder / "losses.npy", losses)
            meta = self._meta(model, key, done, len(items))
            meta["file_sha256"] = file_sha256(folder / "losses.npy")
            write_json(folder / "meta.json", meta)
            (folder / "partial.pt").unlink(missing_ok=True)
        self.memory[memo] = losses
        return losses

    # first-order features and unwhitened gradients (features.py) ----------------------------
    def features(
        self,
        model: EngineModel,
        items: list[EncodedItem] | Callable[[], list[EncodedItem]],
        train_set: TrainingSet,
        cfg: EngineConfig,
        progress: Progress | None = None,
        *,
        compute: bool = True,
        whitened: bool = True,
    ) -> np.ndarray:
        """phi_i for every training item, shape (N, k) float32, memory-mapped from disk (rows
        are read only when used): loaded, resumed or computed. Needs the Fisher (whitening).

        With `whitened=False`, the same projection of the unwhitened gradients, P gbar_i
        (kind "gradients", the gradient-similarity method's; no Fisher needed)."""
        kind = "features" if whitened else "gradients"
        key = self.artifact_key(model, kind, train_set, cfg)
        memo = (kind, model.checkpoint_sha256, key_hash(key))
        if memo in self.memory:
            return self.memory[memo]
        folder = self._folder(model, kind, key)
        if folder is not None and (folder / self.FILES[kind]).is_file():
            features = self._load_array(
                folder, self.FILES[kind], model, kind.removesuffix("s"), mmap=True
            )
            self.memory[memo] = features
            return features
        if not compute:
            what = "first-order features" if whitened else "unwhitened gradient features"
            raise self._refuse_to_compute(what, model)
        fisher = self.fisher(model, items, train_set, cfg, progress) if whitened else None
        items = items() if callable(items) else items
        feature_map = FeatureMap(model, fisher, cfg)
        shape = (len(items), feature_map.dim)
        folder = self._work_folder(model, kind, key)
        done = 0
        if folder is None:
            rows = np.empty(shape, dtype=np.float32)
        else:
            partial = folder / f"{kind}.partial.npy"
            meta_path = folder / "meta.json"
            resumable = partial.is_file() and meta_path.is_file()
            if resumable:
                meta = json.loads(meta_path.read_text())
                self._check_meta(folder, meta, model)
                resumable = meta.get("key") == key
            if resumable:
                rows = np.load(partial, mmap_mode="r+")
                done = int(meta["items_done"])
            else:
                rows = np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=shape)
        while done < len(items):
            stop = min(done + self.chunk_items, len(items))
            for position in range(done, stop):
                rows[position] = feature_map.item(items[position]).numpy()
                if progress is not None:
                    progress(kind, position + 1, len(items))
            done = stop
            if folder is not None and self._checkpoint_due(done, len(items)):
                rows.flush()
                write_json(folder / "meta.json", self._meta(model, key, done, len(items)))
        if folder is not None:
            del rows
            os.replace(folder / f"{kind}.partial.npy", folder / self.FILES[kind])
            meta = self._meta(model, key, done, len(items))
            meta["file_sha256"] = file_sha256(folder / self.FILES[kind])
            meta["projection_dim"] = shape[1]
            write_json(folder / "meta.json", meta)
            rows = np.load(folder / self.FILES[kind], mmap_mode="r")
        self.memory[memo] = rows
        return rows

    def _checkpoint_due(self, done: int, total: int) -> bool:
        """Whether to write the partial result now (never after the last chunk: the finished
        artifact is written instead)."""
        now = time.monotonic()
        if done >= total:
            return False
        if now - self._last_checkpoint >= self.checkpoint_seconds:
            self._last_checkpoint = now
            return True
        return False

    def _load_array(
        self, folder: Path, name: str, model: EngineModel, what: str, *, mmap: bool = False
    ) -> np.ndarray:
        """A finished .npy artifact, checked against its checkpoint and recorded hash."""
        meta = json.loads((folder / "meta.json").read_text())
        self._check_meta(folder, meta, model)
        if file_sha256(folder / name) != meta.get("file_sha256"):
            raise EngineError(f"The {what} artifact in {folder} is corrupted.")
        return np.load(folder / name, mmap_mode="r" if mmap else None)

    # helpers --------------------------------------------------------------------------------
    def _meta(self, model: EngineModel, key: dict, done: int, total: int) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "checkpoint_sha256": model.checkpoint_sha256,
            "key": key,
            "items_done": done,
            "items_total": total,
        }

    def _check_meta(self, folder: Path, meta: dict[str, Any], model: EngineModel) -> None:
        if meta.get("checkpoint_sha256") != model.checkpoint_sha256:
            raise EngineError(
                f"The artifact in {folder} belongs to checkpoint "
                f"{str(meta.get('checkpoint_sha256'))[:12]}, not {model.checkpoint_sha256[:12]}."
            )

    def _resume(self, folder: Path | None, model: EngineModel, key: dict, device: str):
        """(partial sums moved to `device`, items done), or (None, 0) when there is none."""
        if folder is None:
            return None, 0
        partial, meta_path = folder / "partial.pt", folder / "meta.json"
        if partial.is_file() and meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            self._check_meta(folder, meta, model)
            if meta.get("key") == key:
                state = torch.load(partial, map_location="cpu", weights_only=False)
                sums = state["sums"]
                if isinstance(sums, dict):
                    sums = {name: value.to(device) for name, value in sums.items()}
                return sums, int(state["done"])
        return None, 0
