"""Build the whole demo world: catalog (build.py), then the trained model (training.py).

Output under ``root`` (``DATA_DIR/demo``)::

    model/model_config.json, model/model.safetensors     stable-audio-tools checkpoint (EMA)
    model/training_manifest.json                          tracks in training-set order
    model/loss_curve.png, model/training_report.json      losses, train vs held-out

Each stage is skipped when ``build_state.json`` records the same inputs and every output
file still has its recorded SHA-256 (content hashes, not file existence).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from attribution.engine import mel_pretransform
from demo.world import build, training
from demo.world.model_config import SAMPLE_RATE, ArchitectureConfig, TrainingConfig, model_config

# --train-minutes is converted to a fixed step count (375 steps per minute, a budget of
# 0.16 s per step at batch 8: "--train-minutes 8" is 3000 steps, 80 epochs of the 300
# tracks), so a seed fixes the result on any machine; measured step times: BENCHMARKS.md,
# "Demo world".
STEPS_PER_MINUTE = 375
DEFAULT_TRAIN_MINUTES = 8.0
MODEL_FILES = (
    "model_config.json",
    "model.safetensors",
    "training_manifest.json",
    "loss_curve.png",
    "training_report.json",
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class WorldConfig:
    root: Path
    tracks: int = 300
    heldout: int = 96  # the gap's standard error was 0.0074 with 96 (0.016 with 24)
    seed: int = 0
    train_steps: int = int(DEFAULT_TRAIN_MINUTES * STEPS_PER_MINUTE)
    arch: ArchitectureConfig = field(default_factory=ArchitectureConfig)
    batch_size: int = 8

    def catalog_config(self) -> build.CatalogConfig:
        return build.CatalogConfig(
            root=self.root,
            tracks=self.tracks,
            heldout=self.heldout,
            seed=self.seed,
            max_seconds=self.arch.sample_size / SAMPLE_RATE,  # no track longer than the window
        )

    def training_config(self) -> TrainingConfig:
        return replace(
            TrainingConfig(), steps=self.train_steps, seed=self.seed, batch_size=self.batch_size
        )


@dataclass(frozen=True)
class WorldReport:
    catalog_reused: bool
    model_reused: bool
    catalog_seconds: float
    model_seconds: float
    tracks: int
    heldout: int
    report: dict  # the training report (losses), also at model/training_report.json


def steps_for_minutes(minutes: float) -> int:
    return max(1, round(minutes * STEPS_PER_MINUTE))


def _training_code_hash() -> str:
    here = Path(__file__).parent
    engine = Path(mel_pretransform.__file__).parent  # attribution/engine
    return build.code_hash(
        [
            here / "training.py",
            here / "model_config.py",
            engine / "text_conditioner.py",
            engine / "mel_pretransform.py",
            engine / "loading.py",
        ]
    )


def model_fingerprint(config: dict, tracks: list[build.Track], seed: int) -> str:
    payload = {
        "config": config,
        "tracks": [
            (t.track_id, t.sha256, t.caption, t.seconds_start, t.seconds_total) for t in tracks
        ],
        "seed": seed,
        "code": _training_code_hash(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def build_world(
    cfg: WorldConfig,
    *,
    on_catalog: build.Progress | None = None,
    on_step: training.StepCallback | None = None,
    log: Log | None = None,
) -> WorldReport:
    """Build (or reuse) the catalog and the trained model."""
    say = log or (lambda _msg: None)
    cat = build.build_catalog(cfg.catalog_config(), progress=on_catalog)
    say(
        f"catalog: {len(cat.tracks)} training + {len(cat.heldout)} held-out tracks "
        f"{'reused (hashes match)' if cat.reused else 'rendered'} in {cat.seconds:.1f} s"
    )
    started = time.monotonic()
    model_dir = cfg.root / "model"
    config = model_config(cfg.arch, cfg.training_config())
    # Paths in the training manifest are relative to the manifest's own folder.
    tracks = [replace(t, audio_path=f"../catalog/{t.audio_path}") for t in cat.tracks]
    heldout = [replace(t, audio_path=f"../heldout/{t.audio_path}") for t in cat.heldout]
    fingerprint = model_fingerprint(config, tracks, cfg.seed)
    state = build.read_state(cfg.root)
    previous = state.get("model", {})
    if previous.get("fingerprint") == fingerprint and build.files_intact(
        cfg.root, previous.get("files", {})
    ):
        report = json.loads((model_dir / "training_report.json").read_text())
        say(f"model: reused {model_dir} (hashes match)")
        return WorldReport(
            bool(cat.reused),
            True,
            cat.seconds,
            time.monotonic() - started,
            len(tracks),
            len(heldout),
            report,
        )

    from attribution.engine.loading import build_model

    model_dir.mkdir(parents=True, exist_ok=True)  # paths below go through it (../catalog)
    training.verify_hashes(tracks, model_dir)
    audio = training.load_audio(
        tracks, model_dir, sample_rate=config["sample_rate"], sample_size=config["sample_size"]
    )
    heldout_audio = training.load_audio(
        heldout, model_dir, sample_rate=config["sample_rate"], sample_size=config["sample_size"]
    )
    import torch

    torch.manual_seed(cfg.seed)  # model initialisation
    model = build_model(config)
    trainable = sum(p.numel() for p in model.model.parameters() if p.requires_grad)
    say(
        f"model: {trainable / 1e6:.2f} M trainable DiT parameters, training {cfg.train_steps} steps"
    )
    result = training.train(
        model, audio, training.conditioning_metadata(tracks), cfg.training_config(), on_step=on_step
    )
    first, last = training.head_tail_means(result.losses)
    say("model: evaluating the EMA weights on training and held-out tracks")
    train_eval = training.evaluate(model, audio, tracks, seed=cfg.seed)
    heldout_eval = (
        training.evaluate(model, heldout_audio, heldout, seed=cfg.seed) if heldout else None
    )
    report = {
        "steps": result.steps,
        "train_seconds": round(result.seconds, 1),
        "trainable_dit_parameters": trainable,
        "loss_first_20_steps": first,
        "loss_last_20_steps": last,
        "eval_timesteps": list(training.EVAL_TIMESTEPS),
        "eval_loss_train_tracks": float(train_eval.mean()),
        "eval_loss_heldout_tracks": float(heldout_eval.mean())
        if heldout_eval is not None
        else None,
        "eval_loss_per_train_track": {
            t.track_id: float(v) for t, v in zip(tracks, train_eval, strict=True)
        },
        "eval_loss_per_heldout_track": (
            {t.track_id: float(v) for t, v in zip(heldout, heldout_eval, strict=True)}
            if heldout_eval is not None
            else {}
        ),
        "losses": result.losses,
    }
    training.save_checkpoint(model, config, model_dir)
    # Written with the checkpoint, not before training: an interrupted run leaves the
    # previous manifest and checkpoint as a matching pair.
    build.write_manifest(
        model_dir / "training_manifest.json",
        seed=cfg.seed,
        sample_rate=config["sample_rate"],
        tracks=tracks,
        created_at=build.utc_now(),
    )
    training.plot_losses(
        result.losses,
        model_dir / "loss_curve.png",
        title=f"demo DiT, {len(tracks)} tracks, seed {cfg.seed}: {first:.3f} -> {last:.3f}",
    )
    (model_dir / "training_report.json").write_text(json.dumps(report, indent=1))
    files = {f"model/{name}": build.sha256_file(model_dir / name) for name in MODEL_FILES}
    state = build.read_state(cfg.root)
    state["model"] = {"fingerprint": fingerprint, "files": files}
    write_time = time.monotonic() - started
    build.write_state(cfg.root, state)
    return WorldReport(
        cat.reused, False, cat.seconds, write_time, len(tracks), len(heldout), report
    )


def summary_lines(report: dict) -> list[str]:
    lines = [
        f"training loss: {report['loss_first_20_steps']:.4f} (first 20 steps) -> "
        f"{report['loss_last_20_steps']:.4f} (last 20 steps)",
        f"eval loss (EMA weights, t in {report['eval_timesteps']}): "
        f"training tracks {report['eval_loss_train_tracks']:.4f}",
    ]
    if report.get("eval_loss_heldout_tracks") is not None:
        gap = report["eval_loss_heldout_tracks"] - report["eval_loss_train_tracks"]
        lines[-1] += f", held-out tracks {report['eval_loss_heldout_tracks']:.4f}"
        error = gap_standard_error(
            list(report.get("eval_loss_per_train_track", {}).values()),
            list(report.get("eval_loss_per_heldout_track", {}).values()),
        )
        if error is None:
            lines.append(f"held-out - train = {gap:+.4f}")
        else:
            lines.append(
                f"held-out - train = {gap:+.4f} +- {error:.4f} (standard error; a gap is "
                f"measurable when it is several standard errors: here {gap / error:+.1f})"
            )
    return lines


def gap_standard_error(train: list[float], heldout: list[float]) -> float | None:
    """Standard error of mean(heldout) - mean(train) for two independent samples of tracks
    (Welch); None when either side has fewer than two tracks."""
    if len(train) < 2 or len(heldout) < 2:
        return None

    def variance_of_mean(values: list[float]) -> float:
        mean = sum(values) / len(values)
        return sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values)

    return (variance_of_mean(train) + variance_of_mean(heldout)) ** 0.5


def as_dict(cfg: WorldConfig) -> dict:
    d = asdict(cfg)
    d["root"] = str(cfg.root)
    return d
