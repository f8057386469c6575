"""A model checkpoint as the engine sees it: the stable-audio-tools module, its config, and the
content hash that keys every artifact computed from it (Fisher, theta0 losses, scores).

The hash covers the weights (every state-dict tensor: name, dtype, shape, bytes, in name order)
and the model config (canonical JSON), so two checkpoints with equal hashes compute equal
losses. Loading from disk goes through the demo world's `loading.load_model`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from attribution.engine.errors import EngineError

SUPPORTED_OBJECTIVES = ("v", "rectified_flow")
TIMESTEP_SAMPLERS = ("uniform", "logit_normal", "trunc_logit_normal", "log_snr")


@dataclass(eq=False)
class EngineModel:
    """A `diffusion_cond` model (ConditionedDiffusionModelWrapper), its config dict and hash."""

    module: torch.nn.Module
    config: dict[str, Any]
    checkpoint_sha256: str

    @property
    def device(self) -> str:
        """Where the weights are (the engine runs the model there)."""
        return str(next(self.module.parameters()).device)

    @property
    def dtype(self) -> str:
        """The floating-point type of the weights, e.g. "float32" (it changes every number)."""
        return str(next(self.module.parameters()).dtype).removeprefix("torch.")

    @property
    def sample_rate(self) -> int:
        return int(self.config["sample_rate"])

    @property
    def sample_size(self) -> int:
        """The longest audio (in samples) the model takes; shorter items are zero-padded."""
        return int(self.config["sample_size"])

    @property
    def audio_channels(self) -> int:
        return int(self.config.get("audio_channels", 2))

    @property
    def training(self) -> dict[str, Any]:
        """The config's "training" section; stable-audio-tools' defaults apply where absent."""
        return dict(self.config.get("training") or {})

    @property
    def timestep_sampler(self) -> str:
        return str(self.training.get("timestep_sampler", "uniform"))

    @property
    def timestep_sampler_options(self) -> dict[str, Any]:
        return dict(self.training.get("timestep_sampler_options") or {})

    @property
    def p_one_shot(self) -> float:
        return float(self.training.get("p_one_shot", 0.0))

    @property
    def attention_padding_mask(self) -> bool:
        """Whether training passed the padding mask to the transformer (`mask_padding`)."""
        return bool(self.training.get("mask_padding", False))

    @property
    def pre_encoded(self) -> bool:
        return bool(self.training.get("pre_encoded", False))


def state_sha256(module: torch.nn.Module, config: dict[str, Any]) -> str:
    """Content hash of a checkpoint: config (canonical JSON) + every state-dict tensor + the
    files of any frozen encoder kept outside the state dict."""
    digest = hashlib.sha256()
    digest.update(json.dumps(config, sort_keys=True, separators=(",", ":")).encode())
    for name, tensor in sorted(module.state_dict().items()):
        flat = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}|{flat.dtype}|{tuple(flat.shape)}|".encode())
        digest.update(flat.reshape(-1).view(torch.uint8).numpy().tobytes())  # (numel*itemsize,)
    for name, submodule in sorted(module.named_modules()):
        # frozen encoders read from their own files (t5_conditioner), outside the state_dict
        encoder = getattr(submodule, "frozen_encoder_sha256", None)
        if encoder is not None:
            digest.update(f"frozen encoder {name}|{encoder}".encode())
    return digest.hexdigest()


def engine_model_from_module(module: torch.nn.Module, config: dict[str, Any]) -> EngineModel:
    """Wrap an already built model (tests, notebooks); validates what the engine relies on."""
    model_type = config.get("model_type")
    if model_type != "diffusion_cond":
        raise EngineError(
            "The attribution engine needs a 'diffusion_cond' model; "
            f"this config is '{model_type}'.",
            field="checkpoint",
        )
    objective = getattr(module, "diffusion_objective", None)
    if objective not in SUPPORTED_OBJECTIVES:
        raise EngineError(
            f"Diffusion objective '{objective}' is not supported (only {SUPPORTED_OBJECTIVES}).",
            field="checkpoint",
        )
    sampler = (config.get("training") or {}).get("timestep_sampler", "uniform")
    if sampler not in TIMESTEP_SAMPLERS:
        raise EngineError(f"Unknown timestep sampler '{sampler}' in the model config.")
    for key in ("sample_rate", "sample_size"):
        if key not in config:
            raise EngineError(f"The model config has no '{key}'.", field="checkpoint")
    module.eval()
    return EngineModel(module=module, config=config, checkpoint_sha256=state_sha256(module, config))


def load_engine_model(
    checkpoint_dir: str | Path,
    device: str = "cpu",
    *,
    text_encoder_dirs: Sequence[str | Path] = (),
    weights_file: str | Path | None = None,
) -> EngineModel:
    """Load `model_config.json` + weights from a checkpoint folder, with readable errors.

    ``text_encoder_dirs``: where to look first for a text encoder the config names (a ``t5``
    prompt conditioner; see `t5_conditioner.encoder_folder`); ``weights_file``: the weights to
    read (default: the folder's model.safetensors, else model.ckpt)."""
    from attribution.engine.loading import load_model

    checkpoint_dir = Path(checkpoint_dir)
    if not (checkpoint_dir / "model_config.json").is_file():
        raise EngineError(
            f"No model_config.json in checkpoint folder {checkpoint_dir}.", field="checkpoint"
        )
    try:
        module, config = load_model(
            checkpoint_dir,
            device=device,
            text_encoder_dirs=text_encoder_dirs,
            weights_file=weights_file,
        )
    except EngineError:
        raise
    except (RuntimeError, KeyError, ValueError, OSError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise EngineError(
            f"The checkpoint in {checkpoint_dir} does not match its model config "
            f"(or cannot be read): {first_line}",
            field="checkpoint",
        ) from exc
    return engine_model_from_module(module, config)
