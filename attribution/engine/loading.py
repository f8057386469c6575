"""stable-audio-tools checkpoint directory -> model.

A checkpoint directory holds ``model_config.json`` and ``model.safetensors`` (or
``model.ckpt``), the layout Stable Audio Open ships and the demo world writes. The model is
built with stable-audio-tools' ``create_model_from_config``; conditioner and pretransform
types its factory does not know (the offline ``minilm_text`` encoder, the training-free
``log_mel`` pretransform) or would download (the ``t5`` prompt encoder, read here from a local
folder: ``t5_conditioner``) are built here and inserted into ``model.conditioner.conditioners``
and ``model.pretransform``.

Weights are read as stable-audio-tools' own loader reads a release: ``model.safetensors`` with
the model wrapper's names (``model.``, ``conditioner.``, ``pretransform.``), or a
``model.ckpt`` holding them under ``state_dict``; a training checkpoint (the training wrapper's
``diffusion.`` names) is read through that prefix. They are loaded strictly: a checkpoint that
does not match its config is refused with the keys that differ.
"""

from __future__ import annotations

import copy
import functools
import json
import typing as tp
from pathlib import Path

import torch

from attribution.engine.memory import return_freed_memory

CONFIG_NAME = "model_config.json"
WEIGHT_NAMES = ("model.safetensors", "model.ckpt")


class CheckpointError(ValueError):
    """The directory is not a loadable stable-audio-tools checkpoint."""


TRAINING_WRAPPER_PREFIX = "diffusion."  # DiffusionCondTrainingWrapper.diffusion


def _custom_conditioners(
    text_encoder_dirs: tp.Sequence[str | Path], checkpoint_dir: str | Path | None
) -> dict[str, tp.Callable[[dict, int], torch.nn.Module]]:
    from attribution.engine import t5_conditioner, text_conditioner

    return {
        text_conditioner.CONDITIONER_TYPE: text_conditioner.make_conditioner,
        t5_conditioner.CONDITIONER_TYPE: functools.partial(
            t5_conditioner.make_conditioner,
            text_encoder_dirs=text_encoder_dirs,
            checkpoint_dir=checkpoint_dir,
        ),
    }


def _custom_pretransforms() -> dict[str, tp.Callable[[dict, int], torch.nn.Module]]:
    from attribution.engine import mel_pretransform

    return {mel_pretransform.PRETRANSFORM_TYPE: mel_pretransform.make_pretransform}


def build_model(
    model_config: dict[str, tp.Any],
    *,
    text_encoder_dirs: tp.Sequence[str | Path] = (),
    checkpoint_dir: str | Path | None = None,
) -> torch.nn.Module:
    """Create the (randomly initialised) model a config describes, custom parts included.

    ``text_encoder_dirs`` and ``checkpoint_dir`` are where a ``t5`` conditioner's encoder is
    looked for (``t5_conditioner.encoder_folder``)."""
    from stable_audio_tools.models.factory import create_model_from_config

    custom_types = _custom_conditioners(text_encoder_dirs, checkpoint_dir)
    config = copy.deepcopy(model_config)
    pretransform_info = config.get("model", {}).get("pretransform")
    pretransform_maker = _custom_pretransforms().get((pretransform_info or {}).get("type"))
    if pretransform_maker is not None:
        del config["model"]["pretransform"]
    conditioning = config.get("model", {}).get("conditioning")
    custom: list[dict] = []
    if conditioning is not None:
        custom = [c for c in conditioning.get("configs", []) if c.get("type") in custom_types]
        conditioning["configs"] = [
            c for c in conditioning.get("configs", []) if c.get("type") not in custom_types
        ]
    model = create_model_from_config(config)
    if pretransform_maker is not None:
        pretransform = pretransform_maker(pretransform_info, int(config["sample_rate"]))
        pretransform.eval().requires_grad_(False)  # as the factory leaves its own
        model.pretransform = pretransform
        model.min_input_length = pretransform.downsampling_ratio
    for info in custom:
        model.conditioner.conditioners[info["id"]] = custom_types[info["type"]](
            info, conditioning["cond_dim"]
        )
    return model


def read_config(checkpoint_dir: Path) -> dict[str, tp.Any]:
    path = Path(checkpoint_dir) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{checkpoint_dir} has no {CONFIG_NAME}")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path} is not valid JSON: {exc}") from exc
    for key in ("model_type", "sample_rate", "sample_size", "model"):
        if key not in config:
            raise CheckpointError(
                f"{path} lacks '{key}', so it is not a stable-audio-tools model config"
            )
    return config


def weights_path(checkpoint_dir: Path) -> Path:
    for name in WEIGHT_NAMES:
        path = Path(checkpoint_dir) / name
        if path.is_file():
            return path
    raise CheckpointError(f"{checkpoint_dir} has no weights file ({' or '.join(WEIGHT_NAMES)})")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or truncated files raise many types
        raise CheckpointError(f"cannot read weights from {path}: {exc}") from exc
    return state.get("state_dict", state)


def unwrap_state_dict(
    state: dict[str, torch.Tensor], expected: tp.Collection[str]
) -> dict[str, torch.Tensor]:
    """The model's weights from a training checkpoint (names under the training wrapper's
    ``diffusion.``; its EMA copy and optimiser state are left out), or ``state`` as it is."""
    if any(name in expected for name in state):
        return state
    inner = {
        name[len(TRAINING_WRAPPER_PREFIX) :]: tensor
        for name, tensor in state.items()
        if name.startswith(TRAINING_WRAPPER_PREFIX)
    }
    return inner if inner else state


def load_model(
    checkpoint_dir: str | Path,
    device: str | torch.device = "cpu",
    *,
    text_encoder_dirs: tp.Sequence[str | Path] = (),
    weights_file: str | Path | None = None,
) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode on ``device``, model_config) from a checkpoint directory; the
    weights from ``weights_file`` (the one a registration hashed) or the first of
    WEIGHT_NAMES there."""
    checkpoint_dir = Path(checkpoint_dir)
    if not checkpoint_dir.is_dir():
        raise CheckpointError(f"{checkpoint_dir} is not a directory")
    config = read_config(checkpoint_dir)
    weights = Path(weights_file) if weights_file is not None else weights_path(checkpoint_dir)
    if not weights.is_file():
        raise CheckpointError(f"{weights} is not a file")
    try:
        model = build_model(
            config, text_encoder_dirs=text_encoder_dirs, checkpoint_dir=checkpoint_dir
        )
    except (KeyError, AssertionError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{checkpoint_dir / CONFIG_NAME} does not describe a buildable model: {exc!r}"
        ) from exc
    expected = model.state_dict()
    state = unwrap_state_dict(read_state_dict(weights), expected)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape)
    )
    if missing or unexpected or mismatched:
        parts = []
        for label, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("wrong shape", mismatched),
        ):
            if keys:
                parts.append(f"{len(keys)} {label} (e.g. {', '.join(keys[:3])})")
        raise CheckpointError(f"{weights} does not match {CONFIG_NAME}: " + "; ".join(parts))
    # The read tensors become the weights (assign): a billion-weight model is not held twice.
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    del expected
    model.load_state_dict(state, strict=True, assign=True)
    del state
    return_freed_memory()  # the random weights just replaced: gigabytes at full size
    return model.to(device).eval(), config
