"""The demo's stable-audio-tools model config: a small text- and timing-conditioned DiT.

Sized so that the attribution engine can take per-sample gradients for every training track
on a CPU in minutes: 6.144 s windows at 16 kHz, encoded by the training-free ``log_mel``
pretransform (``attribution/engine/mel_pretransform.py``) into 192 latent frames of 64 mel
channels, which the DiT groups in pairs (its ``patch_size``) into 96 tokens.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from attribution.engine import mel_pretransform

SAMPLE_RATE = 16000
HOP_LENGTH = 512
LATENT_FRAMES = 192
SAMPLE_SIZE = HOP_LENGTH * LATENT_FRAMES  # 98304 samples = 6.144 s


@dataclass(frozen=True)
class TrainingConfig:
    """What the trainer does, stored under ``"training"`` in model_config.json.

    The attribution engine recomputes the training loss from these: v-objective,
    alpha = cos(t*pi/2), sigma = sin(t*pi/2), target = noise*alpha - x*sigma, t ~ U(0, 1),
    audio zero-padded to ``sample_size`` with no loss mask, CFG dropout only in training.
    """

    steps: int = 600
    batch_size: int = 8
    learning_rate: float = 1e-3  # AdamW peak, linear warmup then cosine decay to 10 %
    warmup_steps: int = 40
    weight_decay: float = 1e-3
    adam_betas: tuple[float, float] = (0.9, 0.99)
    grad_clip_norm: float = 1.0
    cfg_dropout_prob: float = 0.1
    timestep_sampler: str = "uniform"  # t ~ U(0, 1)
    diffusion_objective: str = "v"
    mask_padding: bool = False  # loss over the zero-padded tail too, as stable-audio-tools' default
    ema_beta: float = 0.9999  # ema_pytorch's schedule, as stable-audio-tools uses it:
    ema_power: float = 0.75  # decay = min(beta, 1 - (1 + step) ** -power)
    seed: int = 0


# Width: the DiT's output passes through embed_dim, so embed_dim must be at least the
# token width (n_mels x dit_patch_size = 128) or the model cannot represent full-rank noise.
@dataclass(frozen=True)
class ArchitectureConfig:
    embed_dim: int = 256
    depth: int = 4
    num_heads: int = 4
    cond_dim: int = 128  # a multiple of embed_dim / num_heads (cross-attention heads)
    text_max_length: int = 64
    ff_mult: int = 2  # feed-forward width / embed_dim (stable-audio-tools' default is 4)
    sample_size: int = SAMPLE_SIZE
    n_mels: int = 64  # latent channels
    n_fft: int = 2048
    hop_length: int = HOP_LENGTH  # latent frames = sample_size / hop_length
    dit_patch_size: int = 2  # latent frames per transformer token


def model_config(arch: ArchitectureConfig, training: TrainingConfig) -> dict:
    """A stable-audio-tools ``diffusion_cond`` config (Stable Audio Open's layout, smaller)."""
    io_channels = arch.n_mels  # latent channels the DiT denoises
    pretransform = mel_pretransform.config_entry(
        mel_pretransform.LogMelConfig(
            sample_rate=SAMPLE_RATE,
            n_fft=arch.n_fft,
            hop_length=arch.hop_length,
            n_mels=arch.n_mels,
        )
    )
    number = {"min_val": 0, "max_val": 512}
    training_section = asdict(training)
    training_section["adam_betas"] = list(training.adam_betas)
    return {
        "model_type": "diffusion_cond",
        "sample_rate": SAMPLE_RATE,
        "sample_size": arch.sample_size,
        "audio_channels": 1,
        "model": {
            "pretransform": pretransform,
            "conditioning": {
                "configs": [
                    {
                        "id": "prompt",
                        "type": "minilm_text",
                        "config": {"max_length": arch.text_max_length},
                    },
                    {"id": "seconds_start", "type": "number", "config": dict(number)},
                    {"id": "seconds_total", "type": "number", "config": dict(number)},
                ],
                "cond_dim": arch.cond_dim,
            },
            "diffusion": {
                "type": "dit",
                "cross_attention_cond_ids": ["prompt", "seconds_start", "seconds_total"],
                "global_cond_ids": ["seconds_start", "seconds_total"],
                "diffusion_objective": training.diffusion_objective,
                "config": {
                    "io_channels": io_channels,
                    "patch_size": arch.dit_patch_size,
                    "embed_dim": arch.embed_dim,
                    "depth": arch.depth,
                    "num_heads": arch.num_heads,
                    "cond_token_dim": arch.cond_dim,
                    "global_cond_dim": 2
                    * arch.cond_dim,  # seconds_start and seconds_total, concatenated
                    "project_cond_tokens": False,
                    "transformer_type": "continuous_transformer",
                    "ff_kwargs": {"mult": arch.ff_mult},
                },
            },
            "io_channels": io_channels,
        },
        "training": training_section,
    }
