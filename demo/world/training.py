"""Train the demo's text-to-music DiT on the rendered catalog, as stable-audio-tools would.

The objective mirrors ``DiffusionCondTrainingWrapper.training_step`` (stable-audio-tools
0.0.19) and is what the attribution engine recomputes per item:

    z      = pretransform.encode(x)            x zero-padded to sample_size, no loss mask
    t      ~ U(0, 1)                           ("uniform" timestep sampler)
    alpha  = cos(t*pi/2), sigma = sin(t*pi/2)
    target = noise*alpha - z*sigma             (v-objective)
    loss   = mean((model(z*alpha + noise*sigma, t, cond) - target)^2)

with conditioning prompt + seconds_start + seconds_total and CFG dropout (0.1) in training
only. The weights written are an EMA of the DiT's (ema_pytorch's schedule, which
stable-audio-tools uses); the conditioners keep their online weights, as its export does.
Randomness comes from one seeded generator (batches, t, noise) and the seeded global RNG
(CFG dropout), so a seed fixes the run.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from demo.world import render
from demo.world.build import Track, sha256_file
from demo.world.model_config import TrainingConfig

StepCallback = Callable[[int, int, float], None]  # (step, total steps, loss)
EVAL_TIMESTEPS = (0.1, 0.3, 0.5, 0.7, 0.9)  # stable-audio-tools' validation timesteps


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass(frozen=True)
class TrainResult:
    losses: list[float]  # one per step
    seconds: float
    steps: int


def load_audio(
    tracks: list[Track], base_dir: Path, *, sample_rate: int, sample_size: int
) -> torch.Tensor:
    """Every track's WAV, mono, zero-padded to ``sample_size``. Returns (N, 1, sample_size)."""
    out = torch.zeros(len(tracks), 1, sample_size)
    for i, track in enumerate(tracks):
        path = Path(track.audio_path)
        path = path if path.is_absolute() else base_dir / path
        audio, sr = render.read_wav(path)  # (T,)
        if sr != sample_rate:
            raise ValueError(f"{path}: sample rate {sr}, the model expects {sample_rate}")
        if len(audio) > sample_size:
            raise ValueError(f"{path}: {len(audio)} samples, longer than the model's {sample_size}")
        out[i, 0, : len(audio)] = torch.from_numpy(audio)
    return out


def conditioning_metadata(tracks: list[Track]) -> list[dict]:
    """What the model's conditioner reads for each track."""
    return [
        {"prompt": t.caption, "seconds_start": t.seconds_start, "seconds_total": t.seconds_total}
        for t in tracks
    ]


def alphas_sigmas(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v-diffusion schedule: alpha = cos(t*pi/2), sigma = sin(t*pi/2). (B,) -> (B, 1, 1) each."""
    return torch.cos(t * math.pi / 2)[:, None, None], torch.sin(t * math.pi / 2)[:, None, None]


def diffusion_loss(
    model: torch.nn.Module,
    audio: torch.Tensor,  # (B, 1, sample_size)
    metadata: list[dict],
    t: torch.Tensor,  # (B,)
    noise: torch.Tensor,  # (B, C, L), C = latent channels, L = latent frames
    *,
    cfg_dropout_prob: float,
) -> torch.Tensor:
    """Per-item v-objective MSE, averaged over channels and frames. Returns (B,)."""
    with torch.no_grad():
        z = model.pretransform.encode(audio)  # (B, C, L)
    alpha, sigma = alphas_sigmas(t)
    noised = z * alpha + noise * sigma
    target = noise * alpha - z * sigma
    cond = model.conditioner(metadata, device=audio.device)
    output = model(noised, t, cond=cond, cfg_dropout_prob=cfg_dropout_prob, use_checkpointing=False)
    return ((output - target) ** 2).mean(dim=(1, 2))


class EMA:
    """Exponential moving average of a module's parameters with ema_pytorch's warm-up:
    decay = min(beta, 1 - (1 + k) ** -power), k = updates after the first (which copies)."""

    def __init__(self, module: torch.nn.Module, *, beta: float, power: float):
        self.beta = beta
        self.power = power
        self.updates = 0
        self.shadow = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def decay(self) -> float:
        k = self.updates - 2  # ema_pytorch: step - update_after_step - 1, update_after_step = 1
        if k <= 0:
            return 0.0
        return min(self.beta, 1 - (1 + k) ** -self.power)

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.updates += 1
        d = self.decay()
        for k, v in module.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, module: torch.nn.Module) -> None:
        module.load_state_dict(self.shadow, strict=True)


def lr_at(step: int, cfg: TrainingConfig) -> float:
    """Linear warm-up, then cosine decay to 10 % of the peak."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def train(
    model: torch.nn.Module,
    audio: torch.Tensor,  # (N, 1, sample_size)
    metadata: list[dict],
    cfg: TrainingConfig,
    *,
    on_step: StepCallback | None = None,
) -> TrainResult:
    """Train in place; on return ``model.model`` holds the EMA weights."""
    if len(metadata) != audio.shape[0] or audio.shape[0] == 0:
        raise ValueError("training needs at least one track, and one metadata row per track")
    started = time.monotonic()
    torch.manual_seed(cfg.seed)  # the global RNG drives CFG dropout inside the DiT
    gen = torch.Generator().manual_seed(cfg.seed)
    model.train()
    model.pretransform.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(
        params, lr=cfg.learning_rate, betas=tuple(cfg.adam_betas), weight_decay=cfg.weight_decay
    )
    ema = EMA(model.model, beta=cfg.ema_beta, power=cfg.ema_power)
    n = audio.shape[0]
    batch = min(cfg.batch_size, n)
    order = torch.randperm(n, generator=gen)
    cursor = 0
    losses: list[float] = []
    for step in range(cfg.steps):
        if cursor + batch > n:
            order = torch.randperm(n, generator=gen)
            cursor = 0
        idx = order[cursor : cursor + batch]
        cursor += batch
        x = audio[idx]  # (B, 1, sample_size)
        t = torch.rand(batch, generator=gen)  # (B,) uniform timestep sampler
        latent_shape = (
            batch,
            model.io_channels,
            audio.shape[-1] // model.pretransform.downsampling_ratio,
        )
        noise = torch.randn(latent_shape, generator=gen)  # (B, C, L)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = diffusion_loss(
            model,
            x,
            [metadata[i] for i in idx.tolist()],
            t,
            noise,
            cfg_dropout_prob=cfg.cfg_dropout_prob,
        ).mean()
        if not torch.isfinite(loss):
            raise TrainingDivergedError(
                f"the training loss became {loss.item()} at step {step + 1} of {cfg.steps}; "
                f"lower the learning rate (now {cfg.learning_rate}) or check the audio for NaNs"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip_norm)
        opt.step()
        ema.update(model.model)
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step + 1, cfg.steps, losses[-1])
    ema.copy_to(model.model)
    model.eval()
    return TrainResult(losses=losses, seconds=time.monotonic() - started, steps=cfg.steps)


def _keyed_generator(*keys: object) -> torch.Generator:
    seed = (
        int.from_bytes(hashlib.sha256("|".join(map(str, keys)).encode()).digest()[:8], "big") >> 1
    )
    return torch.Generator().manual_seed(seed)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    audio: torch.Tensor,  # (N, 1, sample_size)
    tracks: list[Track],
    *,
    seed: int,
    timesteps: tuple[float, ...] = EVAL_TIMESTEPS,
    batch_size: int = 32,
) -> np.ndarray:
    """Each track's loss averaged over fixed timesteps, with noise keyed by track id and
    timestep index (so the result does not depend on batching), no CFG dropout. Returns (N,)."""
    model.eval()
    metadata = conditioning_metadata(tracks)
    frames = audio.shape[-1] // model.pretransform.downsampling_ratio
    per_track = np.zeros(len(tracks))
    for k, tk in enumerate(timesteps):
        for start in range(0, len(tracks), batch_size):
            ids = list(range(start, min(start + batch_size, len(tracks))))
            noise = torch.stack(
                [
                    torch.randn(
                        model.io_channels,
                        frames,
                        generator=_keyed_generator(seed, tracks[i].track_id, k),
                    )
                    for i in ids
                ]
            )  # (B, C, L)
            t = torch.full((len(ids),), float(tk))
            loss = diffusion_loss(
                model, audio[ids], [metadata[i] for i in ids], t, noise, cfg_dropout_prob=0.0
            )
            per_track[ids] += loss.numpy() / len(timesteps)
    return per_track


def save_checkpoint(model: torch.nn.Module, model_config: dict, out_dir: Path) -> list[Path]:
    """model_config.json + model.safetensors, stable-audio-tools' layout."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / "model_config.json"
    weights_path = out_dir / "model.safetensors"
    config_path.write_text(json.dumps(model_config, indent=2))
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = out_dir / "model.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(weights_path)
    return [config_path, weights_path]


def plot_losses(losses: list[float], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(losses) + 1)
    window = max(1, len(losses) // 20)
    smooth = np.convolve(losses, np.ones(window) / window, mode="valid")
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(steps, losses, lw=0.6, alpha=0.4, label="batch loss")
    ax.plot(steps[window - 1 :], smooth, lw=1.6, label=f"moving average ({window} steps)")
    ax.set_xlabel("step")
    ax.set_ylabel("v-objective MSE")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def head_tail_means(losses: list[float], k: int = 20) -> tuple[float, float]:
    """Mean loss of the first and last ``k`` steps."""
    k = max(1, min(k, len(losses) // 2 or 1))
    return float(np.mean(losses[:k])), float(np.mean(losses[-k:]))


def track_rows(tracks: list[Track]) -> list[dict]:
    return [asdict(t) for t in tracks]


def verify_hashes(tracks: list[Track], base_dir: Path) -> None:
    """Refuse to train on audio that differs from what the manifest records."""
    for t in tracks:
        path = Path(t.audio_path)
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing; rebuild the demo world")
        if sha256_file(path) != t.sha256:
            raise ValueError(f"{path} changed since the catalog was built (sha256 mismatch)")
