"""Opt-out that takes effect: a model version with a forget set's influence removed, and the
checks that say whether it was.

Three methods, one loop. Each step k changes the target weights theta (the transformer blocks,
`fisher.target_parameters`) from theta_{k-1}; every gradient is of the training loss L(z, theta)
of loss.py averaged over `timesteps` keyed draws per item (stream "forget:k" / "retain:k", so a
run does not depend on batch size and a resumed run repeats the same draws):

    gradient_ascent   theta_k = theta_{k-1} - clip( lr (-grad L(D_f) + w grad L(D_r,k)) )
                      (Gradient Ascent with a retain-set descent term, the "GA" baseline of
                      the text-to-music unlearning papers; bounded steps)
    random_labels     theta_k = theta_{k-1} - clip( lr (grad L(D_f~) + w grad L(D_r,k)) )
                      D_f~: the forget set's audio paired with other tracks' conditioning
                      (captions, timing), learned by descent (the papers' "random labelling")
    fisher            theta_k = theta_{k-1} + eta (F + lambda)^-1 grad L(D_f, theta_{k-1})
                      Eq. 5-6 of Choi et al. with the forget set D_f in place of the generated
                      sample z_hat; the Fisher term (N/2)(theta - theta0)^T F (theta - theta0)
                      is the retain term (a quadratic model of the whole training loss), so it
                      takes none other. eta is chosen so the first step has relative norm
                      `fisher_update_norm` (unlearn.step_for_target_norm) and is kept.

D_r,k is a keyed sample of `retain_batch` retain items (the parent's training set minus D_f),
w is `retain_weight`, and clip(u) scales an update u down to relative norm `max_update_norm`
of the target weights (||u|| <= max_update_norm ||theta0||), which bounds every step.

The loop saves its state (step, the target weights, eta) every `checkpoint_seconds` to a file
and resumes from it bit for bit. `validate` compares a derived model with its parent (and a
model retrained without the forget set, when there is one): see its docstring.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np
import torch

from attribution.engine.artifacts import atomic_torch_save, write_json
from attribution.engine.checkpoint import EngineModel
from attribution.engine.config import TARGET_LAYER_CHOICES, EngineConfig
from attribution.engine.errors import EngineError
from attribution.engine.fisher import target_parameters
from attribution.engine.items import EncodedItem
from attribution.engine.loss import Progress, item_loss
from attribution.engine.randomness import stable_seed
from attribution.engine.unlearn import (
    checked_damping,
    eq6_update,
    mean_gradient,
    parameters_swapped,
    step_for_target_norm,
)

ForgettingMethod = Literal["gradient_ascent", "random_labels", "fisher"]
FORGETTING_METHODS: tuple[str, ...] = get_args(ForgettingMethod)
STATE_VERSION = 1


@dataclass(frozen=True)
class ForgettingConfig:
    """Every knob of the unlearning job (docs/decisions/0020-opt-out-unlearning-defaults.md)."""

    method: ForgettingMethod = "fisher"
    # Bounded number of updates (the papers stop gradient ascent early: unbounded ascent
    # destroys the model). Each step sees every forget item and `retain_batch` retain items.
    steps: int = 20
    # SGD step size of gradient_ascent and random_labels, on the target weights. With the
    # bound below, lr = 1 makes each step a normalised one of relative size max_update_norm
    # wherever the gradient is not tiny (docs/decisions/0020-opt-out-unlearning-defaults.md).
    lr: float = 1.0
    # w: weight of the retain-set descent term (0 turns it off).
    retain_weight: float = 1.0
    retain_batch: int = 8
    # Every update (lr d) is scaled down to at most this norm relative to the target weights'.
    max_update_norm: float = 1e-4
    # Draws (t, noise) per item for each step's gradients.
    timesteps: int = 8
    # Which weights change (as for attribution, fisher.TARGET_PATTERNS).
    target_layers: str = "all_blocks"
    # fisher: lambda = damping * mean(F) (unlearn.damping_value), and each Eq. 6 step's
    # relative norm.
    damping: float = 1e-3
    fisher_update_norm: float = 1e-4
    # Root of the keyed draws (timesteps and noise, retain samples, other labels).
    seed: int = 0
    # How often the running state is written (seconds of work; 0: after every step).
    checkpoint_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.method not in FORGETTING_METHODS:
            raise EngineError(f"Unknown unlearning method {self.method!r}.", field="method")
        if self.target_layers not in TARGET_LAYER_CHOICES:
            raise EngineError(f"Unknown target layers {self.target_layers!r}.", field="config")
        checks = {
            "steps": self.steps >= 1,
            "lr": self.lr > 0,
            "retain_weight": self.retain_weight >= 0,
            "retain_batch": self.retain_batch >= 1,
            "max_update_norm": self.max_update_norm > 0,
            "timesteps": self.timesteps >= 1,
            "damping": self.damping >= 0,
            "fisher_update_norm": self.fisher_update_norm > 0,
            "checkpoint_seconds": self.checkpoint_seconds >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise EngineError(f"Unlearning setting {bad[0]} is out of range.", field="config")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ForgettingConfig:
        unknown = set(values) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise EngineError(f"Unknown unlearning setting(s): {sorted(unknown)}.", field="config")
        return cls(**values)


@dataclass(frozen=True)
class ValidationThresholds:
    """When a derived version counts as having forgotten and kept (defaults as the opt-out
    policy states them; docs/opt-out-unlearning.md)."""

    # forgetting: mean forget loss >= (1 - forget_level_tolerance) x mean held-out loss
    forget_level_tolerance: float = 0.05
    # membership inference (forget vs held-out) AUC within this of 0.5 ...
    mia_margin: float = 0.05
    # retain loss within this relative change of the parent's
    retain_tolerance: float = 0.02
    # mean spectral flatness of generations on retain prompts within this relative change
    flatness_tolerance: float = 0.10
    # retain self-influence: mean own-track rank at most the parent's + this
    self_rank_slack: float = 1.0
    # draws per item for the validation losses (stream "validate")
    loss_timesteps: int = 16
    # generations on retain prompts (one per prompt, each model the same seeds) and their
    # denoising steps; retain tracks whose self-influence is checked (0 turns a check off)
    generations: int = 2
    generation_steps: int = 25
    self_influence_targets: int = 2

    def __post_init__(self) -> None:
        if min(self.forget_level_tolerance, self.mia_margin, self.retain_tolerance) < 0:
            raise EngineError("A validation tolerance is negative.", field="thresholds")
        if self.loss_timesteps < 1 or self.generation_steps < 2:  # k-diffusion's SDE samplers
            raise EngineError(
                "Validation needs at least one draw and two sampling steps.", field="thresholds"
            )
        if self.generations < 0 or self.self_influence_targets < 0:
            raise EngineError("A validation sample size is negative.", field="thresholds")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- the update


def set_gradient(
    model: EngineModel,
    items: Sequence[EncodedItem],
    engine_cfg: EngineConfig,
    params: dict[str, torch.nn.Parameter],
    *,
    stream: str,
    timesteps: int,
) -> dict[str, torch.Tensor]:
    """grad_theta of L(D, theta) = (1/|D|) sum_{z in D} (1/T) sum_t L_t(z, theta) (Sec. 2.1 of
    Choi et al., over a set): `unlearn.mean_gradient` per item, summed in item order."""
    total = {name: torch.zeros_like(param) for name, param in params.items()}
    for item in items:
        grad = mean_gradient(
            model, item, engine_cfg, params, stream=stream, timesteps=timesteps, mask=False
        )
        for name in total:
            total[name].add_(grad[name])
    for name in total:
        total[name].div_(max(1, len(items)))
    return total


def keyed_choice(seed: int, stream: str, key: str, index: int, n: int) -> int:
    """A position in range(n) keyed by what it belongs to (randomness.stable_seed)."""
    return stable_seed(seed, stream, key, index) % n


def retain_sample(
    retain: Sequence[EncodedItem], cfg: ForgettingConfig, step: int
) -> list[EncodedItem]:
    """D_r,k: `retain_batch` distinct retain items for step k, keyed by (seed, step) (all of
    them when there are fewer)."""
    if len(retain) <= cfg.retain_batch:
        return list(retain)
    order = sorted(
        range(len(retain)),
        key=lambda i: stable_seed(cfg.seed, "retain-sample", retain[i].item_id, step),
    )
    return [retain[i] for i in order[: cfg.retain_batch]]


def relabelled(
    forget: Sequence[EncodedItem],
    others: Sequence[EncodedItem],
    cfg: ForgettingConfig,
    step: int,
) -> list[EncodedItem]:
    """D_f~ of random labelling: each forget item's latents with another track's conditioning
    (its caption and timing), drawn per (item, step) from `others`. The item keeps its own id,
    so its draws stay its own."""
    if not others:
        raise EngineError("Random labelling needs other tracks to take captions from.")
    return [
        dataclasses.replace(
            item,
            conditioning=others[
                keyed_choice(cfg.seed, "relabel", item.item_id, step, len(others))
            ].conditioning,
            more_windows=(),
        )
        for item in forget
    ]


def weights_norm(values: dict[str, torch.Tensor]) -> float:
    return sum(float(v.detach().double().pow(2).sum()) for v in values.values()) ** 0.5


def clipped(direction: dict[str, torch.Tensor], limit: float) -> dict[str, torch.Tensor]:
    """d scaled down so ||d|| <= limit (bounded steps)."""
    norm = weights_norm(direction)
    if norm > limit > 0:
        scale = limit / norm
        for value in direction.values():
            value.mul_(scale)
    return direction


def descent_direction(
    model: EngineModel,
    forget: Sequence[EncodedItem],
    retain: Sequence[EncodedItem],
    engine_cfg: EngineConfig,
    cfg: ForgettingConfig,
    params: dict[str, torch.nn.Parameter],
    step: int,
) -> dict[str, torch.Tensor]:
    """d_k of gradient_ascent (-grad L(D_f) + w grad L(D_r,k)) or random_labels
    (grad L(D_f~) + w grad L(D_r,k)), at the model's current weights."""
    if cfg.method == "gradient_ascent":
        direction = set_gradient(
            model, forget, engine_cfg, params, stream=f"forget:{step}", timesteps=cfg.timesteps
        )
        for value in direction.values():
            value.neg_()
    else:
        direction = set_gradient(
            model, relabelled(forget, retain, cfg, step), engine_cfg, params,
            stream=f"forget:{step}", timesteps=cfg.timesteps,
        )  # fmt: skip
    if cfg.retain_weight > 0 and retain:
        keep = set_gradient(
            model, retain_sample(retain, cfg, step), engine_cfg, params,
            stream=f"retain:{step}", timesteps=cfg.timesteps,
        )  # fmt: skip
        for name in direction:
            direction[name].add_(keep[name], alpha=cfg.retain_weight)
    return direction


# ----------------------------------------------------------------------------- the job


@dataclass
class ForgettingState:
    """Where an unlearning job stands: steps done, theta_k on the target weights, eta."""

    key: str
    step: int
    weights: dict[str, torch.Tensor]
    eta: float | None = None

    def save(self, path: Path) -> None:
        atomic_torch_save(
            {
                "version": STATE_VERSION,
                "key": self.key,
                "step": self.step,
                "eta": self.eta,
                "weights": {n: w.detach().cpu().clone() for n, w in self.weights.items()},
            },
            path,
        )

    @classmethod
    def load(cls, path: Path, key: str) -> ForgettingState | None:
        """The saved state if it is of this job (same parent, sets and config), else None."""
        if not path.is_file():
            return None
        try:
            raw = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # a torn or foreign file: start again
            return None
        if raw.get("version") != STATE_VERSION or raw.get("key") != key:
            return None
        return cls(key=key, step=int(raw["step"]), weights=raw["weights"], eta=raw["eta"])


def job_key(
    model: EngineModel,
    forget: Sequence[EncodedItem],
    retain: Sequence[EncodedItem],
    engine_cfg: EngineConfig,
    cfg: ForgettingConfig,
) -> str:
    """What a saved state belongs to: the parent checkpoint, the two sets, the configs."""
    payload = {
        "checkpoint": model.checkpoint_sha256,
        "forget": [item.item_id for item in forget],
        "retain": [item.item_id for item in retain],
        "engine": engine_cfg.encoding_key() | {"timestep_sequence": engine_cfg.timestep_sequence},
        "config": {k: v for k, v in cfg.to_dict().items() if k != "checkpoint_seconds"},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def forget(
    model: EngineModel,
    forget_items: Sequence[EncodedItem],
    retain_items: Sequence[EncodedItem],
    engine_cfg: EngineConfig,
    cfg: ForgettingConfig,
    *,
    fisher: dict[str, torch.Tensor] | None = None,
    state_path: Path | None = None,
    progress: Progress | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, torch.Tensor]:
    """theta_K on the target weights after cfg.steps updates of cfg.method (module docstring),
    as CPU tensors; the model is left at theta0.

    With `state_path`, the state is saved there every cfg.checkpoint_seconds and at the end,
    and a saved state of the same job is resumed: the result is bit-identical to an
    uninterrupted run. `fisher` (the parent's diagonal Fisher, Sec. 2.2) is needed by "fisher".
    """
    if not forget_items:
        raise EngineError("The forget set is empty: there is nothing to unlearn.", field="forget")
    params = target_parameters(model, cfg.target_layers)
    names = list(params)
    theta0 = {name: params[name].detach() for name in names}
    limit = cfg.max_update_norm * weights_norm(theta0)
    damping = 0.0
    if cfg.method == "fisher":
        if fisher is None:
            raise EngineError("Fisher-regularised unlearning needs the parent's Fisher.")
        damping = checked_damping(params, fisher, cfg.damping)
    key = job_key(model, forget_items, retain_items, engine_cfg, cfg)
    state = ForgettingState.load(state_path, key) if state_path is not None else None
    if state is None:
        state = ForgettingState(
            key=key, step=0, weights={n: t.cpu().clone() for n, t in theta0.items()}
        )
    last_save = clock()
    device = theta0[names[0]].device
    while state.step < cfg.steps:
        current = {n: w.to(device) for n, w in state.weights.items()}  # theta_{k-1}
        with parameters_swapped(model, current):
            if cfg.method == "fisher":
                grad = set_gradient(
                    model, forget_items, engine_cfg, params,
                    stream=f"forget:{state.step}", timesteps=cfg.timesteps,
                )  # fmt: skip
            else:
                direction = descent_direction(
                    model, forget_items, retain_items, engine_cfg, cfg, params, state.step
                )
        if cfg.method == "fisher":
            if state.eta is None:
                state.eta = step_for_target_norm(
                    current, grad, fisher, damping, cfg.fisher_update_norm
                )
            # Eq. 6 from theta_{k-1} ("accumulate" rule), written over the gradient
            updated = eq6_update(current, grad, fisher, state.eta, damping, in_place=True)
        else:
            for value in direction.values():
                value.mul_(cfg.lr)
            step = clipped(direction, limit)  # lr d_k, bounded
            updated = {n: current[n] - step[n] for n in names}
        state.weights = {n: updated[n].detach().cpu() for n in names}
        state.step += 1
        if state_path is not None and (
            clock() - last_save >= cfg.checkpoint_seconds or state.step == cfg.steps
        ):
            state.save(state_path)
            last_save = clock()
        if progress is not None:
            progress("unlearn", state.step, cfg.steps)
    return state.weights


def derived_state_dict(
    model: EngineModel, weights: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The parent's full state dict (stable-audio-tools' names) with `weights` in place of the
    target weights, contiguous CPU tensors ready for safetensors."""
    state = {n: t.detach().cpu().contiguous().clone() for n, t in model.module.state_dict().items()}
    for name, value in weights.items():
        if name not in state or state[name].shape != value.shape:
            raise EngineError(f"{name} is not a weight of this model with that shape.")
        state[name] = value.to(state[name].dtype).contiguous().clone()
    return state


def write_checkpoint(
    model: EngineModel,
    weights: dict[str, torch.Tensor],
    parent_dir: Path,
    out_dir: Path,
    manifest: dict[str, Any],
) -> Path:
    """A checkpoint folder in the parent's layout (``model_config.json``,
    ``model.safetensors``, ``training_manifest.json``): the parent's config, its weights with
    `weights` in place, and `manifest`. Returns the weights file."""
    from safetensors.torch import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(parent_dir / "model_config.json", out_dir / "model_config.json")
    weights_file = out_dir / "model.safetensors"
    partial = out_dir / "model.safetensors.partial"
    save_file(derived_state_dict(model, weights), str(partial))
    partial.replace(weights_file)
    write_json(out_dir / "training_manifest.json", manifest)
    return weights_file


def derived_manifest(
    parent_manifest: dict[str, Any],
    parent_dir: Path,
    forget_isrcs: set[str],
    lineage: dict[str, Any],
) -> dict[str, Any]:
    """The parent's training manifest without the forget set's tracks (audio paths made
    absolute, so they still resolve from the derived folder), with `lineage` recorded."""
    tracks = []
    for track in parent_manifest.get("tracks") or []:
        if str(track.get("isrc")) in forget_isrcs:
            continue
        track = dict(track)
        path = Path(track["audio_path"])
        track["audio_path"] = str(path if path.is_absolute() else (parent_dir / path).resolve())
        tracks.append(track)
    if not tracks:
        raise EngineError("Nothing would be left of the training set without the forget set.")
    return {**parent_manifest, "tracks": tracks, "unlearned_from": lineage}


# ----------------------------------------------------------------------------- validation


def set_losses(
    model: EngineModel,
    items: Sequence[EncodedItem],
    engine_cfg: EngineConfig,
    thresholds: ValidationThresholds,
) -> np.ndarray:
    """L(z, theta) of each item (Sec. 2.1), shape (n,), float64, on the "validate" stream: the
    same draws for every model compared (common random numbers)."""
    return np.array(
        [
            item_loss(
                model,
                item,
                engine_cfg,
                stream="validate",
                timesteps=thresholds.loss_timesteps,
                mask=False,
            )
            for item in items
        ],
        dtype=np.float64,
    )


def membership_auc(members: np.ndarray, non_members: np.ndarray) -> float | None:
    """AUC of the loss-threshold membership attack (Yeom et al.): the probability that a
    member's loss is below a non-member's (ties count one half). 0.5 is chance."""
    if len(members) == 0 or len(non_members) == 0:
        return None
    if not (np.isfinite(members).all() and np.isfinite(non_members).all()):
        return None  # a diverged model's losses rank nothing
    below = (members[:, None] < non_members[None, :]).sum()  # (m, n) comparisons
    ties = (members[:, None] == non_members[None, :]).sum()
    return float((below + 0.5 * ties) / (len(members) * len(non_members)))


def spectral_flatness(audio: torch.Tensor) -> float:
    """Geometric over arithmetic mean of the mean power spectrum (Hann frames, DC dropped): 1
    for white noise, near 0 for tonal sound. audio: (C, T)."""
    mono = audio.double().mean(dim=0)  # (T,)
    n_fft = min(1024, 2 ** int(np.floor(np.log2(max(16, mono.shape[0])))))
    if mono.shape[0] < n_fft:
        mono = torch.nn.functional.pad(mono, (0, n_fft - mono.shape[0]))
    spec = torch.stft(
        mono, n_fft, hop_length=n_fft // 2, window=torch.hann_window(n_fft, dtype=mono.dtype),
        return_complex=True, center=False,
    )  # (F, frames)  # fmt: skip
    power = spec.abs().pow(2).mean(dim=1)[1:] + 1e-20  # (F - 1,)
    return float(power.log().mean().exp() / power.mean())


def generation_flatness(
    model: EngineModel, prompts: Sequence[str], thresholds: ValidationThresholds, seed: int = 0
) -> list[float]:
    """Spectral flatness of one generation per prompt (sampling.generate, the model's own
    sampler settings, `generation_steps` steps, seed `seed + i`), over the model's window."""
    from attribution.engine.sampling import generate

    seconds = model.sample_size / model.sample_rate
    values = []
    for index, prompt in enumerate(prompts):
        audio, _ = generate(
            model.module, model.config, prompt, seconds, seed + index,
            steps=thresholds.generation_steps, device=model.device,
        )  # (C, T)  # fmt: skip
        values.append(spectral_flatness(audio))
    return values


def own_ranks(
    model: EngineModel,
    train_set: Any,
    engine_cfg: EngineConfig,
    targets: Sequence[int],
    store: Any = None,
    progress: Progress | None = None,
) -> list[int]:
    """R(z_tar) of Sec. 3.2 of Choi et al. (self_influence.py) for training positions
    `targets`: where each track, unlearned as a query, ranks itself (1 = first). `progress`
    gets the scoring stages of every target."""
    from attribution.engine.methods import unlearning_scores
    from attribution.engine.self_influence import logmel_embeddings, self_influence

    if not targets:
        return []
    report = self_influence(
        model, train_set, engine_cfg, list(targets),
        logmel_embeddings(train_set, model.sample_rate), k=1,
        method=lambda m, q, t, c, p: unlearning_scores(m, q, t, c, progress, store=store),
    )  # fmt: skip
    return [target.rank for target in report.targets]


DIVERGED = "not finite: the derived model diverged (a smaller update bound keeps it finite)"


def finite_or_none(value: float | None) -> float | None:
    """A measured figure as stored (JSON has no NaN or infinity): None where not finite."""
    return None if value is None or not math.isfinite(value) else value


def group_means(losses: dict[str, np.ndarray]) -> dict[str, float | None]:
    """Each group's mean loss as stored (None for an empty group or a diverged model)."""
    return {g: finite_or_none(float(v.mean())) if len(v) else None for g, v in losses.items()}


def _check(value: float | None, passed: bool | None, rule: str, note: str = "") -> dict:
    if value is not None and not math.isfinite(value):
        return {"value": None, "passed": False, "rule": rule, "note": f"{DIVERGED}; {note}"}
    return {"value": value, "passed": passed, "rule": rule, "note": note}


def loss_checks(
    parent: dict[str, np.ndarray],
    derived: dict[str, np.ndarray],
    thresholds: ValidationThresholds,
    retrained: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """The loss-based checks from per-item losses of the groups "forget", "retain" and
    "held_out" under each model:

    forgetting   mean forget loss >= (1 - tol) x mean held-out loss (derived model)
    membership   loss-attack AUC, forget vs held-out, within margin of 0.5 where the parent's
                 is above 0.5 + margin (else not applicable: nothing to remove)
    retain       |mean retain loss / parent's - 1| <= retain_tolerance
    With a retrained reference, each metric's value under it and the gap to it are added.
    Without held-out tracks, forgetting and membership cannot be measured: they say so and
    do not pass."""
    checks: dict[str, Any] = {}
    held_out = derived["held_out"]
    forget_mean = float(derived["forget"].mean())
    parent_forget = float(parent["forget"].mean())
    if len(held_out) == 0:
        note = "no held-out recordings (catalog recordings outside the training set)"
        checks["forgetting"] = _check(forget_mean, None, "forget loss vs held-out", note)
        checks["membership"] = _check(None, None, "AUC near 0.5", note)
    else:
        level = float(held_out.mean())
        checks["forgetting"] = _check(
            forget_mean,
            forget_mean >= (1 - thresholds.forget_level_tolerance) * level,
            f">= {1 - thresholds.forget_level_tolerance:.2f} x held-out mean loss {level:.6g}",
            f"parent {parent_forget:.6g}",
        )
        parent_auc = membership_auc(parent["forget"], parent["held_out"])
        auc = membership_auc(derived["forget"], held_out)
        margin = thresholds.mia_margin
        if auc is None or parent_auc is None:
            checks["membership"] = _check(None, False, f"|AUC - 0.5| <= {margin}", DIVERGED)
        elif parent_auc <= 0.5 + margin:
            checks["membership"] = _check(
                auc, True, f"|AUC - 0.5| <= {margin}",
                f"not applicable: the parent's AUC {parent_auc:.3f} is already near chance",
            )  # fmt: skip
        else:
            checks["membership"] = _check(
                auc, abs(auc - 0.5) <= margin, f"|AUC - 0.5| <= {margin}",
                f"parent {parent_auc:.3f}",
            )  # fmt: skip
    retain_change = float(derived["retain"].mean() / parent["retain"].mean() - 1)
    checks["retain_loss"] = _check(
        retain_change,
        abs(retain_change) <= thresholds.retain_tolerance,
        f"|relative change| <= {thresholds.retain_tolerance}",
        f"parent {parent['retain'].mean():.6g}, derived {derived['retain'].mean():.6g}",
    )
    if retrained is not None:
        reference = {
            "forgetting": float(retrained["forget"].mean()),
            "retain_loss": float(retrained["retain"].mean() / parent["retain"].mean() - 1),
            "membership": membership_auc(retrained["forget"], retrained["held_out"]),
        }
        for name, value in reference.items():
            mine = checks[name]["value"]
            checks[name]["retrained"] = finite_or_none(value)
            checks[name]["gap_to_retrained"] = (
                None if value is None or mine is None else finite_or_none(float(mine - value))
            )
    return checks


def flatness_check(
    parent: list[float], derived: list[float], thresholds: ValidationThresholds,
    retrained: list[float] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Generation quality on retain prompts: the relative change of mean spectral flatness."""
    before, after = float(np.mean(parent)), float(np.mean(derived))
    change = after / before - 1 if before > 0 else 0.0
    check = _check(
        change, abs(change) <= thresholds.flatness_tolerance,
        f"|relative change| <= {thresholds.flatness_tolerance}",
        f"parent {before:.4g}, derived {after:.4g} over {len(derived)} generation(s)",
    )  # fmt: skip
    if retrained is not None:
        reference = float(np.mean(retrained)) / before - 1 if before > 0 else 0.0
        check["retrained"] = finite_or_none(reference)
        check["gap_to_retrained"] = (
            None if check["value"] is None else finite_or_none(change - reference)
        )
    return check


def self_influence_check(
    parent_ranks: list[int], derived_ranks: list[int], thresholds: ValidationThresholds
) -> dict[str, Any]:
    """Retain self-influence (Sec. 3.2 of Choi et al.): each sampled retain track, unlearned as
    a query, should still rank itself near the top; the derived model's mean rank may exceed
    the parent's by at most self_rank_slack."""
    before, after = float(np.mean(parent_ranks)), float(np.mean(derived_ranks))
    return _check(
        after, after <= before + thresholds.self_rank_slack,
        f"mean own rank <= parent's {before:.2f} + {thresholds.self_rank_slack}",
        f"ranks {derived_ranks} (parent {parent_ranks})",
    )  # fmt: skip


def validation_passed(checks: dict[str, Any]) -> bool:
    """Every check passed (one that could not be measured does not pass)."""
    return all(check["passed"] is True for check in checks.values())
