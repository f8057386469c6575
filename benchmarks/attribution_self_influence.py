"""Train-to-Train self-influence benchmark (Sec. 3.2 of Choi et al.) on the demo model.

    .venv/bin/python benchmarks/attribution_self_influence.py [--targets 40] [--k 100]
        [--workers 2] [--checkpoint data/demo/model]
        [--lr 1e-6 --steps 1 --target-layers all_blocks --unlearn-timesteps 2048 ...]

Chooses --targets training tracks by k-means over log-mel track embeddings, unlearns each
(Eq. 6) and scores the whole training set (Eq. 2), then prints and writes
benchmarks/results/attribution_self_influence.{csv,md,json}: R(z_tar) per target and its mean, the
mean embedding similarity of the top-k and bottom-k scored tracks, and measured timings. The
reports are rewritten after every target, so an interrupted run leaves its partial results.
The Fisher and theta0 losses are computed once (stored under data/artifacts/attribution/,
keyed by checkpoint hash) and reused by later runs. Not a test: the numbers are measured.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from attribution_common import add_engine_flags, prepare, run_jobs, write_json, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    parser.add_argument("--stem", default="attribution_self_influence")
    args = parser.parse_args()
    from attribution.engine.scoring import library_versions

    model, train_set, cfg, store, embeddings, targets, timings = prepare(args)
    out = Path(args.out)
    results: list = []
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
                "rank": r.rank,
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
            f"{'Complete' if final else 'PARTIAL'}: {len(done)}/{len(targets)} k-means targets. "
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
            "Setup timings (s): "
            + ", ".join(f"{key} {value:.1f}" for key, value in timings.items())
            + f"; {summary['mean_seconds_per_target']:.1f} s per target per worker "
            f"({args.workers} worker(s) x {args.threads} thread(s)), "
            f"{summary['wall_seconds_targets']:.0f} s wall for the targets.",
            f"Config: `{cfg.to_dict()}`",
        ]
        write_table(rows, out / args.stem, "Self-influence (Train-to-Train)", notes)
        write_json(out / f"{args.stem}.json", {**summary, "targets": rows})
        return notes

    def on_result(_key, _k, result) -> None:
        results.append(result)
        print(
            f"  target {len(results)}/{len(targets)}: position {result.position} rank "
            f"{result.rank} ({result.seconds:.0f} s; tau {result.tau_target:.4g}, runner-up "
            f"position {result.runner_up} tau {result.tau_runner_up:.4g})",
            flush=True,
        )
        report(final=False)

    run_jobs(
        args,
        [(None, cfg, position) for position in targets],
        on_result,
        local=dict(model=model, train_set=train_set, store=store, embeddings=embeddings),
    )
    print("\n".join(report(final=True)))
    print(f"wrote {out / args.stem}.csv/.md/.json")


if __name__ == "__main__":
    main()
