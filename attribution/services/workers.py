"""The engine inside a worker process: one loaded model version at a time.

Loading a checkpoint and its training set costs seconds to minutes, so a worker keeps the
last model version it loaded (`LoadedModel`), with its artifact store, the stages it prepared
for one (method, engine config) and the last query state it read. Memory stays that of one
model version: a different model version, or the same on another device, replaces it, and
preparing another config drops the first one's artifacts from memory.
"""

from __future__ import annotations

import gc
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from attribution.models import AttributionRun, ModelVersion
from catalog.audio import file_sha256
from core.exceptions import ApplicationError


def engine_config_from(values: dict[str, Any], *, what: str):
    """An `EngineConfig` from recorded or configured values, refused with a readable message."""
    from attribution.engine.config import EngineConfig

    try:
        return EngineConfig(**values)
    except (TypeError, AssertionError) as exc:
        raise ApplicationError(
            f"The engine configuration of {what} is not valid ({exc or 'a value is out of range'})."
        ) from exc


def text_encoder_dirs() -> list[Path]:
    """Where the engine looks first for a text encoder a model config names."""
    return [Path(settings.ATTRIBUTION_TEXT_ENCODER_DIR)]


def engine_config():
    """The configuration new runs record: the paper's defaults, overridden by
    ATTRIBUTION_ENGINE."""
    return engine_config_from(settings.ATTRIBUTION_ENGINE, what="ATTRIBUTION_ENGINE")


def configured_method():
    """The attribution method new runs record (ATTRIBUTION_METHOD)."""
    return method_for(settings.ATTRIBUTION_METHOD)


def method_for(name: str):
    from attribution.engine.errors import EngineError
    from attribution.engine.methods import method_named

    try:
        return method_named(name)
    except EngineError as exc:
        raise ApplicationError(str(exc), field="method") from exc


def run_engine_config(run: AttributionRun):
    """The engine configuration a run recorded when it was queued: every step of it uses this
    one, whatever the worker's own ATTRIBUTION_ENGINE says."""
    return engine_config_from(run.engine_config, what=f"attribution run {run.pk}")


class ArtifactsNotReadyError(ApplicationError):
    """The model version's artifacts do not exist for the engine configuration a run uses."""


@dataclass
class LoadedModel:
    """A model version loaded in this worker: model, training set, artifact store, and what was
    prepared from them."""

    model: Any  # engine.checkpoint.EngineModel
    train_set: Any  # engine.items.TrainingSet
    store: Any  # engine.artifacts.ArtifactStore
    prepared: dict[str, Any] = field(default_factory=dict)  # engine.pipeline.Prepared
    query_state: tuple[str, Any] | None = None  # (sha256, engine.pipeline.QueryState)

    def prepare(self, method, cfg, progress=None, *, compute: bool):
        """The method's prepare stage for `cfg`, memoised (one config at a time: the artifacts
        of another config are dropped from memory, the training-set encodings are kept)."""
        from attribution.engine.errors import ArtifactNotComputedError, EngineError
        from attribution.engine.pipeline import configure_arithmetic

        configure_arithmetic(cfg)
        key = method.name + json.dumps(cfg.to_dict(), sort_keys=True)
        if key not in self.prepared:
            self.prepared.clear()
            for stale in [k for k in self.store.memory if k[0] != "encoded"]:
                del self.store.memory[stale]
            try:
                prepared = method.prepare(
                    self.model, self.train_set, cfg, self.store, progress, compute=compute
                )
            except ArtifactNotComputedError as exc:
                raise ArtifactsNotReadyError(str(exc), field="model_version") from exc
            except EngineError as exc:
                raise ApplicationError(str(exc), field="model_version") from exc
            self.prepared[key] = prepared
        return self.prepared[key]

    def load_query_state(self, path: str, sha256: str):
        """A run's query state, read once per worker (every shard of the run needs it)."""
        from attribution.engine.errors import EngineError
        from attribution.engine.pipeline import QueryState

        if self.query_state is None or self.query_state[0] != sha256:
            try:
                self.query_state = (sha256, QueryState.load(path, sha256))
            except EngineError as exc:
                raise ApplicationError(f"{exc} Re-run the attribution.") from exc
        return self.query_state[1]


_LOADED: dict[tuple[str, str], LoadedModel] = {}


def artifact_root() -> Path:
    return Path(settings.ARTIFACTS_DIR) / "engine"


def loaded_model_for(model_version: ModelVersion, *, device: str) -> LoadedModel:
    """Load a model version's model and training set on `device`, reusing this worker's last.

    Raises ``ApplicationError`` naming what is missing or inconsistent (checkpoint, manifest,
    training set).
    """
    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.errors import EngineError
    from attribution.engine.items import load_training_set

    key = (model_version.checkpoint_sha256, device)
    loaded = _LOADED.get(key)
    if loaded is not None:
        return loaded
    loaded_models_clear()
    if settings.ATTRIBUTION_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.ATTRIBUTION_TORCH_THREADS)

    # The catalog records the weights file; its folder holds the config and manifest.
    checkpoint = Path(model_version.checkpoint_path)
    folder = checkpoint.parent
    manifest = folder / "training_manifest.json"
    missing = [str(path) for path in (checkpoint, manifest) if not path.is_file()]
    if missing:
        raise ApplicationError(
            f"Model version {model_version.name!r} is missing {', '.join(missing)}.",
            field="model_version",
        )
    if file_sha256(checkpoint) != model_version.checkpoint_sha256:
        raise ApplicationError(
            f"The checkpoint file of model version {model_version.name!r} changed after it "
            "was registered (its SHA-256 no longer matches).",
            field="model_version",
        )
    positions = list(
        model_version.training_set_entries.order_by("position").values_list(
            "recording__isrc", flat=True
        )
    )
    if not positions:
        raise ApplicationError(
            f"Model version {model_version.name!r} has no training set registered.",
            field="model_version",
        )
    try:
        model = load_engine_model(
            folder,
            device=device,
            text_encoder_dirs=text_encoder_dirs(),
            weights_file=checkpoint,  # the file whose hash was checked above
        )
        train_set = load_training_set(manifest, model)
    except EngineError as exc:
        raise ApplicationError(str(exc), field="model_version") from exc
    manifest_isrcs = [str(item.metadata.get("isrc", "")) for item in train_set.items]
    if manifest_isrcs != positions:
        raise ApplicationError(
            f"The training manifest of model version {model_version.name!r} no longer "
            "matches its registered training set (order or recordings differ).",
            field="model_version",
        )
    loaded = LoadedModel(
        model=model,
        train_set=train_set,
        # one item per chunk, written every ATTRIBUTION_CHECKPOINT_SECONDS
        store=ArtifactStore(
            artifact_root(),
            chunk_items=1,
            checkpoint_seconds=float(settings.ATTRIBUTION_CHECKPOINT_SECONDS),
        ),
    )
    _LOADED[key] = loaded
    return loaded


def loaded_models_clear() -> None:
    """Forget the loaded model (tests; a worker that must release memory)."""
    _LOADED.clear()
    gc.collect()
