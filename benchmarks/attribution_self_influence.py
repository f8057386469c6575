"""Train-to-Train self-influence benchmark (Sec. 3.2 of Choi et al.) on the demo model.

    .venv/bin/python benchmarks/attribution_self_influence.py [--targets 40] [--k 100]
        [--positions all | --positions 3,17] [--method unlearning | first_order]
        [--workers 2] [--checkpoint data/demo/model]
        [--lr 1e-6 --steps 1 --target-layers all_blocks --unlearn-timesteps 2048 ...]

Chooses --targets training tracks by k-means over log-mel track embeddings (or --positions;
`all` takes every training track), unlearns each with --method (Eq. 6, or its first-order form)
and scores the whole training set (Eq. 2), then prints and writes
benchmarks/results/attribution_self_influence.{csv,md,json}: R(z_tar) per target and its mean, the
mean embedding similarity of the top-k and bottom-k scored tracks, and measured timings.

R(z_tar) is also broken down by the target's duration (--duration-bins, seconds), and
recomputed under a correction for short tracks that needs no new model computation:
`window_share`, each training item's score divided by the share of the model's window its
audio fills (a track shorter than the window is zero-padded, and without the loss mask M_L
its loss is averaged over the padded frames too, so its loss rise is diluted by about that
share). Every target's scores are kept in --scores-dir, so later corrections can be measured
on the same run.

The reports are rewritten after every target, so an interrupted run leaves its partial results.
The Fisher, the theta0 losses and a method's own per-checkpoint artifacts (the first-order
features) are computed once (stored under data/artifacts/attribution/, keyed by checkpoint
hash) and reused by later runs. Not a test: the numbers are measured.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np
from attribution_common import (
    DATA_DIR,
    add_engine_flags,
    prepare,
    run_jobs,
    window_shares,
    write_json,
    write_table,
)


def duration_breakdown(rows: list[dict], edges: list[float], rank_keys: list[str]) -> list[dict]:
    """Per duration bin of the targets (edges in seconds): count, mean rank and how many at
    rank 1 under each of `rank_keys`, and how often the best other track was longer."""
    bounds = [0.0, *edges, float("inf")]
    out = []
    for low, high in itertools.pairwise(bounds):
        inside = [r for r in rows if low <= r["seconds_total"] < high]
        entry: dict = {
            "seconds": f"{low:g}-{high:g}" if high != float("inf") else f">={low:g}",
            "targets": len(inside),
        }
        for key in rank_keys:
            ranks = [r[key] for r in inside]
            entry[f"{key}_mean"] = float(np.mean(ranks)) if ranks else None
            entry[f"{key}_at_1"] = sum(rank == 1 for rank in ranks)
            entry[f"{key}_worst"] = max(ranks) if ranks else None
        missed = [r for r in inside if r["rank"] > 1]
        entry["missed_runner_up_longer"] = sum(
            r["runner_up_seconds_total"] > r["seconds_total"] for r in missed
        )
        out.append(entry)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    parser.add_argument("--stem", default="attribution_self_influence")
    parser.add_argument(
        "--method", default="unlearning", help="registered attribution method scoring each target"
    )
    parser.add_argument(
        "--duration-bins", default="2,4,6", help="comma-separated bin edges, target seconds"
    )
    parser.add_argument(
        "--scores-dir",
        default=str(DATA_DIR / "benchmarks" / "self_influence"),
        help="where every target's scores are kept (<stem>-scores.npz)",
    )
    args = parser.parse_args()
    from attribution.engine.methods import METHODS
    from attribution.engine.scoring import library_versions, rank_of

    if args.method not in METHODS:
        parser.error(f"unknown --method {args.method!r}; registered: {sorted(METHODS)}")
    try:
        edges = sorted(float(edge) for edge in args.duration_bins.split(","))
    except ValueError:
        parser.error(f"--duration-bins takes comma-separated seconds, got {args.duration_bins!r}")
    model, train_set, cfg, store, embeddings, targets, timings = prepare(args)
    out = Path(args.out)
    results: list = []
    taus: dict[int, np.ndarray] = {}  # target position -> its scores (N,)
    corrected_ranks: dict[int, int] = {}  # target position -> R, window-share corrected
    shares = window_shares(store.encodings(model, train_set, cfg))
    scores_path = Path(args.scores_dir) / f"{args.stem}-scores.npz"
    scores_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    def report(final: bool) -> list[str]:
        done = sorted(results, key=lambda r: r.position)
        ranks = [r.rank for r in done]
        k = min(args.k, (len(train_set) - 1) // 2)
        rows = [
            {
                "position": r.position,
                "track_id": r.item_id,
                "seconds_total": train_set.items[r.position].seconds_total,
                "window_share": round(float(shares[r.position]), 4),
                "rank": r.rank,
                "rank_window_share": corrected_ranks[r.position],
                "tau_target": r.tau_target,
                "runner_up_track_id": train_set.items[r.runner_up].item_id,
                "runner_up_seconds_total": train_set.items[r.runner_up].seconds_total,
                "tau_runner_up": r.tau_runner_up,
                "sim_topk": round(r.sim_topk, 4),
                "sim_botk": round(r.sim_botk, 4),
                **{
                    f"{name}_sim_{side}k": round(pair[i], 4)
                    for name, pair in r.extra.items()
                    for i, side in enumerate(("top", "bot"))
                },
                "seconds": round(r.seconds, 2),
            }
            for r in done
        ]
        summary = {
            "complete": final,
            "method": args.method,
            "window_seconds": model.sample_size / model.sample_rate,
            "by_duration": duration_breakdown(rows, edges, ["rank", "rank_window_share"]),
            "mean_rank_window_share": float(np.mean([r["rank_window_share"] for r in rows])),
            "targets_at_rank_1_window_share": sum(r["rank_window_share"] == 1 for r in rows),
            "checkpoint_sha256": model.checkpoint_sha256,
            "training_manifest_sha256": train_set.manifest_sha256,
            "n_items": len(train_set),
            "n_targets_done": len(done),
            "n_targets": len(targets),
            "k": k,
            "embedding": "log-mel mean+std, z-scored, cosine (see self_influence.py)",
            "mean_rank": float(np.mean(ranks)),
            "targets_at_rank_1": sum(r == 1 for r in ranks),
            "mean_sim_topk": float(np.mean([r.sim_topk for r in done])),
            "mean_sim_botk": float(np.mean([r.sim_botk for r in done])),
            **{
                f"mean_{name}_sim_{side}k": float(np.mean([r.extra[name][i] for r in done]))
                for name in done[0].extra
                for i, side in enumerate(("top", "bot"))
            },
            "mean_seconds_per_target": float(np.mean([r.seconds for r in done])),
            "wall_seconds_targets": time.perf_counter() - started,
            "timings": timings,
            "engine_config": cfg.to_dict(),
            "threads": args.threads,
            "workers": args.workers,
            "library_versions": library_versions(),
        }
        from attribution.hash_labels import CHECKPOINT_HASH_LABEL, short_hash

        notes = [
            f"{'Complete' if final else 'PARTIAL'}: {len(done)}/{len(targets)} targets, "
            f"method {args.method}. "
            f"{CHECKPOINT_HASH_LABEL} `{short_hash(model.checkpoint_sha256)}`, "
            f"N = {len(train_set)} training tracks, k = {k}.",
            f"Embedding: {summary['embedding']}.",
            f"**Mean R(z_tar) = {summary['mean_rank']:.3f}** ({summary['targets_at_rank_1']}/"
            f"{len(done)} at rank 1); mean similarity top-{k} = {summary['mean_sim_topk']:.4f},"
            f" bottom-{k} = {summary['mean_sim_botk']:.4f}"
            + "".join(
                f"; caption (MiniLM) similarity top-{k} = {summary['mean_caption_sim_topk']:.4f}, "
                f"bottom-{k} = {summary['mean_caption_sim_botk']:.4f}"
                for _ in [0]
                if "mean_caption_sim_topk" in summary
            )
            + ".",
            "By target duration (R: mean, at rank 1; window-share correction after the slash): "
            + "; ".join(
                f"{b['seconds']} s: {b['targets']} targets, R {b['rank_mean']:.2f} / "
                f"{b['rank_window_share_mean']:.2f}, {b['rank_at_1']} / "
                f"{b['rank_window_share_at_1']} at 1"
                for b in summary["by_duration"]
                if b["targets"]
            )
            + ".",
            "Setup timings (s): "
            + ", ".join(f"{key} {value:.1f}" for key, value in timings.items())
            + f"; {summary['mean_seconds_per_target']:.1f} s per target per worker "
            f"({args.workers} worker(s) x {args.threads} thread(s)), "
            f"{summary['wall_seconds_targets']:.0f} s wall for the targets.",
            f"Config: `{cfg.to_dict()}`",
        ]
        write_table(rows, out / args.stem, "Self-influence (Train-to-Train)", notes)
        write_json(out / f"{args.stem}.json", {**summary, "targets": rows})
        np.savez(
            scores_path,
            positions=np.array(sorted(taus)),
            tau=np.stack([taus[p] for p in sorted(taus)]),  # (targets, N)
        )
        return notes

    def on_result(_key, _k, result, tau) -> None:
        taus[result.position] = tau
        corrected_ranks[result.position] = rank_of(tau / shares, result.position)
        results.append(result)
        print(
            f"  target {len(results)}/{len(targets)}: position {result.position} rank "
            f"{result.rank} ({result.seconds:.0f} s; tau {result.tau_target:.4g}, runner-up "
            f"position {result.runner_up} tau {result.tau_runner_up:.4g})",
            flush=True,
        )
        report(final=False)

    # A seeded order, so that an interrupted run over many targets leaves a random sample of
    # them rather than the first positions of the catalog (one collection after another).
    order = np.random.default_rng(args.seed).permutation(len(targets))
    run_jobs(
        args,
        [(None, cfg, targets[i]) for i in order],
        on_result,
        local=dict(model=model, train_set=train_set, store=store, embeddings=embeddings),
    )
    print("\n".join(report(final=True)))
    print(f"wrote {out / args.stem}.csv/.md/.json")


if __name__ == "__main__":
    main()
