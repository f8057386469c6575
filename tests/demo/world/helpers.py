"""Tiny models and tracks for fast demo-world and engine tests."""

from __future__ import annotations

from dataclasses import replace

from demo.world.corpus import COLLECTIONS_BY_FOLDER, Note, Work
from demo.world.model_config import ArchitectureConfig, TrainingConfig, model_config

TINY_ARCH = ArchitectureConfig(
    embed_dim=64,
    depth=1,
    num_heads=2,
    cond_dim=32,
    text_max_length=16,
    sample_size=4096,
    n_mels=16,
    n_fft=256,
    hop_length=64,
    dit_patch_size=2,
)  # 0.256 s at 16 kHz: 64 latent frames of 16 mel channels, 32 DiT tokens


def tiny_config(**training) -> dict:
    return model_config(
        TINY_ARCH, replace(TrainingConfig(), batch_size=2, warmup_steps=1, **training)
    )


def scale_work(folder: str = "bach", parts: int = 2, bars: int = 4) -> Work:
    """A made-up work: ascending scales in each part, quarter notes."""
    notes = []
    for part in range(parts):
        for i in range(4 * bars):
            notes.append(
                Note(
                    part=part,
                    pitch=60 - 12 * part + (i % 8),
                    onset_ql=float(i),
                    duration_ql=1.0,
                    velocity=90,
                )
            )
    assert folder in COLLECTIONS_BY_FOLDER
    return Work(
        work_id=f"{folder}/scales",
        corpus_path=f"{folder}/scales.mxl",
        folder=folder,
        title="Scales",
        composer="",
        key="C major",
        meter="4/4",
        tempo_qpm=120.0,
        part_count=parts,
        notes=tuple(notes),
    )
