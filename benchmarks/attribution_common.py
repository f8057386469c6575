"""Shared plumbing of the attribution benchmarks (no Django): engine-config flags, loading the
checkpoint and training set, a tqdm progress callback, the demo catalog and its hub report,
report writing."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

DATA_DIR = Path(os.environ.get("ROYALTIES_DATA_DIR", REPO_ROOT / "data")).resolve()


def add_engine_flags(parser: argparse.ArgumentParser) -> None:
    from attribution.engine.config import (
        PROJECTION_CHOICES,
        TARGET_LAYER_CHOICES,
        TIMESTEP_SEQUENCE_CHOICES,
        EngineConfig,
    )

    defaults = EngineConfig()
    parser.add_argument("--checkpoint", default=str(DATA_DIR / "demo" / "model"))
    parser.add_argument(
        "--manifest", default=None, help="default: <checkpoint>/training_manifest.json"
    )
    parser.add_argument("--artifacts", default=str(DATA_DIR / "artifacts" / "attribution"))
    # Figures go where BENCHMARKS.md rows point (commit them with the row).
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--targets", type=int, default=40, help="k-means targets (paper: 40)")
    parser.add_argument(
        "--positions",
        default=None,
        help="comma-separated training positions to use as targets instead of k-means ones, "
        "or `all` for every training track",
    )
    parser.add_argument("--k", type=int, default=100, help="top/bottom-k (paper: 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the targets")
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument(
        "--lr-times-inverse-n",
        action=argparse.BooleanOptionalAction,
        default=defaults.lr_times_inverse_n,
        help="Eq. 6 step eta = lr / N (explicit 1/N) instead of eta = lr (1/N absorbed)",
    )
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--damping", type=float, default=defaults.damping)
    parser.add_argument(
        "--target-layers", choices=TARGET_LAYER_CHOICES, default=defaults.target_layers
    )
    parser.add_argument(
        "--unlearn-mask", action=argparse.BooleanOptionalAction, default=defaults.unlearn_mask
    )
    parser.add_argument(
        "--loss-mask", action=argparse.BooleanOptionalAction, default=defaults.loss_mask
    )
    parser.add_argument("--unlearn-timesteps", type=int, default=defaults.unlearn_timesteps)
    parser.add_argument("--score-timesteps", type=int, default=defaults.score_timesteps)
    parser.add_argument("--fisher-timesteps", type=int, default=defaults.fisher_timesteps)
    parser.add_argument(
        "--timestep-sequence",
        choices=TIMESTEP_SEQUENCE_CHOICES,
        default=defaults.timestep_sequence,
    )
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", default=defaults.device)
    parser.add_argument("--first-order-timesteps", type=int, default=defaults.first_order_timesteps)
    parser.add_argument("--projection", choices=PROJECTION_CHOICES, default=defaults.projection)
    parser.add_argument("--projection-dim", type=int, default=defaults.projection_dim)


def engine_config(args: argparse.Namespace):
    from attribution.engine.config import EngineConfig

    return EngineConfig(
        lr=args.lr,
        lr_times_inverse_n=args.lr_times_inverse_n,
        steps=args.steps,
        damping=args.damping,
        target_layers=args.target_layers,
        unlearn_mask=args.unlearn_mask,
        loss_mask=args.loss_mask,
        unlearn_timesteps=args.unlearn_timesteps,
        score_timesteps=args.score_timesteps,
        fisher_timesteps=args.fisher_timesteps,
        timestep_sequence=args.timestep_sequence,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        first_order_timesteps=args.first_order_timesteps,
        projection=args.projection,
        projection_dim=args.projection_dim,
    )


class Bar:
    """progress(stage, done, total) -> one tqdm bar per stage, on stderr."""

    def __init__(self) -> None:
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None or bar.total != total or done < bar.n:
            if bar is not None:
                bar.close()
            bar = self.bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()
        self.bars.clear()


def method_of(args: argparse.Namespace) -> str:
    """The attribution method a benchmark scores its targets with (`--method` where the script
    has one, the exact method otherwise)."""
    return getattr(args, "method", "unlearning")


def prepare(args: argparse.Namespace):
    """(model, train_set, cfg, store, embeddings, targets, timings) for a benchmark run."""
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import load_training_set
    from attribution.engine.self_influence import kmeans_targets, logmel_embeddings

    torch.set_num_threads(args.threads)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    model = load_engine_model(args.checkpoint, device=args.device)
    manifest = Path(args.manifest or Path(args.checkpoint) / "training_manifest.json")
    train_set = load_training_set(manifest, model)
    timings["load_s"] = time.perf_counter() - started
    positions = target_positions(args.positions, len(train_set))  # checked before the Fisher
    cfg = engine_config(args)
    store = ArtifactStore(args.artifacts)
    bar = Bar()
    started = time.perf_counter()
    encoded = store.encodings(model, train_set, cfg, bar)
    timings["encode_s"] = time.perf_counter() - started
    started = time.perf_counter()
    store.fisher(model, encoded, train_set, cfg, bar)
    timings["fisher_s"] = time.perf_counter() - started  # ~0 when the artifact already existed
    started = time.perf_counter()
    store.base_losses(model, encoded, train_set, cfg, bar)
    timings["base_losses_s"] = time.perf_counter() - started
    method = method_of(args)
    if method != "unlearning":  # e.g. first_order's stored features, built once here
        from attribution.engine.methods import method_named

        started = time.perf_counter()
        method_named(method).prepare(model, train_set, cfg, store, bar)
        timings[f"{method}_prepare_s"] = time.perf_counter() - started
    bar.close()
    embeddings = logmel_embeddings(train_set, model.sample_rate)
    targets = positions or kmeans_targets(embeddings, args.targets, seed=args.seed)
    return model, train_set, cfg, store, embeddings, targets, timings


def target_positions(text: str | None, n_items: int) -> list[int]:
    """--positions "117,145" -> [117, 145] (sorted, unique); "all" -> every position; [] when
    not given."""
    if not text:
        return []
    if text.strip() == "all":
        return list(range(n_items))
    try:
        positions = sorted({int(position) for position in text.split(",")})
    except ValueError:
        raise SystemExit(f"--positions takes comma-separated integers, got {text!r}") from None
    if not all(0 <= position < n_items for position in positions):
        raise SystemExit(f"--positions must lie in 0..{n_items - 1}, got {text!r}")
    return positions


def extra_embeddings(train_set) -> dict:
    captions = caption_embeddings(train_set)
    return {} if captions is None else {"caption": captions}


def caption_embeddings(train_set) -> np.ndarray | None:
    """all-MiniLM-L6-v2 sentence embeddings of the captions (mean-pooled, unit norm), from the
    offline package the demo's text conditioner uses; None if it is unavailable."""
    import torch

    try:
        from attribution.engine.text_conditioner import _load_encoder

        tokenizer, encoder = _load_encoder()
    except (ImportError, RuntimeError, OSError):
        return None
    rows = []
    with torch.no_grad():
        for start in range(0, len(train_set), 64):
            texts = [item.prompt for item in train_set.items[start : start + 64]]
            batch = tokenizer(texts, truncation=True, padding=True, return_tensors="pt")
            hidden = encoder(**batch).last_hidden_state  # (B, L, 384)
            mask = batch["attention_mask"][..., None].float()  # (B, L, 1)
            rows.append((hidden * mask).sum(1) / mask.sum(1))  # (B, 384) mean pooling
    features = torch.cat(rows).double().numpy()  # (N, 384)
    return features / np.linalg.norm(features, axis=1, keepdims=True)


_WORKER: dict = {}


def _worker_init(args: argparse.Namespace) -> None:
    """Load model, training set and stored artifacts once per worker process."""
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import load_training_set
    from attribution.engine.self_influence import logmel_embeddings

    torch.set_num_threads(args.threads)
    model = load_engine_model(args.checkpoint, device=args.device)
    manifest = Path(args.manifest or Path(args.checkpoint) / "training_manifest.json")
    train_set = load_training_set(manifest, model)
    _WORKER.update(
        model=model,
        train_set=train_set,
        store=ArtifactStore(args.artifacts),
        embeddings=logmel_embeddings(train_set, model.sample_rate),
        extra=extra_embeddings(train_set),
        k=args.k,
        method=method_of(args),
    )


def _worker_target(job: tuple) -> tuple:
    """One self-influence target under one config -> (job key, k, TargetResult, tau (N,))."""
    from attribution.engine.methods import method_named
    from attribution.engine.pipeline import attribute
    from attribution.engine.self_influence import self_influence

    key, cfg, position = job
    method = method_named(_WORKER.get("method", "unlearning"))
    kept = []

    def scores_of(model, query, train_set, cfg, progress, **kwargs):
        scores = attribute(method, model, query, train_set, cfg, progress, **kwargs)
        kept.append(scores.tau)
        return scores

    report = self_influence(
        _WORKER["model"],
        _WORKER["train_set"],
        cfg,
        [position],
        _WORKER["embeddings"],
        k=_WORKER["k"],
        method=scores_of,
        store=_WORKER["store"],
        extra_embeddings=_WORKER["extra"],
    )
    return key, report.k, report.targets[0], np.asarray(kept[0], dtype=np.float64)


def run_jobs(
    args: argparse.Namespace, jobs: list[tuple], on_result, local: dict | None = None
) -> None:
    """Run (key, cfg, target position) jobs on --workers processes (or in this process);
    `on_result(key, k, TargetResult, tau)` is called as each finishes. The Fisher and theta0 losses
    must already be in the artifact store (prepare() puts them there), so workers only load."""
    if args.workers <= 1:
        if local is not None:  # reuse what prepare() loaded
            _WORKER.update(
                local,
                k=args.k,
                extra=extra_embeddings(local["train_set"]),
                method=method_of(args),
            )
        else:
            _worker_init(args)
        for job in jobs:
            on_result(*_worker_target(job))
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers, initializer=_worker_init, initargs=(args,)) as pool:
        for result in pool.imap_unordered(_worker_target, jobs):
            on_result(*result)


def write_table(rows: list[dict], stem: Path, title: str, notes: list[str]) -> tuple[Path, Path]:
    """rows -> <stem>.csv and <stem>.md (a Markdown table under a title and notes)."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    columns = list(rows[0])
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)

    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = [f"# {title}", "", *notes, "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(cell(row[c]) for c in columns) + " |" for row in rows]
    md_path.write_text("\n".join(lines) + "\n")
    return csv_path, md_path


def load_catalog(world_root: Path):
    """(tracks in catalog order, holders {name: kind}, shares {isrc: [(name, Decimal %)]})."""
    from demo.world import build

    state = build.read_state(world_root).get("catalog")
    if not state:
        raise SystemExit(
            f"No demo catalog under {world_root}: run `./run manage build_demo_world` first."
        )
    catalog_dir = world_root / "catalog"
    tracks = [
        replace(build.Track(**t), audio_path=str(catalog_dir / t["audio_path"]))
        for t in state["tracks"]
    ]
    with open(catalog_dir / "rights_holders.csv", newline="", encoding="utf-8") as handle:
        holders = {row["legal_name"]: row["kind"] for row in csv.DictReader(handle)}
    shares: dict[str, list[tuple[str, Decimal]]] = {}
    with open(catalog_dir / "ownership_shares.csv", newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            shares.setdefault(row["isrc"], []).append(
                (row["rights_holder"], Decimal(row["percent"]))
            )
    return tracks, holders, shares


def same_collection(train_set, tracks, generations) -> np.ndarray:
    """(G, N) bool: training track n belongs to generation g's collection (g["collection"]),
    a track's collection being the catalog's (`tracks`, found by the item's id)."""
    by_id = {t.track_id: t for t in tracks}
    collections = np.array([by_id[item.item_id].collection for item in train_set.items])
    return np.array([collections == g["collection"] for g in generations])  # (G, N)


def leave_one_out_moments(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std), each (G, N): track n's mean and standard deviation (ddof 0) over every
    generation but g. scores (G, N), G >= 2."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[0] < 2:
        raise ValueError("scores must be a (generations >= 2, tracks) matrix")
    mean = np.empty_like(scores)
    std = np.empty_like(scores)
    for g in range(scores.shape[0]):
        others = np.delete(scores, g, axis=0)  # (G - 1, N)
        mean[g] = others.mean(axis=0)
        std[g] = others.std(axis=0)
    return mean, std


def standardised(scores: np.ndarray) -> np.ndarray:
    """(G, N): (score - the track's leave-one-out mean) / its leave-one-out standard
    deviation; a track constant over the other generations is only centred."""
    mean, std = leave_one_out_moments(scores)
    return (np.asarray(scores, dtype=np.float64) - mean) / np.where(std > 0, std, 1.0)


def window_shares(encoded) -> np.ndarray:
    """(N,) the share of the model's window each encoded training item's audio fills, in
    (0, 1]: the mean of its latent padding mask, averaged over its windows."""
    shares = []
    for item in encoded:
        windows = (item, *item.more_windows)
        shares.append(np.mean([float(w.padding_mask.float().mean()) for w in windows]))
    return np.clip(np.array(shares), 1e-3, 1.0)


def hub_report(tau: np.ndarray, train_set, tracks, generations, k: int = 3) -> dict:
    """How often one training track is among the top k of generations from another
    collection than its own (a generation's collection: g["collection"], that of the caption
    or prompt it came from). tau (G, N)."""
    from attribution.engine import agreement

    by_id = {t.track_id: t for t in tracks}
    related = same_collection(train_set, tracks, generations)  # (G, N)
    counts = agreement.hub_counts(tau, related, k)  # (N,)
    unrelated_slots = int(counts.sum())
    order = np.argsort(-counts, kind="stable")
    return {
        "k": k,
        "top_k_slots": k * len(generations),
        "unrelated_top_k_slots": unrelated_slots,
        "unrelated_top_k_share": unrelated_slots / (k * len(generations)),
        "tracks_in_unrelated_top_k_twice_or_more": int((counts >= 2).sum()),
        "most_frequent": [
            {
                "track_id": train_set.items[i].item_id,
                "title": by_id[train_set.items[i].item_id].title,
                "collection": by_id[train_set.items[i].item_id].collection,
                "ensemble": by_id[train_set.items[i].item_id].ensemble,
                "unrelated_generations_in_top_k": int(counts[i]),
            }
            for i in order[:5]
            if counts[i] > 0
        ],
    }


def write_json(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str))
