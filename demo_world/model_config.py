"""The demo's stable-audio-tools model config: a small text- and timing-conditioned DiT.

Sized so that the attribution engine can take per-sample gradients for every training track
on a CPU in minutes: ~6.7M trainable DiT parameters, 6.144 s windows at 16 kHz patched into
192 latent frames of 512 channels (stable-audio-tools' ``patched`` pretransform, which needs
no training).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

SAMPLE_RATE = 16000
PATCH_SIZE = 512
LATENT_FRAMES = 192
SAMPLE_SIZE = PATCH_SIZE * LATENT_FRAMES  # 98304 samples = 6.144 s


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


# Width: the DiT's output passes through embed_dim, so embed_dim must be at least the 512
# latent channels or the model cannot represent full-rank noise. The first default (embed 192,
# depth 5) floored at a loss of 0.33; embed 512, depth 2, feed-forward
# x1 reaches ~0.11 in the same 600 steps at ~0.6 s/step on the idle 2-core machine.
@dataclass(frozen=True)
class ArchitectureConfig:
    embed_dim: int = 512
    depth: int = 2
    num_heads: int = 8
    cond_dim: int = 128  # a multiple of embed_dim / num_heads (cross-attention heads)
    text_max_length: int = 64
    ff_mult: int = 1  # feed-forward width / embed_dim (stable-audio-tools' default is 4)
    sample_size: int = SAMPLE_SIZE
    patch_size: int = PATCH_SIZE


def model_config(arch: ArchitectureConfig, training: TrainingConfig) -> dict:
    """A stable-audio-tools ``diffusion_cond`` config (Stable Audio Open's layout, smaller)."""
    io_channels = arch.patch_size  # mono audio patched: 1 channel x patch_size
    number = {"min_val": 0, "max_val": 512}
    training_section = asdict(training)
    training_section["adam_betas"] = list(training.adam_betas)
    return {
        "model_type": "diffusion_cond",
        "sample_rate": SAMPLE_RATE,
        "sample_size": arch.sample_size,
        "audio_channels": 1,
        "model": {
            "pretransform": {
                "type": "patched",
                "config": {"channels": 1, "patch_size": arch.patch_size},
            },
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
