"""Would another method have paid differently? Every attribution method on the same generations
(Fig. 1 and Fig. 2 of Choi et al., Sec. 3.3).

    .venv/bin/python benchmarks/attribution_methods_compare.py [--generations 16]
        [--methods unlearning,first_order,gradient_similarity,activation_similarity,
                   representer_points,audio_similarity] [--workers 2] [--sampling-steps N]
        [--tag TAG] [engine flags of attribution_common.py]

1. --generations generations sampled from the model, one per distinct prompt (the prompts of
   attribution_fast.py, seed = the generation's index).
2. Every method's scores for every generation, each through the staged pipeline in one process
   (`pipeline.attribute`), with the per-checkpoint artifacts from --artifacts (computed first,
   once; then --workers processes share the generations); each (generation, method) is kept
   under DATA_DIR/benchmarks/methods_compare/, so an interrupted run resumes.
3. Fig. 1: the training tracks sorted by the first method's score (the unlearning score by
   default), and every method's scores at those ranks, min-max normalised per generation
   (left) and softmax normalised (right, log axes: the ledger's split, a softmax of the
   standardised scores at temperature 1, docs/decisions/0012), mean and standard deviation
   across generations.
4. Fig. 2: Pearson and Spearman correlations between the methods over the training tracks,
   per generation, then mean and standard deviation across generations.
5. Hub tracks, per method: how many of the top-3 places of the generations go to training
   tracks of another collection than the one the prompt names (the demo catalog's
   collections, --world), which tracks take such places twice or more, and the share of each
   generation's ledger split paid to the prompt's own collection; the same for scores
   corrected from the same score matrices (CORRECTIONS: a track's leave-one-out mean over the
   other generations removed, or the track standardised by its leave-one-out mean and
   standard deviation, each also after standardising every generation's scores over the
   tracks, or, where the method stores per-track gradients, the score divided by the track's
   gradient norm as Diffusion-ReTrac does), beside chance levels (random top places, a
   uniform split), with the Spearman correlation of each corrected score with the
   uncorrected one per generation. The corrections are measured here only; the ledger's
   split policy is unchanged.

Writes benchmarks/results/methods_compare-<date>-<commit>[-<tag>].json, three CSV files
(-curves.csv, -correlations.csv, -hubs.csv) and two PNG plots beside it.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import subprocess
import time
from datetime import date
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
    leave_one_out_moments,
    load_catalog,
    same_collection,
    standardised,
    write_json,
)
from attribution_fast import PROMPTS

DEFAULT_METHODS = (
    "unlearning",
    "first_order",
    "gradient_similarity",
    "activation_similarity",
    "representer_points",
    "audio_similarity",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_engine_flags(parser)
    parser.add_argument("--generations", type=int, default=16, help="distinct prompts (<= 18)")
    parser.add_argument(
        "--methods",
        default=",".join(DEFAULT_METHODS),
        help="comma-separated method names; the first one sorts the tracks",
    )
    parser.add_argument(
        "--sampling-steps", type=int, default=None, help="denoising steps (model's default)"
    )
    parser.add_argument("--similarity-timesteps", type=int, default=None)
    parser.add_argument("--world", default=str(DATA_DIR / "demo"), help="the demo world's root")
    parser.add_argument("--tag", default="", help="suffix of the result files")
    args = parser.parse_args()
    if not 2 <= args.generations <= len(PROMPTS):
        parser.error(f"--generations must lie in 2..{len(PROMPTS)}")
    return args


def config_for(args: argparse.Namespace):
    cfg = engine_config(args)
    overrides = {
        name: getattr(args, name)
        for name in ("similarity_timesteps",)
        if getattr(args, name) is not None
    }
    return cfg.replace(**overrides)


def minmax(values: np.ndarray) -> np.ndarray:
    """(x - min) / (max - min) along the last axis; a constant row becomes 0."""
    low = values.min(axis=-1, keepdims=True)
    span = values.max(axis=-1, keepdims=True) - low
    return (values - low) / np.where(span > 0, span, 1.0)


def ledger_softmax(values: np.ndarray) -> np.ndarray:
    """Each row through the ledger's split probabilities (standardised softmax, T = 1)."""
    from ledger.splits import softmax_standardised

    return np.array([softmax_standardised(list(map(float, row)), Decimal("1")) for row in values])


def sorted_curves(scores: dict[str, np.ndarray], reference: str) -> dict[str, dict]:
    """Fig. 1: per method, mean and std across generations of its normalised scores at each
    rank of the reference method's ordering; scores[m] is (G, N)."""
    order = np.argsort(-scores[reference], axis=1, kind="stable")  # (G, N)
    curves = {}
    for name, values in scores.items():
        views = {"minmax": minmax(values), "softmax": ledger_softmax(values)}  # (G, N) each
        curves[name] = {}
        for view, normalised in views.items():
            at_rank = np.take_along_axis(normalised, order, axis=1)  # (G, N)
            curves[name][view] = {
                "mean": at_rank.mean(axis=0).tolist(),
                "std": at_rank.std(axis=0).tolist(),
            }
    return curves


def correlations(scores: dict[str, np.ndarray]) -> dict[str, dict]:
    """Fig. 2: Pearson and Spearman between every two methods, per generation over the tracks,
    then mean and std across generations."""
    from scipy.stats import pearsonr, spearmanr

    names = list(scores)
    generations = next(iter(scores.values())).shape[0]
    result: dict[str, dict] = {"methods": names}
    for statistic, function in (("pearson", pearsonr), ("spearman", spearmanr)):
        per = np.ones((generations, len(names), len(names)))  # (G, M, M)
        for g in range(generations):
            for a, first in enumerate(names):
                for b in range(a + 1, len(names)):
                    value = function(scores[first][g], scores[names[b]][g]).statistic
                    per[g, a, b] = per[g, b, a] = float(value)
        result[statistic] = {"mean": per.mean(axis=0).tolist(), "std": per.std(axis=0).tolist()}
    return result


# --- hub tracks and their corrections -----------------------------------------------------

HUB_TOP_K = 3

CORRECTIONS = {
    "uncorrected": "the method's scores",
    "prior_removed": (
        "minus the track's mean score over the other generations (leave-one-out): the offline "
        "stand-in for a per-checkpoint prior of each track over reference queries"
    ),
    "standardised": (
        "(score - the track's leave-one-out mean) / the track's leave-one-out standard "
        "deviation over the other generations"
    ),
    "generation_standardised_prior_removed": (
        "each generation's scores standardised over the tracks first (as the ledger does "
        "before its softmax), so that generations of larger scores weigh no more in a "
        "track's leave-one-out mean; then prior_removed"
    ),
    "generation_standardised_standardised": (
        "each generation's scores standardised over the tracks first; then standardised"
    ),
    "gradient_norm": (
        "divided by the norm of the track's stored per-track gradient (Diffusion-ReTrac's "
        "normalisation); only methods whose artifacts hold per-track gradients"
    ),
}

# Methods whose per-checkpoint artifacts hold one gradient row per training track: the
# artifact's name and what its rows are.
STORED_GRADIENTS = {
    "gradient_similarity": ("gradients", "projected loss gradient P gbar_i"),
    "first_order": ("features", "projected whitened gradient P (F + lambda)^-1/2 gbar_i"),
}


def prompt_collection(prompt: str, collections) -> str:
    """The catalog collection a prompt names in parentheses ("... (Bach chorales), ..."); a
    shortened name ("(Josquin)") stands for the one collection that begins with it."""
    named = re.search(r"\(([^)]+)\)", prompt)
    if named is None:
        raise ValueError(f"the prompt names no collection in parentheses: {prompt!r}")
    name = named.group(1)
    if name in collections:
        return name
    matches = sorted(c for c in set(collections) if c.startswith(name))
    if len(matches) != 1:
        raise ValueError(f"{name!r} names {len(matches)} catalog collections: {matches}")
    return matches[0]


def per_generation_standardised(scores: np.ndarray) -> np.ndarray:
    """(G, N): each generation's scores minus their mean over the tracks, divided by their
    standard deviation (ddof 0), as the ledger standardises before its softmax; a constant
    generation becomes 0."""
    scores = np.asarray(scores, dtype=np.float64)
    std = scores.std(axis=1, keepdims=True)  # (G, 1)
    return (scores - scores.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)


def prior_removed(scores: np.ndarray) -> np.ndarray:
    """(G, N): each score minus its track's mean over the other generations, so a track that
    scores high for every generation keeps only what is particular to this one."""
    mean, _ = leave_one_out_moments(scores)
    return np.asarray(scores, dtype=np.float64) - mean


def gradient_norm_normalised(scores: np.ndarray, norms: np.ndarray) -> np.ndarray:
    """(G, N): scores / the track's gradient norm (N,), as Diffusion-ReTrac normalises the
    training gradients; a zero norm leaves the score as it is."""
    norms = np.asarray(norms, dtype=np.float64)
    if norms.shape != (np.shape(scores)[1],):
        raise ValueError("one gradient norm per training track")
    return np.asarray(scores, dtype=np.float64) / np.where(norms > 0, norms, 1.0)[None, :]


def own_collection_share(scores: np.ndarray, related: np.ndarray) -> np.ndarray:
    """(G,): the share of each generation's ledger split (`ledger_softmax`) paid to the tracks
    of the prompt's own collection (related (G, N) bool)."""
    return (ledger_softmax(scores) * np.asarray(related, dtype=bool)).sum(axis=1)


def rank_agreement(corrected: np.ndarray, uncorrected: np.ndarray) -> np.ndarray:
    """(G,): Spearman correlation over the tracks of each generation's corrected scores with
    its uncorrected ones (1: the correction reorders nothing)."""
    from scipy.stats import spearmanr

    return np.array(
        [float(spearmanr(a, b).statistic) for a, b in zip(corrected, uncorrected, strict=True)]
    )


def stored_gradient_norms(prepared: dict) -> dict[str, np.ndarray]:
    """{method: (N,) norm of each track's stored gradient row} for the prepared methods whose
    artifacts hold them (STORED_GRADIENTS); read from the artifacts, nothing computed."""
    norms = {}
    for name, (artifact, _) in STORED_GRADIENTS.items():
        if name in prepared and artifact in prepared[name].artifacts:
            rows = np.asarray(prepared[name].artifacts[artifact], dtype=np.float64)  # (N, k)
            norms[name] = np.linalg.norm(rows, axis=1)
    return norms


def chance_levels(related: np.ndarray) -> dict[str, float]:
    """What paying without attribution would give, for reading the hub statistics: the
    expected share of top places that go to another collection when the top tracks are
    drawn at random, and the own collection's share of a uniform split; related (G, N)."""
    own = np.asarray(related, dtype=bool).mean(axis=1)  # (G,)
    return {
        "unrelated_top_k_share": float(1.0 - own.mean()),
        "own_collection_pool_share": float(own.mean()),
    }


def hub_analysis(
    scores: dict[str, np.ndarray], train_set, tracks, generations: list[dict], norms: dict
) -> dict:
    """Per method and correction (CORRECTIONS): the hub report (attribution_common.hub_report,
    top HUB_TOP_K), the own collection's share of the ledger split and the Spearman
    correlation with the uncorrected scores, each per generation and its mean."""
    related = same_collection(train_set, tracks, generations)  # (G, N)
    result: dict[str, dict] = {}
    for name, values in scores.items():
        by_generation = per_generation_standardised(values)
        variants = {
            "uncorrected": np.asarray(values, dtype=np.float64),
            "prior_removed": prior_removed(values),
            "standardised": standardised(values),
            "generation_standardised_prior_removed": prior_removed(by_generation),
            "generation_standardised_standardised": standardised(by_generation),
        }
        if name in norms:
            variants["gradient_norm"] = gradient_norm_normalised(values, norms[name])
        result[name] = {}
        for correction, corrected in variants.items():
            own = own_collection_share(corrected, related)
            rho = rank_agreement(corrected, values)
            result[name][correction] = {
                "hub": hub_report(corrected, train_set, tracks, generations, k=HUB_TOP_K),
                "own_collection_pool_share": {
                    "mean": float(own.mean()),
                    "per_generation": own.tolist(),
                },
                "spearman_with_uncorrected": {
                    "mean": float(rho.mean()),
                    "min": float(rho.min()),
                    "per_generation": rho.tolist(),
                },
            }
    return result


def scratch_key(model, train_set, cfg, spec: dict, method: str) -> str:
    payload = {
        "checkpoint": model.checkpoint_sha256,
        "manifest": train_set.manifest_sha256,
        "engine": cfg.to_dict(),
        "generation": spec,
        "method": method,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


_W: dict = {}


def _load(args: argparse.Namespace, methods: list[str]) -> None:
    """Model, training set, config and artifact store, once per process."""
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import load_training_set

    torch.set_num_threads(args.threads)
    model = load_engine_model(args.checkpoint, device=args.device)
    manifest = Path(args.manifest or Path(args.checkpoint) / "training_manifest.json")
    _W.update(
        args=args,
        methods=methods,
        model=model,
        train_set=load_training_set(manifest, model),
        cfg=config_for(args),
        store=ArtifactStore(args.artifacts),
    )


def generation_spec(index: int, model, args: argparse.Namespace) -> dict:
    prompt, duration = PROMPTS[index]
    return {
        "prompt": prompt,
        "seconds": min(duration, model.sample_size / model.sample_rate),
        "seed": index,
        "sampling_steps": args.sampling_steps,
    }


def _generation(index: int) -> tuple[int, dict[str, tuple[np.ndarray, float]]]:
    """Every method's scores of generation `index` (kept in the scratch folder, reused)."""
    from attribution.engine.items import make_query
    from attribution.engine.methods import method_named
    from attribution.engine.pipeline import attribute
    from attribution.engine.sampling import generate

    args, model, train_set, cfg = _W["args"], _W["model"], _W["train_set"], _W["cfg"]
    spec = generation_spec(index, model, args)
    scratch = DATA_DIR / "benchmarks" / "methods_compare"
    scratch.mkdir(parents=True, exist_ok=True)
    results: dict[str, tuple[np.ndarray, float]] = {}
    query = None
    for name in _W["methods"]:
        path = scratch / f"{scratch_key(model, train_set, cfg, spec, name)}.json"
        if path.is_file():
            saved = json.loads(path.read_text())
            results[name] = (
                np.array([float.fromhex(x) for x in saved["tau_hex"]]),
                saved["seconds"],
            )
            continue
        if query is None:
            audio, rate = generate(
                model.module, model.config, spec["prompt"], spec["seconds"], index,
                steps=args.sampling_steps, device=cfg.device,
            )  # fmt: skip
            query = make_query(audio, rate, spec["prompt"], model, item_id=f"gen{index:02d}")
        started = time.perf_counter()
        scores = attribute(method_named(name), model, query, train_set, cfg, store=_W["store"])
        elapsed = time.perf_counter() - started
        payload = {"tau_hex": [float(x).hex() for x in scores.tau], "seconds": elapsed}
        path.write_text(json.dumps(payload))
        results[name] = (scores.tau, elapsed)
        print(f"generation {index:2d} {name:22s} {elapsed:8.1f} s", flush=True)
    return index, results


def score_all(args: argparse.Namespace, methods: list[str]):
    """(scores[method] (G, N), seconds[method] per generation, generation specs).

    Every method's per-checkpoint artifacts are computed first, in this process; then the
    generations are shared by --workers processes (each loads the model and only reads the
    artifacts)."""
    from attribution.engine.methods import method_named

    _load(args, methods)
    model, train_set, cfg, store = _W["model"], _W["train_set"], _W["cfg"], _W["store"]
    bar = Bar()
    _W["prepared"] = {
        name: method_named(name).prepare(model, train_set, cfg, store, bar) for name in methods
    }
    bar.close()
    indices = list(range(args.generations))
    found: dict[int, dict] = {}
    if args.workers <= 1:
        for index in indices:
            found.update([_generation(index)])
    else:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        with context.Pool(args.workers, initializer=_load, initargs=(args, methods)) as pool:
            for index, results in pool.imap_unordered(_generation, indices):
                found[index] = results
    scores = {name: np.stack([found[i][name][0] for i in indices]) for name in methods}
    seconds = {name: [found[i][name][1] for i in indices] for name in methods}
    specs = [generation_spec(i, model, args) for i in indices]
    return scores, seconds, specs


def plot(curves: dict, correlation: dict, stem: Path, generations: int) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
    for name, views in curves.items():
        for axis, view in ((left, "minmax"), (right, "softmax")):
            mean, std = np.array(views[view]["mean"]), np.array(views[view]["std"])
            ranks = np.arange(1, len(mean) + 1)
            (line,) = axis.plot(ranks, mean, label=name, linewidth=1.2)
            low = np.maximum(mean - std, mean.min() / 10) if view == "softmax" else mean - std
            axis.fill_between(ranks, low, mean + std, color=line.get_color(), alpha=0.15)
    reference = next(iter(curves))
    left.set(xlabel=f"training track, sorted by {reference} score", ylabel="min-max normalised")
    right.set(
        xlabel=f"training track, sorted by {reference} score",
        ylabel="softmax normalised (ledger split)",
        xscale="log",
        yscale="log",
    )
    left.legend(fontsize=8)
    figure.suptitle(f"Scores of every method, mean and std over {generations} generations")
    figure.tight_layout()
    curves_png = stem.with_name(stem.name + "-curves.png")
    figure.savefig(curves_png, dpi=120)
    plt.close(figure)

    names = correlation["methods"]
    figure, axes = plt.subplots(1, 2, figsize=(12, 5.2))
    for axis, statistic in zip(axes, ("pearson", "spearman"), strict=True):
        matrix = np.array(correlation[statistic]["mean"])
        image = axis.imshow(matrix, vmin=-1, vmax=1, cmap="coolwarm")
        axis.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        axis.set_yticks(range(len(names)), names if axis is axes[0] else [], fontsize=8)
        for a in range(len(names)):
            for b in range(len(names)):
                axis.text(b, a, f"{matrix[a, b]:.2f}", ha="center", va="center", fontsize=7)
        axis.set_title(f"{statistic.capitalize()} (mean over generations)")
    figure.colorbar(image, ax=axes, shrink=0.8)
    correlations_png = stem.with_name(stem.name + "-correlations.png")
    figure.savefig(correlations_png, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return [curves_png, correlations_png]


def write_csv(curves: dict, correlation: dict, stem: Path) -> list[Path]:
    curves_csv = stem.with_name(stem.name + "-curves.csv")
    with curves_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["rank", "method", "minmax_mean", "minmax_std", "softmax_mean", "softmax_std"]
        )
        for name, views in curves.items():
            for rank in range(len(views["minmax"]["mean"])):
                writer.writerow(
                    [rank + 1, name]
                    + [
                        f"{views[view][part][rank]:.6g}"
                        for view in ("minmax", "softmax")
                        for part in ("mean", "std")
                    ]
                )
    correlations_csv = stem.with_name(stem.name + "-correlations.csv")
    names = correlation["methods"]
    with correlations_csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["method_a", "method_b", "pearson_mean", "pearson_std", "spearman_mean", "spearman_std"]
        )
        for a, first in enumerate(names):
            for b, second in enumerate(names):
                writer.writerow(
                    [first, second]
                    + [
                        f"{correlation[statistic][part][a][b]:.4f}"
                        for statistic in ("pearson", "spearman")
                        for part in ("mean", "std")
                    ]
                )
    return [curves_csv, correlations_csv]


def write_hubs_csv(hubs: dict, stem: Path) -> Path:
    """One row per method and correction: the hub statistics and the five most frequent
    hub tracks ("title [collection; ensemble] xN", separated by " | ")."""
    path = stem.with_name(stem.name + "-hubs.csv")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "method",
                "correction",
                "k",
                "top_k_slots",
                "unrelated_top_k_slots",
                "unrelated_top_k_share",
                "tracks_in_unrelated_top_k_twice_or_more",
                "own_collection_pool_share_mean",
                "spearman_with_uncorrected_mean",
                "spearman_with_uncorrected_min",
                "most_frequent",
            ]
        )
        for name, corrections in hubs["methods"].items():
            for correction, entry in corrections.items():
                hub = entry["hub"]
                writer.writerow(
                    [
                        name,
                        correction,
                        hub["k"],
                        hub["top_k_slots"],
                        hub["unrelated_top_k_slots"],
                        f"{hub['unrelated_top_k_share']:.4f}",
                        hub["tracks_in_unrelated_top_k_twice_or_more"],
                        f"{entry['own_collection_pool_share']['mean']:.4f}",
                        f"{entry['spearman_with_uncorrected']['mean']:.4f}",
                        f"{entry['spearman_with_uncorrected']['min']:.4f}",
                        " | ".join(
                            f"{t['track_id']} {t['title']} [{t['collection']}; {t['ensemble']}]"
                            f" x{t['unrelated_generations_in_top_k']}"
                            for t in hub["most_frequent"]
                        ),
                    ]
                )
    return path


def main() -> None:
    args = parse_args()
    from attribution.engine.methods import method_named

    methods = [name.strip() for name in args.methods.split(",") if name.strip()]
    for name in methods:
        method_named(name)  # refuses an unknown name before any work
    if len(methods) < 2:
        raise SystemExit("--methods needs at least two methods to compare")
    started = time.perf_counter()
    scores, seconds, specs = score_all(args, methods)
    model, train_set, cfg = _W["model"], _W["train_set"], _W["cfg"]
    curves = sorted_curves(scores, methods[0])
    correlation = correlations(scores)
    tracks, _, _ = load_catalog(Path(args.world))
    collections = {t.collection for t in tracks}
    hub_generations = [{"collection": prompt_collection(s["prompt"], collections)} for s in specs]
    norms = stored_gradient_norms(_W["prepared"])
    hubs = {
        "k": HUB_TOP_K,
        "corrections": CORRECTIONS,
        "generation_collections": [g["collection"] for g in hub_generations],
        "chance": chance_levels(same_collection(train_set, tracks, hub_generations)),
        "gradient_norms": {
            name: (
                f"the norm of the stored {STORED_GRADIENTS[name][1]} "
                f"(artifact {STORED_GRADIENTS[name][0]!r})"
                if name in norms
                else "not available: the method stores no per-track gradients"
            )
            for name in methods
        },
        "methods": hub_analysis(scores, train_set, tracks, hub_generations, norms),
    }
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    stem = Path(args.out) / (
        f"methods_compare-{date.today().isoformat()}-{commit}"
        + (f"-{args.tag}" if args.tag else "")
    )
    stem.parent.mkdir(parents=True, exist_ok=True)
    files = plot(curves, correlation, stem, len(specs)) + write_csv(curves, correlation, stem)
    files.append(write_hubs_csv(hubs, stem))
    report = {
        "command": "benchmarks/attribution_methods_compare.py",
        "arguments": vars(args),
        "commit": commit,
        "checkpoint_sha256": model.checkpoint_sha256,
        "training_manifest_sha256": train_set.manifest_sha256,
        "n_training_items": len(train_set),
        "engine_config": cfg.to_dict(),
        "methods": methods,
        "generations": specs,
        "seconds_per_generation": {
            name: {"mean": float(np.mean(values)), "max": float(np.max(values))}
            for name, values in seconds.items()
        },
        "wall_s": time.perf_counter() - started,
        "correlations": correlation,
        "curves": curves,
        "hubs": hubs,
        "scores": {name: values.tolist() for name, values in scores.items()},
        "files": [path.name for path in files],
    }
    json_path = stem.with_suffix(".json")
    write_json(json_path, report)
    names = correlation["methods"]
    print(f"\n{len(specs)} generations x {len(train_set)} training tracks")
    for statistic in ("pearson", "spearman"):
        print(f"\n{statistic} (mean over generations)")
        print(" " * 22 + "".join(f"{name[:10]:>11s}" for name in names))
        for a, name in enumerate(names):
            row = correlation[statistic]["mean"][a]
            print(f"{name:22s}" + "".join(f"{value:11.2f}" for value in row))
    print(f"\nhub tracks: top-{HUB_TOP_K} places taken by another collection's tracks")
    print(
        f"{'method':22s} {'correction':38s} {'unrelated':>9s} {'twice+':>6s}"
        f" {'own pool':>8s} {'rho':>6s}"
    )
    chance = hubs["chance"]
    print(
        f"{'by chance':61s} {chance['unrelated_top_k_share']:9.2f} {'':6s}"
        f" {chance['own_collection_pool_share']:8.3f}"
    )
    for name, entries in hubs["methods"].items():
        for correction, entry in entries.items():
            hub = entry["hub"]
            print(
                f"{name:22s} {correction:38s} {hub['unrelated_top_k_share']:9.2f}"
                f" {hub['tracks_in_unrelated_top_k_twice_or_more']:6d}"
                f" {entry['own_collection_pool_share']['mean']:8.3f}"
                f" {entry['spearman_with_uncorrected']['mean']:6.2f}"
            )
    print("\nseconds per generation:")
    for name, values in seconds.items():
        print(f"  {name:22s} {np.mean(values):8.1f}")
    print(f"\nwrote {json_path} and {', '.join(path.name for path in files)}")


if __name__ == "__main__":
    main()
