"""stable-audio-tools' ``t5`` prompt conditioner, loaded from a local folder, never the network.

Stable Audio Open's config names its prompt encoder by Hugging Face repository
(``"t5_model_name": "t5-base"``), and stable-audio-tools' ``T5Conditioner`` downloads it on
construction. Here the same encoder is read from a folder on disk, with the hub offline:

1. each folder of ``text_encoder_dirs`` (the platform passes ``ATTRIBUTION_TEXT_ENCODER_DIR``)
   and of the ``ATTRIBUTION_TEXT_ENCODER_DIR`` environment variable (``os.pathsep``-separated),
   as ``<folder>/<name>`` (``/`` in the name may be written ``--``);
2. ``text_encoders/<name>`` inside the checkpoint folder;
3. the Hugging Face cache (``HF_HUB_CACHE``), under the name or its ``google-t5/`` alias.

A folder qualifies when it holds ``config.json``, weights (``model.safetensors`` or
``pytorch_model.bin``) and a tokenizer (``tokenizer.json``): what ``save_pretrained`` writes and
what a hub snapshot of ``t5-base`` holds. Otherwise `TextEncoderMissingError` names every
place it looked and how to provide the encoder.

The module mirrors ``T5Conditioner`` exactly, so a published checkpoint's weights and its
conditioning are the ones it was trained with: the encoder in float16 outside the state_dict
(frozen), the ``proj_out`` of the base class (Identity for t5-base at cond_dim 768), the
last hidden state times the attention mask. Frozen and deterministic, its outputs are
cached per text (the recent ones). Being outside the state_dict, the encoder's files are
hashed into the checkpoint's hash instead (`frozen_encoder_sha256`), so another T5 folder
gives another checkpoint and none of the first one's artifacts.
"""

from __future__ import annotations

import hashlib
import os
import typing as tp
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from stable_audio_tools.models.conditioners import Conditioner, T5Conditioner

from attribution.engine.errors import EngineError

CONDITIONER_TYPE = "t5"
ENVIRONMENT_VARIABLE = "ATTRIBUTION_TEXT_ENCODER_DIR"
CHECKPOINT_SUBFOLDER = "text_encoders"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILE = "tokenizer.json"
# Texts whose encoder outputs are kept (about 192 KiB each at t5-base's width and 128 tokens):
# the prompts of work in flight. Training captions are encoded once per checkpoint and stored
# with the training-set encodings, so they need no cache.
CACHE_TEXTS = 256


class TextEncoderMissingError(EngineError):
    """The text encoder a model config names is not on disk where the engine looks."""


@dataclass(frozen=True)
class T5Options:
    output_dim: int  # cond_dim of the model
    t5_model_name: str = "t5-base"
    max_length: int = 128
    enable_grad: bool = False
    project_out: bool = False


def _is_encoder_folder(path: Path) -> bool:
    return (
        (path / "config.json").is_file()
        and (path / TOKENIZER_FILE).is_file()
        and any((path / name).is_file() for name in WEIGHT_FILES)
    )


def _hub_names(name: str) -> list[str]:
    # t5-base and its siblings moved to the google-t5 organisation; caches may hold either.
    return [name] + ([f"google-t5/{name}"] if "/" not in name else [])


def _cached_snapshot(repo_id: str) -> Path | None:
    """The Hugging Face cache's snapshot folder of ``repo_id``, or None (never downloads)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):  # not cached, or not a repo id
        return None


def _hub_snapshot(name: str) -> tuple[Path | None, list[str]]:
    """(a cached snapshot folder of the repository or None, the cache places looked in)."""
    from huggingface_hub import constants

    looked = []
    for repo_id in _hub_names(name):
        looked.append(str(Path(constants.HF_HUB_CACHE) / f"models--{repo_id.replace('/', '--')}"))
        folder = _cached_snapshot(repo_id)
        if folder is not None and _is_encoder_folder(folder):
            return folder, looked
    return None, looked


def search_dirs(text_encoder_dirs: tp.Sequence[str | Path] = ()) -> list[Path]:
    """The folders of step 1, in order: those passed, then the environment variable's."""
    from_env = [p for p in os.environ.get(ENVIRONMENT_VARIABLE, "").split(os.pathsep) if p]
    return [Path(p) for p in [*text_encoder_dirs, *from_env]]


def encoder_folder(
    name: str,
    *,
    text_encoder_dirs: tp.Sequence[str | Path] = (),
    checkpoint_dir: str | Path | None = None,
) -> Path:
    """The local folder of text encoder ``name`` (see the module docstring for the order)."""
    candidates = []
    for folder in search_dirs(text_encoder_dirs):
        candidates += [folder / name, folder / name.replace("/", "--")]
    if checkpoint_dir is not None:
        candidates.append(Path(checkpoint_dir) / CHECKPOINT_SUBFOLDER / name.replace("/", "--"))
    for candidate in dict.fromkeys(candidates):  # in order, without repeats
        if _is_encoder_folder(candidate):
            return candidate
    snapshot, cache_places = _hub_snapshot(name)
    if snapshot is not None:
        return snapshot
    looked = [str(c) for c in dict.fromkeys(candidates)] + cache_places
    raise TextEncoderMissingError(
        f"The model config's prompt conditioner needs the text encoder {name!r}, which is not "
        f"on this machine (nothing is downloaded). Looked in: {'; '.join(looked)}. Provide it "
        f"as a folder with config.json, {' or '.join(WEIGHT_FILES)} and {TOKENIZER_FILE} (a "
        f"Hugging Face snapshot of {name}, or what save_pretrained writes) at "
        f"<folder>/{name.replace('/', '--')}, with <folder> set in {ENVIRONMENT_VARIABLE}, "
        f"or at {CHECKPOINT_SUBFOLDER}/{name.replace('/', '--')} inside the checkpoint folder; "
        "see docs/operations.md, 'Bringing a Stable Audio Open checkpoint'.",
        field="checkpoint",
    )


def folder_sha256(folder: Path) -> str:
    """SHA-256 over the encoder's files (names and bytes, in name order): its identity, which
    the state_dict does not hold."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(folder).iterdir() if p.is_file()):
        digest.update(f"{path.name}|".encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _load_encoder(folder: Path) -> tuple[tp.Any, tp.Any]:
    """(tokenizer, T5EncoderModel) from ``folder`` with the hub offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer, T5EncoderModel
    from transformers.utils import logging as hf_logging

    previous, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        model = T5EncoderModel.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise TextEncoderMissingError(
            f"The text encoder in {folder} cannot be loaded: {exc}", field="checkpoint"
        ) from exc
    finally:
        hf_logging.set_verbosity(previous)
        if bars:
            hf_logging.enable_progress_bar()
    return tokenizer, model


class LocalT5Conditioner(Conditioner):
    """texts -> [embeddings (B, L, output_dim), mask (B, L) bool], L = max_length; the
    computation of stable-audio-tools' ``T5Conditioner.forward``."""

    def __init__(self, options: T5Options, folder: Path):
        tokenizer, model = _load_encoder(folder)
        dim = int(model.config.d_model)
        expected = T5Conditioner.T5_MODEL_DIMS.get(options.t5_model_name)
        if expected is not None and dim != expected:
            raise EngineError(
                f"The text encoder in {folder} has width {dim}; {options.t5_model_name} has "
                f"{expected}.",
                field="checkpoint",
            )
        super().__init__(dim, options.output_dim, project_out=options.project_out)
        self.max_length = options.max_length
        self.enable_grad = options.enable_grad
        self.tokenizer = tokenizer
        self.encoder_folder = str(folder)
        model = model.train(options.enable_grad).requires_grad_(options.enable_grad)
        model = model.to(torch.float16)  # as T5Conditioner: the weights training saw
        if options.enable_grad:
            self.model = model
        else:
            self.__dict__["model"] = model  # frozen, outside the state_dict
        self.frozen_encoder_sha256 = folder_sha256(folder)  # in the checkpoint's hash
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()

    def _run(self, texts: list[str], device: torch.device | str) -> tuple[torch.Tensor, ...]:
        self.model.to(device)
        self.model.eval()
        encoded = self.tokenizer(
            texts,
            truncation=True,
            max_length=self.max_length,
            padding="max_length",
            return_tensors="pt",
        )
        input_ids = encoded["input_ids"].to(device)  # (B, L)
        mask = encoded["attention_mask"].to(device).to(torch.bool)  # (B, L)
        with torch.set_grad_enabled(self.enable_grad):
            hidden = self.model(input_ids=input_ids, attention_mask=mask)["last_hidden_state"]
        return hidden, mask  # (B, L, dim) float16, (B, L) bool

    def encode(self, texts: list[str], device: torch.device | str) -> tuple[torch.Tensor, ...]:
        """Last hidden states (B, L, dim) float16 and attention mask (B, L) bool on `device`."""
        if self.enable_grad:  # a trainable encoder: nothing may be cached
            return self._run(texts, device)
        missing = sorted({t for t in texts if t not in self._cache})
        found = {t: self._cache[t] for t in texts if t in self._cache}
        if missing:
            hidden, mask = self._run(missing, device)
            for i, text in enumerate(missing):
                found[text] = self._cache[text] = (hidden[i].detach(), mask[i])
        for text in texts:  # most recently used last; the oldest beyond the bound go
            self._cache.move_to_end(text)
        while len(self._cache) > CACHE_TEXTS:
            self._cache.popitem(last=False)
        hidden = torch.stack([found[t][0] for t in texts]).to(device)  # (B, L, dim)
        mask = torch.stack([found[t][1] for t in texts]).to(device)  # (B, L)
        return hidden, mask

    def forward(self, texts: list[str], device: torch.device | str) -> list[torch.Tensor]:
        texts = [str(t) for t in texts]
        self.proj_out.to(device)
        embeddings, mask = self.encode(texts, device)
        if not isinstance(self.proj_out, torch.nn.Identity):
            embeddings = embeddings.to(next(self.proj_out.parameters()).dtype)
        embeddings = self.proj_out(embeddings)  # (B, L, output_dim)
        embeddings = embeddings * mask.unsqueeze(-1).float()
        return [embeddings, mask]


def make_conditioner(
    conditioner_info: dict[str, tp.Any],
    cond_dim: int,
    *,
    text_encoder_dirs: tp.Sequence[str | Path] = (),
    checkpoint_dir: str | Path | None = None,
) -> LocalT5Conditioner:
    """Build from a conditioning entry ``{"id", "type": "t5", "config": {...}}``."""
    config = {"output_dim": cond_dim, **conditioner_info.get("config", {})}
    unknown = set(config) - set(T5Options.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown option(s) for a t5 conditioner: {sorted(unknown)}")
    options = T5Options(**config)
    folder = encoder_folder(
        options.t5_model_name, text_encoder_dirs=text_encoder_dirs, checkpoint_dir=checkpoint_dir
    )
    return LocalT5Conditioner(options, folder)
