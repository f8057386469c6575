"""Prompt + duration -> audio, with stable-audio-tools' sampler (``generate_diffusion_cond``).

The model generates its full window (``sample_size``) conditioned on ``seconds_total``; the
result is cut to the requested length, as Stable Audio's own interface does. The sampler's
settings are the model's own (`sampling_defaults`): a ``"sampling"`` section of its config
where it has one, Stable Audio Open's published settings for a v-objective model on a VAE
(``autoencoder``) pretransform, the demo model's otherwise.

A generation may be conditioned on a reference recording (stable-audio-tools' audio-to-audio
variation): the reference is encoded, noised to ``init_noise_level`` (a sigma of the model's
noise schedule) and denoised from there under the prompt. The lower the level, the closer the
result stays to the reference; at ``sigma_max`` it is close to a generation from noise.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import warnings
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SamplingConfig:
    steps: int = 50  # denoising steps
    cfg_scale: float = 6.0  # classifier-free guidance scale (stable-audio-tools' default)
    sampler_type: str = "dpmpp-2m-sde"
    sigma_min: float = 0.03
    sigma_max: float = 50.0


# Stable Audio Open 1.0's model card and stable-audio-tools' README generate with these.
STABLE_AUDIO_OPEN = SamplingConfig(
    steps=100, cfg_scale=7.0, sampler_type="dpmpp-3m-sde", sigma_min=0.3, sigma_max=500.0
)


def sampling_defaults(model_config: dict) -> SamplingConfig:
    """The settings a model generates with unless a caller overrides them (module docstring).

    A config's ``"sampling"`` section may set any `SamplingConfig` field; unknown keys are
    refused."""
    model = model_config.get("model") or {}
    pretransform = model.get("pretransform") or {}
    objective = (model.get("diffusion") or {}).get("diffusion_objective", "v")
    like_stable_audio_open = pretransform.get("type") == "autoencoder" and objective == "v"
    base = STABLE_AUDIO_OPEN if like_stable_audio_open else SamplingConfig()
    section = dict(model_config.get("sampling") or {})
    unknown = set(section) - set(SamplingConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown key(s) in the model config's sampling: {sorted(unknown)}")
    return dataclasses.replace(base, **section)


def generate(
    model: torch.nn.Module,
    model_config: dict,
    prompt: str,
    seconds_total: float,
    seed: int,
    steps: int | None = None,
    *,
    cfg_scale: float | None = None,
    device: str | torch.device = "cpu",
    sampling: SamplingConfig | None = None,
    init_audio: tuple[torch.Tensor, int] | None = None,
    init_noise_level: float | None = None,
) -> tuple[torch.Tensor, int]:
    """Generate ``seconds_total`` seconds for ``prompt``. Returns (audio (C, T), sample_rate).

    ``steps``, ``cfg_scale`` and ``sampling`` override the model's `sampling_defaults`.
    ``init_audio`` = (audio (C, T), sample_rate) conditions the generation on a reference
    (module docstring); it is resampled, mixed to the model's channels and cut or padded to
    the model's window. ``init_noise_level`` is then required, in (sigma_min, sigma_max].
    Deterministic in ``seed``; the caller's global RNG state is left as it was.
    """
    from stable_audio_tools.inference.generation import generate_diffusion_cond

    sampling = sampling or sampling_defaults(model_config)
    steps = sampling.steps if steps is None else steps
    cfg_scale = sampling.cfg_scale if cfg_scale is None else cfg_scale

    sample_rate = int(model_config["sample_rate"])
    sample_size = int(model_config["sample_size"])
    max_seconds = sample_size / sample_rate
    if not prompt or not prompt.strip():
        raise ValueError("the prompt is empty")
    if not (0 < seconds_total <= max_seconds):
        raise ValueError(
            f"seconds_total must be in (0, {max_seconds:g}] for this model, got {seconds_total}"
        )
    if steps < 1:
        raise ValueError("steps must be at least 1")
    reference = None
    if init_audio is not None:
        reference = _reference_input(init_audio, init_noise_level, sampling)
    elif init_noise_level is not None:
        raise ValueError("init_noise_level needs init_audio")
    conditioning = [
        {"prompt": prompt, "seconds_start": 0, "seconds_total": math.ceil(seconds_total)}
    ]
    with (
        torch.random.fork_rng(devices=[]),
        torch.no_grad(),
        contextlib.redirect_stdout(io.StringIO()),  # it prints the seed
        warnings.catch_warnings(),
    ):
        # torchsde warns when float rounding puts the last sigma a hair below sigma_min.
        warnings.filterwarnings("ignore", message="Should have ta>=t0", category=UserWarning)
        # return_latents: stable-audio-tools' own decode step reads the pretransform's
        # parameter dtype, and the training-free pretransforms (patched, log_mel) have none.
        latents = generate_diffusion_cond(
            model,
            steps=steps,
            cfg_scale=cfg_scale,
            conditioning=conditioning,
            sample_size=sample_size,
            sample_rate=sample_rate,
            seed=seed,
            device=str(device),
            return_latents=True,
            sampler_type=sampling.sampler_type,
            sigma_min=sampling.sigma_min,
            sigma_max=sampling.sigma_max,
            **(reference or {}),
        )  # (1, C_latent, L)
        audio = (
            model.pretransform.decode(latents) if model.pretransform is not None else latents
        )  # (1, C, T)
    n = round(seconds_total * sample_rate)
    audio = audio[0, :, :n].float().clamp(-1, 1).cpu()  # (C, T)
    return audio, sample_rate


def _reference_input(
    init_audio: tuple[torch.Tensor, int], init_noise_level: float | None, sampling: SamplingConfig
) -> dict:
    """The sampler's ``init_audio`` / ``init_noise_level`` arguments, checked."""
    audio, sample_rate = init_audio
    if not isinstance(audio, torch.Tensor) or audio.ndim != 2 or audio.shape[-1] == 0:
        raise ValueError("the reference audio must be a non-empty (channels, samples) tensor")
    if not torch.isfinite(audio).all():
        raise ValueError("the reference audio has non-finite samples")
    if int(sample_rate) <= 0:
        raise ValueError("the reference audio's sample rate must be positive")
    if init_noise_level is None:
        raise ValueError("a reference needs init_noise_level")
    if not (sampling.sigma_min < float(init_noise_level) <= sampling.sigma_max):
        raise ValueError(
            f"init_noise_level must be in ({sampling.sigma_min:g}, {sampling.sigma_max:g}] for "
            f"this model, got {init_noise_level}"
        )
    # stable-audio-tools takes (sample_rate, audio) and moves the audio to the model's device.
    return {
        "init_audio": (int(sample_rate), audio.float()),
        "init_noise_level": float(init_noise_level),
    }
