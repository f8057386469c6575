"""Train-to-Train self-influence benchmark (Sec. 3.2 of Choi et al.) on the demo model.

    .venv/bin/python benchmarks/attribution_self_influence.py [--targets 40] [--k 100]
        [--checkpoint data/demo/model] [--lr 1e-6 --steps 1 --target-layers all_blocks ...]

Chooses --targets training tracks by k-means over log-mel track embeddings, unlearns each
(Eq. 6) and scores the whole training set (Eq. 2), then prints and writes
data/reports/attribution_self_influence.{csv,md,json}: R(z_tar) per target and its mean, the
mean embedding similarity of the top-k and bottom-k scored tracks, and measured timings.
The Fisher and theta0 losses are computed once (stored under data/artifacts/attribution/,
keyed by checkpoint hash) and reused by later runs. Not a test: the numbers are measured.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from attribution_common import add_engine_flags, prepare, write_json, write_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    args = parser.parse_args()
    from attribution.engine.scoring import library_versions
    from attribution.engine.self_influence import self_influence

    model, train_set, cfg, store, embeddings, targets, timings = prepare(args)
    started = time.perf_counter()
    report = self_influence(
        model,
        train_set,
        cfg,
        targets,
        embeddings,
        k=args.k,
        store=store,
        progress=lambda stage, done, total: print(f"  target {done}/{total}", flush=True),
    )
    timings["self_influence_s"] = time.perf_counter() - started
    rows = [
        {
            "position": t.position,
            "track_id": t.item_id,
            "seconds_total": train_set.items[t.position].seconds_total,
            "rank": t.rank,
            "sim_topk": round(t.sim_topk, 4),
            "sim_botk": round(t.sim_botk, 4),
            "seconds": round(t.seconds, 2),
        }
        for t in report.targets
    ]
    summary = {
        "checkpoint_sha256": model.checkpoint_sha256,
        "training_manifest_sha256": train_set.manifest_sha256,
        "n_items": len(train_set),
        "n_targets": len(targets),
        "k": report.k,
        "embedding": report.embedding,
        "mean_rank": report.mean_rank,
        "targets_at_rank_1": sum(t.rank == 1 for t in report.targets),
        "mean_sim_topk": report.mean_sim_topk,
        "mean_sim_botk": report.mean_sim_botk,
        "mean_seconds_per_target": report.mean_seconds,
        "timings": timings,
        "engine_config": cfg.to_dict(),
        "threads": args.threads,
        "library_versions": library_versions(),
    }
    out = Path(args.out)
    notes = [
        f"Checkpoint `{model.checkpoint_sha256[:16]}`, N = {len(train_set)} training tracks, "
        f"{len(targets)} k-means targets, k = {report.k}.",
        f"Embedding: {report.embedding}.",
        f"**Mean R(z_tar) = {report.mean_rank:.3f}** ({summary['targets_at_rank_1']}/"
        f"{len(targets)} at rank 1); mean sim top-{report.k} = {report.mean_sim_topk:.4f}, "
        f"bottom-{report.k} = {report.mean_sim_botk:.4f}.",
        "Timings (s): "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
        + f"; {report.mean_seconds:.1f} s per target ({args.threads} CPU thread(s)).",
        f"Config: `{cfg.to_dict()}`",
    ]
    csv_path, md_path = write_table(
        rows, out / "attribution_self_influence", "Self-influence", notes
    )
    write_json(out / "attribution_self_influence.json", {**summary, "targets": rows})
    print("\n".join(notes))
    print(f"wrote {csv_path}, {md_path}")


if __name__ == "__main__":
    main()
