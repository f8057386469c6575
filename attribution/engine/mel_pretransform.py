"""A training-free log-mel pretransform as a stable-audio-tools ``Pretransform``.

stable-audio-tools' training-free pretransforms (``patched``, ``wavelet``, ``pqmf``) are
invertible rearrangements of the waveform: their latents keep the phase, so a model has to
learn (and, to memorise a track, store) the waveform itself. A small DiT trained for minutes
on a CPU cannot: on ``patched`` latents the demo model's loss on its training tracks equalled
its loss on held-out tracks. A log-mel spectrogram drops the phase and compresses 512
samples into ``n_mels`` numbers per frame, the role a trained VAE plays in Stable Audio, with
nothing to train. Decoding estimates a phase with Griffin-Lim (fast variant, momentum 0.99),
so generations can be listened to; the diffusion loss, Fisher and attribution scores live
entirely in the latent space and never decode.

Config entry (``model.pretransform`` of a ``diffusion_cond`` model config)::

    {"type": "log_mel", "config": {"n_fft": 2048, "hop_length": 512, "n_mels": 64,
     "shift": -3.0, "scale": 2.0}}

``loading.build_model`` plugs it in, because stable-audio-tools' factory knows only its own
pretransform types. Encoding is deterministic and per item (no batch statistics), so an
item's latents do not depend on what it is batched with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from stable_audio_tools.models.pretransforms import Pretransform

PRETRANSFORM_TYPE = "log_mel"


@dataclass(frozen=True)
class LogMelConfig:
    sample_rate: int
    n_fft: int = 2048  # 128 ms at 16 kHz: resolves the lowest notes of the demo's ensembles
    hop_length: int = 512  # latent frame = 32 ms; the downsampling ratio
    n_mels: int = 64  # latent channels
    f_min: float = 30.0
    f_max: float | None = None  # None: Nyquist
    floor: float = 1e-4  # magnitude added before the log, so silence is finite
    # z = (log(mel + floor) - shift) / scale: chosen for the demo's rendered tracks so that
    # the latents of real audio have mean ~0 and std ~1, the scale diffusion noise assumes.
    shift: float = -3.0
    scale: float = 2.0
    griffin_lim_iters: int = 64
    audio_channels: int = 1

    def __post_init__(self) -> None:
        if self.audio_channels != 1:
            raise ValueError("the log_mel pretransform is mono (audio_channels must be 1)")
        if self.n_fft < self.hop_length or self.hop_length < 1:
            raise ValueError("need n_fft >= hop_length >= 1")
        if self.scale <= 0 or self.floor <= 0:
            raise ValueError("scale and floor must be positive")


class LogMelPretransform(Pretransform):
    """(B, 1, T) audio <-> (B, n_mels, T / hop_length) normalised log-mel magnitudes."""

    def __init__(self, cfg: LogMelConfig):
        super().__init__(enable_grad=False, io_channels=cfg.audio_channels, is_discrete=False)
        import torchaudio.functional as AF

        self.cfg = cfg
        self.downsampling_ratio = cfg.hop_length
        self.encoded_channels = cfg.n_mels
        f_max = cfg.f_max if cfg.f_max is not None else cfg.sample_rate / 2
        fbanks = AF.melscale_fbanks(
            cfg.n_fft // 2 + 1, cfg.f_min, f_max, cfg.n_mels, cfg.sample_rate, norm="slaney"
        )  # (F, M)
        # Buffers, not parameters: nothing here trains, and persistent=False keeps them out
        # of the checkpoint (they are a function of the config).
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)
        self.register_buffer("fbanks", fbanks, persistent=False)
        self.register_buffer("fbanks_pinv", torch.linalg.pinv(fbanks), persistent=False)  # (M, F)

    def _stft(self, audio: torch.Tensor) -> torch.Tensor:
        """(B, T) -> complex (B, F, T / hop + 1), frame k centred on sample k * hop."""
        return torch.stft(
            audio,
            self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        )

    def _istft(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """complex (B, F, L + 1) -> (B, length), the inverse of ``_stft``."""
        return torch.istft(
            spec,
            self.cfg.n_fft,
            hop_length=self.cfg.hop_length,
            window=self.window,
            center=True,
            length=length,
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T), T a multiple of hop_length -> (B, n_mels, T / hop_length)."""
        if x.shape[-1] % self.cfg.hop_length:
            raise ValueError(
                f"audio length {x.shape[-1]} is not a multiple of hop_length {self.cfg.hop_length}"
            )
        frames = x.shape[-1] // self.cfg.hop_length
        magnitude = self._stft(x[:, 0].float())[..., :frames].abs()  # (B, F, L)
        mel = torch.einsum("bfl,fm->bml", magnitude, self.fbanks)  # (B, M, L)
        return (torch.log(mel + self.cfg.floor) - self.cfg.shift) / self.cfg.scale

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, L) -> (B, 1, L * hop_length), phase estimated by fast Griffin-Lim."""
        mel = (torch.exp(z.float() * self.cfg.scale + self.cfg.shift) - self.cfg.floor).clamp(
            min=0
        )  # (B, M, L)
        magnitude = torch.einsum("bml,mf->bfl", mel, self.fbanks_pinv).clamp(min=0)  # (B, F, L)
        length = z.shape[-1] * self.cfg.hop_length
        # One frame more than encode produced, so istft covers the whole length.
        magnitude = torch.cat([magnitude, magnitude[..., -1:]], dim=-1)  # (B, F, L + 1)
        spec = magnitude.to(torch.complex64)  # zero phase start: deterministic
        previous = torch.zeros_like(spec)
        for _ in range(self.cfg.griffin_lim_iters):
            rebuilt = self._stft(self._istft(spec, length))  # (B, F, L + 1)
            accelerated = rebuilt + 0.99 * (rebuilt - previous)
            previous = rebuilt
            spec = magnitude * accelerated / accelerated.abs().clamp(min=1e-8)
        return self._istft(spec, length)[:, None]  # (B, 1, T)


def make_pretransform(pretransform_config: dict, sample_rate: int) -> LogMelPretransform:
    """Build from a ``{"type": "log_mel", "config": {...}}`` entry of a model config."""
    options = dict(pretransform_config.get("config", {}))
    options.pop("sample_rate", None)
    return LogMelPretransform(LogMelConfig(sample_rate=sample_rate, **options))


def config_entry(cfg: LogMelConfig) -> dict:
    """The model-config entry that ``make_pretransform`` reads back to ``cfg``."""
    options = asdict(cfg)
    options.pop("sample_rate")
    return {"type": PRETRANSFORM_TYPE, "config": options}
