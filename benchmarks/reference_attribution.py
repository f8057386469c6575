"""Where training-time attribution puts the reference a generation was conditioned on.

    .venv/bin/python benchmarks/reference_attribution.py [--references 3]
        [--noise-levels 1,4,16] [--workers 2] [--method unlearning]

A generation conditioned on a catalog recording (audio-to-audio variation, sampling.py's
``init_audio``) owes that recording's owners directly. This measures how much of that debt the
training-time attribution would pay anyway, so that the default inference-time share of the pool
(docs/ledger.md, "Reference use") rests on numbers:

1. --references training recordings of the demo model (k-means over log-mel embeddings, the
   self-influence benchmark's choice of diverse tracks), each with a prompt taken from the
   training track least like it (farthest log-mel embedding), so the text does not point at the
   reference.
2. For each reference and each --noise-levels sigma (a level of the model's noise schedule:
   lower keeps more of the reference), one generation conditioned on it; and one generation of
   the same prompt and seed without a reference (the control).
3. Each generation is attributed over the whole training set with --method (default the
   settlement method, the exact unlearning engine at EngineConfig defaults), and the benchmark
   reports the reference's rank (1 = top), its share of the royalty pool under the ledger's
   default split (ledger/splits.py), the top track's share, and the spectral distance between
   the generation and the reference (mean |log1p STFT magnitude| difference).

Generations and scores are cached under --cache by content hash, so an interrupted run resumes.
Writes benchmarks/results/<stem>.json, <stem>.csv and <stem>.png. Not a test: every number is
measured.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from attribution_common import DATA_DIR, REPO_ROOT, Bar, add_engine_flags, engine_config, write_json

CONTROL = "none"  # the noise-level label of the unconditioned control


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_engine_flags(parser)
    parser.add_argument("--references", type=int, default=3, help="reference recordings")
    parser.add_argument(
        "--noise-levels",
        default="1,4,16",
        help="comma-separated init noise levels (sigmas of the model's schedule)",
    )
    parser.add_argument("--method", default="unlearning", help="attribution method (registered)")
    parser.add_argument("--generation-seed", type=int, default=7)
    parser.add_argument("--sampling-steps", type=int, default=None, help="default: the model's")
    parser.add_argument("--cache", default=str(DATA_DIR / "benchmarks" / "reference_attribution"))
    parser.add_argument("--stem", default=None, help="output name (default dated, with commit)")
    return parser.parse_args()


def git_commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    return out.stdout.strip() or "unknown"


def sha256_json(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def noise_levels(text: str) -> list[float]:
    try:
        levels = [float(level) for level in text.split(",") if level.strip()]
    except ValueError:
        raise SystemExit(f"--noise-levels takes comma-separated numbers, got {text!r}") from None
    if not levels:
        raise SystemExit("--noise-levels is empty")
    return levels


def spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |log1p |STFT(a)| - log1p |STFT(b)|| of the mono mixes, over the shorter length."""
    import torch

    length = min(a.shape[-1], b.shape[-1])
    window = torch.hann_window(512)
    spectra = [
        torch.stft(
            torch.as_tensor(x[..., :length]).float().mean(dim=0),
            512,
            window=window,
            return_complex=True,
        )
        .abs()
        .log1p()
        for x in (a, b)
    ]
    return float((spectra[0] - spectra[1]).abs().mean())


def generate_cached(model, spec: dict, reference_audio, cache: Path) -> np.ndarray:
    """One generation (C, T) float32, cached by checkpoint and request."""
    import soundfile
    import torch

    from attribution.engine.sampling import generate

    key = sha256_json({"checkpoint": model.checkpoint_sha256, **spec})
    path = cache / "generations" / f"{key[:20]}.wav"
    if not path.is_file():
        options = {}
        if spec["noise_level"] != CONTROL:
            options = {
                "init_audio": (torch.as_tensor(reference_audio), model.sample_rate),
                "init_noise_level": float(spec["noise_level"]),
            }
        audio, rate = generate(
            model.module,
            model.config,
            spec["prompt"],
            spec["seconds"],
            spec["seed"],
            spec["steps"],
            **options,
        )  # (C, T)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.wav")
        soundfile.write(str(tmp), audio.numpy().T, rate, subtype="FLOAT")
        tmp.replace(path)
    audio, _ = soundfile.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    return audio.T, path


_WORKER: dict = {}


def _worker_init(args: argparse.Namespace) -> None:
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import load_training_set

    torch.set_num_threads(args.threads)
    model = load_engine_model(args.checkpoint, device=args.device)
    manifest = Path(args.manifest or Path(args.checkpoint) / "training_manifest.json")
    _WORKER.update(
        model=model,
        train_set=load_training_set(manifest, model),
        store=ArtifactStore(args.artifacts),
        cfg=engine_config(args),
        method=args.method,
    )


def _worker_scores(job: tuple) -> tuple:
    """(score path, generation wav, prompt, query id) -> (score path, seconds)."""
    import soundfile

    from attribution.engine.items import make_query
    from attribution.engine.methods import METHODS
    from attribution.engine.pipeline import attribute

    score_path, wav_path, prompt, query_id = job
    started = time.perf_counter()
    audio, rate = soundfile.read(str(wav_path), dtype="float32", always_2d=True)
    model = _WORKER["model"]
    query = make_query(audio.T, rate, prompt, model, item_id=query_id)
    scores = attribute(
        METHODS[_WORKER["method"]],
        model,
        query,
        _WORKER["train_set"],
        _WORKER["cfg"],
        lambda *_: None,
        store=_WORKER["store"],
    )
    tau = np.asarray(scores.tau, dtype=np.float64)
    score_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(score_path, tau)
    seconds = round(time.perf_counter() - started, 1)
    score_path.with_suffix(".json").write_text(json.dumps({"seconds": seconds}))
    return score_path, seconds


def pool_shares(tau: np.ndarray, policy) -> np.ndarray:
    """Each track's share of the pool under the ledger's split (N,), from its integer weights."""
    from ledger.splits import track_weights

    shares = np.zeros(len(tau))
    weights = track_weights(list(tau), policy)
    total = sum(w.weight for w in weights)
    for w in weights:
        shares[w.position] = w.weight / total
    return shares


def main() -> None:
    args = parse_args()
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import load_training_set
    from attribution.engine.methods import METHODS
    from attribution.engine.sampling import sampling_defaults
    from attribution.engine.self_influence import kmeans_targets, logmel_embeddings
    from ledger.splits import SplitPolicy

    if args.method not in METHODS:
        raise SystemExit(f"unknown method {args.method!r}; registered: {sorted(METHODS)}")
    levels = noise_levels(args.noise_levels)
    torch.set_num_threads(args.threads)
    started_all = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started_all:7.0f} s] {message}", flush=True)

    cache = Path(args.cache)
    commit = git_commit()
    stem = args.stem or f"reference_attribution-{time.strftime('%Y-%m-%d')}-{commit}"
    out_stem = Path(args.out) / stem
    model = load_engine_model(args.checkpoint, device=args.device)
    manifest = Path(args.manifest or Path(args.checkpoint) / "training_manifest.json")
    train_set = load_training_set(manifest, model)
    sampling = sampling_defaults(model.config)
    bad = [level for level in levels if not sampling.sigma_min < level <= sampling.sigma_max]
    if bad:
        raise SystemExit(
            f"noise levels {bad} outside ({sampling.sigma_min:g}, {sampling.sigma_max:g}]"
        )
    cfg = engine_config(args)
    store = ArtifactStore(args.artifacts)
    started = time.perf_counter()
    bar = Bar()
    encoded = store.encodings(model, train_set, cfg, bar)
    if METHODS[args.method].name == "unlearning":
        store.fisher(model, encoded, train_set, cfg, bar)
        store.base_losses(model, encoded, train_set, cfg, bar)
    bar.close()
    artifacts_s = round(time.perf_counter() - started, 1)
    log(f"artifacts ready ({artifacts_s} s)")

    embeddings = logmel_embeddings(train_set, model.sample_rate)  # (N, D), unit norm
    references = kmeans_targets(embeddings, args.references, seed=args.seed)
    window_seconds = model.sample_size / model.sample_rate
    steps = args.sampling_steps or sampling.steps
    specs: list[dict] = []
    for position in references:
        item = train_set.items[position]
        farthest = int(np.argmax(((embeddings - embeddings[position]) ** 2).sum(axis=1)))
        audio = item.audio.numpy()  # (C, T)
        seconds = round(min(audio.shape[-1] / model.sample_rate, window_seconds), 2)
        for level in [CONTROL, *levels]:
            specs.append(
                {
                    "reference_position": position,
                    "reference_id": item.item_id,
                    "prompt": train_set.items[farthest].prompt,
                    "prompt_from": train_set.items[farthest].item_id,
                    "seconds": seconds,
                    "seed": args.generation_seed,
                    "steps": steps,
                    "noise_level": level if level == CONTROL else float(level),
                }
            )

    started = time.perf_counter()
    generations = []
    bar = Bar()
    for index, spec in enumerate(specs):
        reference = train_set.items[spec["reference_position"]].audio.numpy()
        audio, path = generate_cached(model, spec, reference, cache)
        generations.append(
            {
                **spec,
                "path": path,
                "distance_to_reference": spectral_distance(audio, reference),
            }
        )
        bar("generate", index + 1, len(specs))
    bar.close()
    generate_s = round(time.perf_counter() - started, 1)
    log(f"{len(generations)} generations ready ({generate_s} s)")

    jobs = []
    for generation in generations:
        query_id = f"reference-benchmark:{Path(generation['path']).stem}"
        key = sha256_json(
            {
                "method": args.method,
                "checkpoint": model.checkpoint_sha256,
                "manifest": train_set.manifest_sha256,
                "cfg": cfg.to_dict(),
                "query": query_id,
            }
        )
        generation["score_path"] = cache / "scores" / f"{args.method}-{key[:20]}.npy"
        if not generation["score_path"].is_file():
            jobs.append(
                (generation["score_path"], generation["path"], generation["prompt"], query_id)
            )
    log(f"{len(jobs)} of {len(generations)} attributions to compute on {args.workers} worker(s)")
    started = time.perf_counter()
    if args.workers <= 1:
        _WORKER.update(model=model, train_set=train_set, store=store, cfg=cfg, method=args.method)
        for done, job in enumerate(jobs, 1):
            _, seconds = _worker_scores(job)
            log(f"attribution {done}/{len(jobs)}: {seconds} s")
    elif jobs:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers, initializer=_worker_init, initargs=(args,)) as pool:
            for done, (_, seconds) in enumerate(pool.imap_unordered(_worker_scores, jobs), 1):
                log(f"attribution {done}/{len(jobs)}: {seconds} s")
    attribute_s = round(time.perf_counter() - started, 1)

    policy = SplitPolicy()
    rows = []
    for generation in generations:
        tau = np.load(generation["score_path"])
        shares = pool_shares(tau, policy)
        position = generation["reference_position"]
        order = np.argsort(-tau, kind="stable")
        rank = int(np.nonzero(order == position)[0][0]) + 1
        timing = generation["score_path"].with_suffix(".json")
        rows.append(
            {
                "reference_id": generation["reference_id"],
                "reference_position": position,
                "prompt": generation["prompt"],
                "prompt_from": generation["prompt_from"],
                "noise_level": generation["noise_level"],
                "seconds": generation["seconds"],
                "reference_rank": rank,
                "reference_pool_share": float(shares[position]),
                "top_track_id": train_set.items[int(order[0])].item_id,
                "top_track_pool_share": float(shares[int(order[0])]),
                "tracks_paid": int((shares > 0).sum()),
                "distance_to_reference": round(generation["distance_to_reference"], 4),
                "attribution_s": json.loads(timing.read_text())["seconds"]
                if timing.is_file()
                else None,
            }
        )
    summary = []
    for level in [CONTROL, *levels]:
        chosen = [r for r in rows if r["noise_level"] == level]
        ranks = [r["reference_rank"] for r in chosen]
        share = [r["reference_pool_share"] for r in chosen]
        summary.append(
            {
                "noise_level": level,
                "generations": len(chosen),
                "median_rank": float(np.median(ranks)),
                "top1": sum(rank == 1 for rank in ranks),
                "top10": sum(rank <= 10 for rank in ranks),
                "mean_pool_share": float(np.mean(share)),
                "min_pool_share": float(np.min(share)),
                "max_pool_share": float(np.max(share)),
                "mean_distance_to_reference": float(
                    np.mean([r["distance_to_reference"] for r in chosen])
                ),
            }
        )
    payload = {
        "benchmark": "reference_attribution",
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.node()} {platform.machine()}, {torch.get_num_threads()} threads",
        "command": " ".join(["benchmarks/reference_attribution.py", *sys.argv[1:]]),
        "checkpoint_sha256": model.checkpoint_sha256,
        "manifest_sha256": train_set.manifest_sha256,
        "training_tracks": len(train_set),
        "method": args.method,
        "engine_config": cfg.to_dict(),
        "policy": policy.as_dict(),
        "sampling": {
            "steps": steps,
            "sigma_min": sampling.sigma_min,
            "sigma_max": sampling.sigma_max,
        },
        "noise_levels": levels,
        "workers": args.workers,
        "timings_s": {
            "artifacts": artifacts_s,
            "generate": generate_s,
            "attribute": attribute_s,
            "total": round(time.perf_counter() - started_all, 1),
        },
        "summary": summary,
        "rows": rows,
    }
    write_json(out_stem.with_suffix(".json"), payload)
    with open(out_stem.with_suffix(".csv"), "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(out_stem.with_suffix(".png"), rows, levels)
    print(json.dumps(summary, indent=1))
    log(f"wrote {out_stem}.json/.csv/.png")


def _level_label(level) -> str:
    return CONTROL if level == CONTROL else f"{level:g}"


def plot(path: Path, rows: list[dict], levels: list[float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [_level_label(level) for level in [CONTROL, *levels]]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for reference in sorted({r["reference_id"] for r in rows}):
        mine = [r for r in rows if r["reference_id"] == reference]
        by_level = {_level_label(r["noise_level"]): r for r in mine}
        left.plot(labels, [by_level[x]["reference_rank"] for x in labels], "o-", label=reference)
        right.plot(labels, [by_level[x]["reference_pool_share"] for x in labels], "o-")
    left.set_yscale("log")
    left.invert_yaxis()
    left.set_xlabel("init noise level (sigma); none = no reference")
    left.set_ylabel("rank of the reference (1 = top)")
    left.legend(fontsize=7)
    right.set_xlabel("init noise level (sigma); none = no reference")
    right.set_ylabel("reference's share of the pool (training attribution)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
