"""Leave-one-rights-holder-out ground truth on the demo world: does the money follow the music?

    .venv/bin/python benchmarks/holder_ground_truth.py [--train-steps 600] [--holders 8]
        [--generations 16] [--truth-timesteps 128]
        [--unlearn-timesteps 256 --score-timesteps 4 --fisher-timesteps 4 ...]

1. Picks --holders rights holders of the demo catalog (DATA_DIR/demo, built by
   `manage.py build_demo_world`) spread over catalog sizes and styles (`pick_holders`).
2. Trains the demo DiT (demo/world/training.py: same initialisation seed, training seed and
   --train-steps) on the whole catalog, and once per picked holder without every recording
   the holder has a share in. Checkpoints are cached under --cache by a content hash of the
   model config, the training tracks (ids, audio SHA-256, captions, timing), the seeds and the
   trainer's code, so an interrupted run resumes and a rerun trains nothing.
3. Samples --generations generations with the full-data model, one per distinct prompt in the
   style of the catalog's captions (cached by the same kind of hash).
4. Ground truth a*(h, g) = L(g | theta without h) - L(g | theta full): the training loss of the
   generation under both models with identical timesteps and noise (keyed draws of
   attribution/engine/loss.py, stream "ground_truth"), and its standard error over the draws.
5. Every method registered in attribution.engine.methods.METHODS scores every generation on the
   full-data model; per holder, the summed scores of its recordings and its share of the pool
   as the ledger splits it (ledger/splits.py, ownership shares of the catalog).
6. attribution/engine/agreement.py's statistics (I, K, calibrated SNR, Spearman, Pearson) per
   holder across generations (as the sao_ip_pilot study reports them), per generation across
   holders and pooled; top-1 agreement; the pool share paid to the three holders whose
   removal raises the generation's loss most; the same under other split policies.

Writes benchmarks/results/<stem>.json, <stem>-pairs.csv, <stem>-summary.csv and PNG plots;
the JSON is rewritten as stages finish, so an interrupted run leaves what it measured
(`"complete": false`). Not a test: every number is measured.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import platform
import subprocess
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np
from attribution_common import (
    DATA_DIR,
    REPO_ROOT,
    Bar,
    add_engine_flags,
    engine_config,
    hub_report,
    load_catalog,
    standardised,
    window_shares,
    write_json,
)

RESULTS = Path(__file__).resolve().parent / "results"
INIT_SEED = 0  # the demo world's seed: initialisation and training
REVENUE_MINOR = 250  # what one demo generation earns (demo/services.py); shares do not depend on it
SPLIT_POLICIES = {
    # name -> (temperature, top_k, min_share); "ledger default" is LEDGER_* in config/settings
    "ledger default (T=1, top 100, min 0.1 %)": ("1", 100, "0.001"),
    "T=0.25": ("0.25", 100, "0.001"),
    "T=0.5": ("0.5", 100, "0.001"),
    "T=2": ("2", 100, "0.001"),
    "T=4": ("4", 100, "0.001"),
    "T=1, top 10": ("1", 10, "0.001"),
    "T=1, no cut-off": ("1", None, "0"),
}
DEFAULT_POLICY = next(iter(SPLIT_POLICIES))
# Methods whose score is a training track's loss rise: the window-share correction applies
LOSS_RISE_METHODS = ("unlearning", "first_order")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    parser.add_argument("--world", default=str(DATA_DIR / "demo"), help="the demo world's root")
    parser.add_argument(
        "--cache",
        default=str(DATA_DIR / "benchmarks" / "holder_ground_truth"),
        help="retrained checkpoints, generations and scores, keyed by content hash",
    )
    parser.add_argument("--train-steps", type=int, default=600, help="steps of every training")
    parser.add_argument("--holders", type=int, default=8, help="rights holders left out")
    parser.add_argument("--generations", type=int, default=16, help="distinct prompts")
    parser.add_argument(
        "--truth-timesteps", type=int, default=128, help="draws per ground-truth loss"
    )
    parser.add_argument("--sampling-steps", type=int, default=None, help="default: the model's")
    parser.add_argument(
        "--noise-floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also train the full catalog with another training seed (same initialisation): "
        "a*'s size when nothing is left out",
    )
    parser.add_argument("--max-holder-share", type=float, default=0.4)
    parser.add_argument(
        "--methods",
        default=None,
        help="attribute phase only: comma-separated registered methods to score (default: all; "
        "the report always compares every registered method)",
    )
    parser.add_argument("--stem", default=None, help="default: holder_ground_truth-<date>-<commit>")
    parser.add_argument(
        "--phase",
        choices=("all", "train", "attribute", "truth"),
        default="all",
        help="train: only the trainings; attribute: only the full-data model, its generations "
        "and every method's scores (a second process can run it while the other trainings "
        "run); truth: the trainings and the ground-truth losses; all: everything, reusing "
        "whatever the cache holds",
    )
    parser.add_argument(
        "--train-shard",
        type=train_shard,
        default=(0, 1),
        metavar="I/N",
        help="train phase only: train every N-th training of the fixed order, starting at the "
        "I-th (0-based), so N processes share the trainings; the cache joins their results",
    )
    return parser.parse_args()


def train_shard(text: str) -> tuple[int, int]:
    """Parse "I/N" (0 <= I < N)."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N, e.g. 0/2, not {text!r}") from None
    if not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"need 0 <= I < N, not {text!r}")
    return index, count


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def sha256_json(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


# --- the catalog ---------------------------------------------------------------------------


def pick_holders(tracks, holders, shares, count: int, max_share: float) -> list[str]:
    """`count` holders spread over catalog sizes and styles, deterministically.

    Holders with a share in more than `max_share` of the catalog are left out (removing them
    removes most of the training set, not one holder's music). The others are sorted by
    catalog size; the pick walks evenly spaced positions of that order and, at each, takes
    the nearest holder whose main collection (style) or kind is not yet represented."""
    counts: dict[str, int] = {}
    collections: dict[str, dict[str, int]] = {}
    for track in tracks:
        for name, _ in shares[track.isrc]:
            counts[name] = counts.get(name, 0) + 1
            by = collections.setdefault(name, {})
            by[track.collection] = by.get(track.collection, 0) + 1
    eligible = sorted(
        (name for name, n in counts.items() if 2 <= n <= max_share * len(tracks)),
        key=lambda name: (counts[name], name),
    )
    if len(eligible) < count:
        raise SystemExit(f"only {len(eligible)} holders are eligible, {count} asked for")

    def style(name: str) -> str:
        return max(collections[name].items(), key=lambda kv: (kv[1], kv[0]))[0]

    picked: list[str] = []
    for slot in range(count):
        target = round(slot * (len(eligible) - 1) / max(1, count - 1))
        candidates = sorted(
            (name for name in eligible if name not in picked),
            key=lambda name: abs(eligible.index(name) - target),
        )
        seen_styles = {style(n) for n in picked}
        seen_kinds = {holders.get(n) for n in picked}
        fresh = [
            n
            for n in candidates[:6]
            if style(n) not in seen_styles or holders.get(n) not in seen_kinds
        ]
        picked.append((fresh or candidates)[0])
    return sorted(picked, key=lambda name: (counts[name], name))


def generation_prompts(tracks, count: int) -> list[dict]:
    """`count` distinct prompts in the style of the catalog's captions, naming no title: a
    caption without its title, from tracks spread round-robin over collections, then
    ensembles. Durations alternate 4 and 5 s; seeds are 1..count."""
    by_collection: dict[str, list] = {}
    for track in tracks:
        by_collection.setdefault(track.collection, []).append(track)
    queues = [
        sorted(group, key=lambda t: (t.ensemble, t.track_id))
        for _, group in sorted(by_collection.items(), key=lambda kv: -len(kv[1]))
    ]
    prompts: list[tuple[str, str]] = []  # (prompt, collection of the track it came from)
    used_ensembles: dict[int, set] = {i: set() for i in range(len(queues))}
    while len(prompts) < count and any(queues):
        for index, queue in enumerate(queues):
            if len(prompts) >= count or not queue:
                continue
            pick = next((t for t in queue if t.ensemble not in used_ensembles[index]), queue[0])
            queue.remove(pick)
            used_ensembles[index].add(pick.ensemble)
            prompt = pick.caption.split(", ", 1)[1] if ", " in pick.caption else pick.caption
            if prompt not in (p for p, _ in prompts):
                prompts.append((prompt, pick.collection))
    return [
        {"prompt": p, "seconds": 4.0 + (i % 2), "seed": i + 1, "collection": collection}
        for i, (p, collection) in enumerate(prompts)
    ]


# --- training, cached by content hash ------------------------------------------------------


def world_model_record(world_root: Path | None, fingerprint: str, label: str) -> dict | None:
    """The demo world's own trained model as a training record, when it is the very training
    asked for (same fingerprint: config, tracks, seeds, trainer code) and its files are
    intact; None otherwise."""
    from demo.world import build

    if world_root is None:
        return None
    state = build.read_state(world_root).get("model", {})
    if state.get("fingerprint") != fingerprint or not build.files_intact(
        world_root, state.get("files", {})
    ):
        return None
    folder = world_root / "model"
    report = json.loads((folder / "training_report.json").read_text())
    return {
        "label": label,
        "fingerprint": fingerprint,
        "folder": str(folder),
        "tracks": len(report.get("eval_loss_per_train_track", {})),
        "steps": report["steps"],
        "init_seed": INIT_SEED,
        "train_seed": INIT_SEED,
        "train_seconds": report["train_seconds"],
        "seconds_per_step": round(report["train_seconds"] / report["steps"], 3),
        "loss_first_20_steps": report["loss_first_20_steps"],
        "loss_last_20_steps": report["loss_last_20_steps"],
        "weights_sha256": build.sha256_file(folder / "model.safetensors"),
        "reused_from": "the demo world's model",
    }


def train_cached(
    tracks,
    *,
    steps: int,
    train_seed: int,
    cache: Path,
    label: str,
    log,
    world_root: Path | None = None,
) -> dict:
    """Train the demo DiT on `tracks` (or reuse the cached result, or the demo world's model
    under `world_root` when it is the same training). Returns the record."""
    import torch

    from attribution.engine.loading import build_model
    from demo.world import build, training, world
    from demo.world.model_config import ArchitectureConfig, TrainingConfig, model_config

    training_cfg = replace(TrainingConfig(), steps=steps, seed=train_seed, batch_size=8)
    config = model_config(ArchitectureConfig(), training_cfg)
    fingerprint = world.model_fingerprint(config, tracks, INIT_SEED)
    reused = world_model_record(world_root, fingerprint, label)
    if reused is not None:
        log(f"{label}: reused the demo world's model {reused['folder']} (fingerprints match)")
        return reused
    folder = cache / "models" / fingerprint[:20]
    record_path = folder / "record.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        weights = folder / "model.safetensors"
        if (
            record.get("fingerprint") == fingerprint
            and weights.is_file()
            and build.sha256_file(weights) == record.get("weights_sha256")
        ):
            log(f"{label}: reused {folder} (hashes match)")
            return record
    training.verify_hashes(tracks, Path("/"))
    audio = training.load_audio(
        tracks, Path("/"), sample_rate=config["sample_rate"], sample_size=config["sample_size"]
    )
    torch.manual_seed(INIT_SEED)  # the demo world's initialisation (world.build_world)
    model = build_model(config)
    log(f"{label}: training {steps} steps on {len(tracks)} tracks")
    bar = Bar()
    result = training.train(
        model,
        audio,
        training.conditioning_metadata(tracks),
        training_cfg,
        on_step=lambda step, total, _loss: bar("train " + label, step, total),
    )
    bar.close()
    training.save_checkpoint(model, config, folder)
    build.write_manifest(
        folder / "training_manifest.json",
        seed=train_seed,
        sample_rate=config["sample_rate"],
        tracks=tracks,
        created_at=build.utc_now(),
    )
    first, last = training.head_tail_means(result.losses)
    record = {
        "label": label,
        "fingerprint": fingerprint,
        "folder": str(folder),
        "tracks": len(tracks),
        "steps": steps,
        "init_seed": INIT_SEED,
        "train_seed": train_seed,
        "train_seconds": round(result.seconds, 1),
        "seconds_per_step": round(result.seconds / steps, 3),
        "loss_first_20_steps": first,
        "loss_last_20_steps": last,
        "weights_sha256": build.sha256_file(folder / "model.safetensors"),
    }
    (folder / "record.json").write_text(json.dumps(record, indent=1))
    log(f"{label}: trained in {result.seconds:.0f} s ({result.seconds / steps:.2f} s/step)")
    return record


# --- generations, ground truth, scores -----------------------------------------------------


def generate_cached(model, prompts: list[dict], cache: Path, sampling_steps, log) -> list[dict]:
    """Sample each prompt with the full-data model; WAVs cached by (checkpoint, prompt) hash."""
    import soundfile

    from attribution.engine.sampling import generate

    out = []
    bar = Bar()
    for index, spec in enumerate(prompts):
        sampled = {k: spec[k] for k in ("prompt", "seconds", "seed")}
        key = sha256_json(
            {"checkpoint": model.checkpoint_sha256, **sampled, "steps": sampling_steps}
        )
        path = cache / "generations" / f"{key[:20]}.wav"
        if not path.is_file():
            audio, rate = generate(
                model.module,
                model.config,
                spec["prompt"],
                spec["seconds"],
                spec["seed"],
                sampling_steps,
            )  # (C, T)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp.wav")
            soundfile.write(str(tmp), audio.numpy().T, rate, subtype="FLOAT")
            tmp.replace(path)
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, C)
        out.append(
            {**spec, "id": f"g{index + 1:02d}", "path": str(path), "audio": audio.T, "rate": rate}
        )
        bar("generate", index + 1, len(prompts))
    bar.close()
    log(f"{len(out)} generations ready")
    return out


def query_for(model, generation: dict):
    from attribution.engine.items import make_query

    return make_query(
        generation["audio"],
        generation["rate"],
        generation["prompt"],
        model,
        item_id=f"generation:{generation['id']}:{generation['path'][-24:-4]}",
    )


def per_draw_losses(model, generation: dict, cfg, timesteps: int, cache: Path) -> np.ndarray:
    """L_t(g, theta) for draws 0..timesteps-1, keyed by the generation (identical across
    models: common random numbers), float64, shape (T,); cached by checkpoint and draws."""
    import torch

    from attribution.engine.items import encode_item
    from attribution.engine.loss import chunks, draw, row_losses

    query = query_for(model, generation)
    key = sha256_json(
        {
            "checkpoint": model.checkpoint_sha256,
            "query": query.item_id,
            "draws": cfg.scoring_key(),
            "seed": cfg.seed,
            "timesteps": timesteps,
        }
    )
    path = cache / "truth" / f"{key[:24]}.npy"
    if path.is_file():
        return np.load(path)
    item = encode_item(model, query, cfg)
    rows = []
    with torch.no_grad():
        for indices in chunks(timesteps, cfg.batch_size):
            t, noise = draw(model, item, cfg, "ground_truth", indices)
            rows.append(row_losses(model, item, t, noise, mask=cfg.loss_mask).double().cpu())
    losses = torch.cat(rows).numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, losses)
    return losses


def method_scores(
    method, model, train_set, cfg, store, generations, cache: Path, log
) -> tuple[np.ndarray, list[float | None]]:
    """tau (G, N) of one method on the full-data model, cached per (method, config, query),
    and the seconds each generation's scores took when they were computed (the first query
    also pays for the per-checkpoint artifacts)."""
    from attribution.engine.pipeline import attribute

    rows, seconds = [], []
    for generation in generations:
        query = query_for(model, generation)
        key = sha256_json(
            {
                "method": method.name,
                "checkpoint": model.checkpoint_sha256,
                "manifest": train_set.manifest_sha256,
                "cfg": cfg.to_dict(),
                "query": query.item_id,
            }
        )
        path = cache / "scores" / f"{method.name}-{key[:20]}.npy"
        timing = path.with_suffix(".json")
        if path.is_file():
            tau = np.load(path)
        else:
            started = time.perf_counter()
            bar = Bar()
            scores = attribute(method, model, query, train_set, cfg, bar, store=store)
            bar.close()
            tau = np.asarray(scores.tau, dtype=np.float64)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, tau)
            timing.write_text(json.dumps({"seconds": round(time.perf_counter() - started, 1)}))
            log(f"{method.name} {generation['id']}: {time.perf_counter() - started:.0f} s")
        rows.append(tau)
        seconds.append(json.loads(timing.read_text())["seconds"] if timing.is_file() else None)
    return np.stack(rows), seconds  # (G, N), (G,)


def paid_shares(tau: np.ndarray, ownership: dict, holder_ids: dict, policy) -> np.ndarray:
    """Share of the pool each holder (all of the catalog's) receives for each generation under
    the ledger's split: (G, N) scores -> (G, H_all)."""
    from ledger.splits import generation_split, track_weights

    out = np.zeros((tau.shape[0], len(holder_ids)))
    for row, scores in enumerate(tau):
        split = generation_split(
            revenue_minor=REVENUE_MINOR,
            weights=track_weights(list(scores), policy),
            pool_fraction=policy.pool_fraction,
            ownership=ownership,
        )
        for holder_id, amount in split.holders:
            out[row, holder_id] = amount / split.pool
    return out


# --- report ------------------------------------------------------------------------------


def stats_block(a_hat: np.ndarray, a_star: np.ndarray, *, bootstrap: bool) -> dict:
    from attribution.engine import agreement

    block = agreement.agreement(a_hat, a_star)
    if bootstrap:
        for name in ("I", "spearman", "snr_calibrated"):
            block[f"{name}_ci95"] = list(
                agreement.bootstrap_interval(a_hat, a_star, agreement.STATISTICS[name], seed=0)
            )
    return block


def nan_median(values) -> float:
    """Median of the defined values; NaN (without numpy's warning) when none is."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


def finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return [finite_or_none(v) for v in value]
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    return value


def analyse(a_star, a_star_se, estimates, picked, generations, catalog_share, noise_floor) -> dict:
    """Every statistic, per estimate name ("<method> score sum" / "<method> paid share ...")."""
    from attribution.engine import agreement

    results = {}
    for name, a_hat in estimates.items():  # (G, H) each
        per_holder = {
            holder: stats_block(a_hat[:, h], a_star[:, h], bootstrap=True)
            for h, holder in enumerate(picked)
        }
        per_generation = {
            g["id"]: stats_block(a_hat[i], a_star[i], bootstrap=False)
            for i, g in enumerate(generations)
        }
        top1 = agreement.top1_agreement(a_hat, a_star)
        entry = {
            "pooled": stats_block(a_hat, a_star, bootstrap=True),
            "per_holder": per_holder,
            "per_generation": per_generation,
            "median_per_generation_spearman": nan_median(
                [b["spearman"] for b in per_generation.values()]
            ),
            "median_per_holder_spearman": nan_median([b["spearman"] for b in per_holder.values()]),
            "top1_agreement": float(top1.mean()),
            "top1_per_generation": top1.tolist(),
        }
        if "paid share" in name:
            top3 = agreement.share_to_top_effects(a_hat, a_star, k=3)
            entry["pool_share_to_top3_truth_mean"] = float(top3.mean())
            entry["pool_share_to_top3_truth_per_generation"] = top3.tolist()
            entry["pool_share_to_picked_holders_mean"] = float(a_hat.sum(axis=1).mean())
        results[name] = entry
    top3_catalog = agreement.share_to_top_effects(
        np.broadcast_to(catalog_share, a_star.shape), a_star, k=3
    )
    return {
        "estimates": results,
        "catalog_share_reference": {
            "pool_share_to_top3_truth_mean": float(top3_catalog.mean()),
            "note": "what the three would get if every generation paid by catalog share",
        },
        "a_star_beyond_two_draw_standard_errors_share": float(
            np.mean(np.abs(a_star) > 2 * a_star_se)
        ),
        "a_star_beyond_two_noise_floors_share": (
            None if noise_floor is None else float(np.mean(np.abs(a_star) > 2 * noise_floor))
        ),
        "a_star_beyond_two_noise_floors_per_holder": (
            None
            if noise_floor is None
            else dict(
                zip(
                    picked,
                    np.mean(np.abs(a_star) > 2 * noise_floor, axis=0).tolist(),
                    strict=True,
                )
            )
        ),
    }


def plot(path_stem: Path, a_star, estimates, picked, noise_floor) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    names = list(estimates)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4 * rows), dpi=110, squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        a_hat = estimates[name]
        for h, holder in enumerate(picked):
            ax.scatter(a_hat[:, h], a_star[:, h], s=14, label=holder[:28])
        if noise_floor is not None:
            ax.axhspan(-2 * noise_floor, 2 * noise_floor, color="0.85", zorder=0)
        ax.set_xlabel(name)
        ax.set_ylabel("a* (leave-holder-out loss change)")
        ax.axhline(0, color="0.5", lw=0.6)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6, loc="best")
    fig.suptitle("estimate vs retraining ground truth, one point per (holder, generation)")
    fig.tight_layout()
    path = path_stem.with_name(path_stem.name + "-scatter.png")
    fig.savefig(path)
    plt.close(fig)
    written.append(str(path))

    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(picked), 4.2), dpi=110)
    ax.boxplot([a_star[:, h] for h in range(len(picked))], tick_labels=[p[:18] for p in picked])
    if noise_floor is not None:
        ax.axhspan(-2 * noise_floor, 2 * noise_floor, color="0.85", zorder=0)
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_ylabel("a* over the generations")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    fig.tight_layout()
    path = path_stem.with_name(path_stem.name + "-truth.png")
    fig.savefig(path)
    plt.close(fig)
    written.append(str(path))
    return written


def main() -> None:
    args = parse_args()
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import load_training_set
    from attribution.engine.methods import METHODS
    from ledger.splits import SplitPolicy

    torch.set_num_threads(args.threads)
    started_all = time.perf_counter()
    world_root, cache = Path(args.world), Path(args.cache)
    commit = git_commit()
    stem = args.stem or f"holder_ground_truth-{time.strftime('%Y-%m-%d')}-{commit}"
    out_stem = Path(args.out) / stem
    timings: dict[str, float] = {}

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started_all:7.0f} s] {message}", flush=True)

    tracks, holder_kinds, shares = load_catalog(world_root)
    picked = pick_holders(tracks, holder_kinds, shares, args.holders, args.max_holder_share)
    holders_of = {t.track_id: {name for name, _ in shares[t.isrc]} for t in tracks}
    removed = {h: [t for t in tracks if h not in holders_of[t.track_id]] for h in picked}
    for h in picked:
        log(f"holder {h} ({holder_kinds[h]}): {len(tracks) - len(removed[h])} recordings")
    payload: dict = {
        "complete": False,
        "benchmark": "holder_ground_truth",
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} threads",
        "command": " ".join(["benchmarks/holder_ground_truth.py", *sys.argv[1:]]),
        "train_steps": args.train_steps,
        "training_tracks": len(tracks),
        "holders": [
            {
                "name": h,
                "kind": holder_kinds[h],
                "recordings": len(tracks) - len(removed[h]),
                "collections": sorted(
                    {t.collection for t in tracks if h in holders_of[t.track_id]}
                ),
            }
            for h in picked
        ],
        "timings_s": timings,
    }
    json_path = out_stem.with_suffix(".json")

    def save() -> None:
        if args.phase != "all":  # a partial phase fills the cache; the full run reports
            return
        timings["total"] = round(time.perf_counter() - started_all, 1)
        write_json(json_path, finite_or_none(payload))

    # 2. the trainings, in a fixed order: (record name, tracks, training seed, log label)
    started = time.perf_counter()
    plan = [("full", tracks, INIT_SEED, "full")]
    if args.phase != "attribute":
        if args.noise_floor:
            plan.append(("full, other training seed", tracks, INIT_SEED + 1,
                         "full, other training seed"))  # fmt: skip
        plan += [(h, removed[h], INIT_SEED, f"without {h}") for h in picked]
    if args.phase == "train":
        index, count = args.train_shard
        plan = plan[index::count]
    records: dict = {}
    payload["trainings"] = records
    for name, kept, seed, label in plan:
        records[name] = train_cached(
            kept, steps=args.train_steps, train_seed=seed, cache=cache, label=label, log=log,
            world_root=world_root if name == "full" else None,
        )  # fmt: skip
        save()
    timings["trainings"] = round(time.perf_counter() - started, 1)
    if args.phase == "train":
        return

    # 3. generations with the full-data model
    cfg = engine_config(args)
    full = load_engine_model(records["full"]["folder"])
    payload["checkpoint_sha256"] = full.checkpoint_sha256
    started = time.perf_counter()
    prompts = generation_prompts(tracks, args.generations)
    generations = generate_cached(full, prompts, cache, args.sampling_steps, log)
    timings["generate"] = round(time.perf_counter() - started, 1)
    payload["generations"] = [
        {k: g[k] for k in ("id", "prompt", "seconds", "seed", "collection")} for g in generations
    ]
    train_set = load_training_set(Path(records["full"]["folder"]) / "training_manifest.json", full)
    store = ArtifactStore(cache / "artifacts")
    if args.phase == "attribute":
        chosen = args.methods.split(",") if args.methods else list(METHODS)
        unknown = sorted(set(chosen) - set(METHODS))
        if unknown:
            raise SystemExit(f"unknown methods {unknown}; registered: {sorted(METHODS)}")
        for method in (METHODS[name] for name in chosen):
            started = time.perf_counter()
            method_scores(method, full, train_set, cfg, store, generations, cache, log)
            log(f"{method.name}: {time.perf_counter() - started:.0f} s for every generation")
        return

    # 4. ground truth
    started = time.perf_counter()
    base = np.stack(
        [per_draw_losses(full, g, cfg, args.truth_timesteps, cache) for g in generations]
    )
    others = [h for h in records if h != "full"]
    diffs = {}
    for name in others:
        model = load_engine_model(records[name]["folder"])
        per_draw = np.stack(
            [per_draw_losses(model, g, cfg, args.truth_timesteps, cache) for g in generations]
        )  # (G, T)
        diffs[name] = per_draw - base
        log(f"ground truth: {name}")
    a_star = np.stack([diffs[h].mean(axis=1) for h in picked], axis=1)  # (G, H)
    a_star_se = np.stack(
        [diffs[h].std(axis=1, ddof=1) / math.sqrt(args.truth_timesteps) for h in picked], axis=1
    )
    noise_floor = None
    if "full, other training seed" in diffs:
        seed_effect = diffs["full, other training seed"].mean(axis=1)  # (G,)
        noise_floor = float(np.sqrt(np.mean(seed_effect**2)))
        payload["noise_floor"] = {
            "a_star_rms_other_training_seed": noise_floor,
            "per_generation": seed_effect.tolist(),
            "note": "L(g | full, training seed 1) - L(g | full, seed 0): the change retraining "
            "alone makes when nothing is left out",
        }
    timings["ground_truth"] = round(time.perf_counter() - started, 1)
    if args.phase == "truth":
        return
    payload["ground_truth"] = {
        "timesteps": args.truth_timesteps,
        "loss_full": base.mean(axis=1).tolist(),
        "a_star": a_star.tolist(),
        "a_star_standard_error": a_star_se.tolist(),
        "a_star_rms_per_holder": dict(
            zip(picked, np.sqrt((a_star**2).mean(axis=0)).tolist(), strict=True)
        ),
    }
    save()

    # 5. every registered method on the full-data model
    position_of = {item.item_id: i for i, item in enumerate(train_set.items)}
    holder_ids = {name: i for i, name in enumerate(sorted(holder_kinds))}
    ownership = {
        position_of[t.track_id]: [(holder_ids[n], p) for n, p in shares[t.isrc]] for t in tracks
    }
    membership = np.zeros((len(picked), len(train_set)))  # (H, N)
    for h, holder in enumerate(picked):
        for t in tracks:
            if holder in holders_of[t.track_id]:
                membership[h, position_of[t.track_id]] = 1.0
    picked_ids = [holder_ids[h] for h in picked]
    catalog_share = np.zeros(len(picked))  # what a by-catalog split would give each holder
    for t in tracks:
        for n, p in shares[t.isrc]:
            if n in picked:
                catalog_share[picked.index(n)] += float(p) / 100 / len(tracks)
    from attribution.engine import agreement

    estimates: dict[str, np.ndarray] = {}
    corrections: dict[str, np.ndarray] = {}  # corrected scores' paid shares, reported apart
    shares_of_window = window_shares(store.encodings(full, train_set, cfg))  # (N,)
    hubs: dict[str, dict] = {}
    policy_sweep: dict[str, dict] = {}
    for method_name, method in METHODS.items():
        started = time.perf_counter()
        tau, seconds = method_scores(method, full, train_set, cfg, store, generations, cache, log)
        timings[f"method {method_name} (this run)"] = round(time.perf_counter() - started, 1)
        timings[f"method {method_name} when computed, per generation"] = seconds
        estimates[f"{method_name} score sum"] = agreement.holder_totals(tau, membership)
        # raw sums grow with a holder's catalog whatever the sign of the scores' common
        # offset; centred per generation, an average track adds nothing
        estimates[f"{method_name} centred score sum"] = agreement.holder_totals(
            tau - tau.mean(axis=1, keepdims=True), membership
        )
        hubs[method_name] = hub_report(tau, train_set, tracks, generations)
        for policy_name, (temperature, top_k, min_share) in SPLIT_POLICIES.items():
            policy = SplitPolicy(
                temperature=Decimal(temperature), top_k=top_k, min_share=Decimal(min_share)
            )
            paid = paid_shares(tau, ownership, holder_ids, policy)[:, picked_ids]  # (G, H)
            if policy_name == DEFAULT_POLICY:
                estimates[f"{method_name} paid share"] = paid
                # the corrections measured against hub tracks and short tracks, paid by the
                # same policy: does either bring the split closer to the truth?
                corrections[f"{method_name} paid share, per-track standardised"] = paid_shares(
                    standardised(tau), ownership, holder_ids, policy
                )[:, picked_ids]
                if method_name in LOSS_RISE_METHODS:
                    corrections[f"{method_name} paid share, window-share corrected"] = paid_shares(
                        tau / shares_of_window, ownership, holder_ids, policy
                    )[:, picked_ids]
            policy_sweep.setdefault(method_name, {})[policy_name] = {
                "pooled_spearman": agreement.spearman(paid, a_star),
                "median_per_generation_spearman": nan_median(
                    [agreement.spearman(paid[g], a_star[g]) for g in range(len(paid))]
                ),
                "top1_agreement": float(agreement.top1_agreement(paid, a_star).mean()),
                "pool_share_to_top3_truth_mean": float(
                    agreement.share_to_top_effects(paid, a_star).mean()
                ),
            }
        save()
    # the reference a method has to beat: paying every generation by catalog share
    estimates["no attribution: paid share by catalog size"] = np.tile(
        catalog_share, (len(generations), 1)
    )
    payload["methods"] = sorted(METHODS)
    payload["engine_config"] = cfg.to_dict()
    payload["analysis"] = analyse(
        a_star, a_star_se, estimates, picked, generations, catalog_share, noise_floor
    )
    payload["corrections"] = analyse(
        a_star, a_star_se, corrections, picked, generations, catalog_share, noise_floor
    )
    payload["split_policy_sweep"] = policy_sweep
    payload["hub_tracks"] = hubs
    payload["plots"] = plot(out_stem, a_star, estimates, picked, noise_floor)
    write_csvs(
        out_stem, a_star, a_star_se, {**estimates, **corrections}, picked, generations, payload
    )
    payload["complete"] = True
    save()
    print_summary(payload)


def write_csvs(out_stem, a_star, a_star_se, estimates, picked, generations, payload) -> None:
    with open(out_stem.with_name(out_stem.name + "-pairs.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["generation", "holder", "a_star", "a_star_se", *estimates])
        for g, generation in enumerate(generations):
            for h, holder in enumerate(picked):
                writer.writerow(
                    [generation["id"], holder, a_star[g, h], a_star_se[g, h]]
                    + [estimates[name][g, h] for name in estimates]
                )
    with open(out_stem.with_name(out_stem.name + "-summary.csv"), "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["estimate", "scope", "n", "I", "K", "snr_calibrated", "spearman", "pearson"]
        )
        rows = {**payload["analysis"]["estimates"], **payload["corrections"]["estimates"]}
        for name, entry in rows.items():
            scopes = {"pooled": entry["pooled"], **entry["per_holder"], **entry["per_generation"]}
            for scope, block in scopes.items():
                writer.writerow(
                    [name, scope, block["n"]]
                    + [block[k] for k in ("I", "K", "snr_calibrated", "spearman", "pearson")]
                )


def print_summary(payload: dict) -> None:
    print(f"\nwrote {payload['plots']} and the JSON/CSV beside them")
    for method, hub in payload["hub_tracks"].items():
        print(
            f"{method}: {hub['unrelated_top_k_slots']} of {hub['top_k_slots']} top-3 places went "
            f"to tracks of another collection; most frequent: {hub['most_frequent'][:2]}"
        )
    floor = payload.get("noise_floor", {}).get("a_star_rms_other_training_seed")
    print(f"a* rms per holder: {payload['ground_truth']['a_star_rms_per_holder']}")
    print(f"noise floor (other training seed, rms): {floor}")
    print(f"{'estimate':<58} {'rho pooled':>10} {'rho/gen':>8} {'rho/holder':>10} "
          f"{'I':>9} {'K':>9} {'SNR':>7} {'top-1':>6} {'top-3 share':>11}")  # fmt: skip
    rows = {**payload["analysis"]["estimates"], **payload["corrections"]["estimates"]}
    for name, e in rows.items():
        p = e["pooled"]
        top3 = e.get("pool_share_to_top3_truth_mean")
        print(
            f"{name:<58} {p['spearman']:>10.3f} {e['median_per_generation_spearman']:>8.3f} "
            f"{e['median_per_holder_spearman']:>10.3f} {p['I']:>9.3g} {p['K']:>9.3g} "
            f"{p['snr_calibrated']:>7.3f} {e['top1_agreement']:>6.2f} "
            f"{'' if top3 is None else f'{top3:.3f}':>11}"
        )


if __name__ == "__main__":
    main()
