"""Grid search over the unlearning hyperparameters (Table 1 of Choi et al.) on the demo model.

    .venv/bin/python benchmarks/attribution_grid_search.py [--preset table1|sweeps|all]
        [--targets 40] [--k 100] [--workers 2]
        [--lrs 1e-7,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1] [--step-counts 1,2,3,4]
        [--layers all_blocks,self_attn,cross_attn,cross_attn_to_kv] [--masks mixed,both,none]

Presets: "table1" = the six rows of the paper's Table 1 at lr 1e-6 / 1 step (to_kv, cross-
attention and self-attention with mixed masks; all blocks with both masks, no masks, mixed);
"sweeps" = Table 1 plus the learning-rate sweep and the step sweep around the best setting;
"all" = the full product of --lrs x --step-counts x --layers x --masks. Each row reports mean
R(z_tar) over the k-means targets, the share at rank 1, mean top-k / bottom-k embedding
similarity and seconds per target. Writes benchmarks/results/attribution_grid_search.{csv,md}
(rewritten after every finished row). Mask strategies: mixed = M_U on, M_L off (paper's
best); both = M_U and M_L; none = neither.
"""

from __future__ import annotations

import argparse
import itertools
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from attribution_common import add_engine_flags, prepare, run_jobs, write_table

MASKS = {"mixed": (True, False), "both": (True, True), "none": (False, False)}
TABLE1 = [
    ("cross_attn_to_kv", "mixed"),
    ("cross_attn", "mixed"),
    ("self_attn", "mixed"),
    ("all_blocks", "both"),
    ("all_blocks", "none"),
    ("all_blocks", "mixed"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    parser.add_argument("--preset", choices=("table1", "sweeps", "all"), default="sweeps")
    parser.add_argument("--lrs", default="1e-7,1e-6,1e-5,1e-4,1e-3,1e-2,1e-1")
    parser.add_argument("--step-counts", default="1,2,3,4")
    parser.add_argument("--layers", default="all_blocks,self_attn,cross_attn,cross_attn_to_kv")
    parser.add_argument("--masks", default="mixed,both,none")
    parser.add_argument("--stem", default="attribution_grid_search")
    args = parser.parse_args()

    model, train_set, base_cfg, store, embeddings, targets, timings = prepare(args)
    lr0, steps0 = base_cfg.lr, base_cfg.steps
    if args.preset == "all":
        grid = list(
            itertools.product(
                [float(x) for x in args.lrs.split(",")],
                [int(x) for x in args.step_counts.split(",")],
                args.layers.split(","),
                args.masks.split(","),
            )
        )
    else:
        grid = [(lr0, steps0, layer, mask) for layer, mask in TABLE1]
        if args.preset == "sweeps":
            grid += [(float(lr), steps0, "all_blocks", "mixed") for lr in args.lrs.split(",")]
            grid += [(lr0, int(s), "all_blocks", "mixed") for s in args.step_counts.split(",")]
        grid = list(dict.fromkeys(grid))  # drop repeats of the best setting, keep order
    configs = {}
    for key in grid:
        lr, steps, layer, mask = key
        unlearn_mask, loss_mask = MASKS[mask]
        configs[key] = base_cfg.replace(
            lr=lr, steps=steps, target_layers=layer, unlearn_mask=unlearn_mask, loss_mask=loss_mask
        )
    results: dict = defaultdict(list)
    started = time.perf_counter()
    k_used = [min(args.k, (len(train_set) - 1) // 2)]

    def write() -> None:
        rows = []
        for key in grid:
            done = results.get(key, [])
            if len(done) < len(targets):
                continue
            lr, steps, layer, mask = key
            rows.append(
                {
                    "target_layers": layer,
                    "M_U": "yes" if MASKS[mask][0] else "",
                    "M_L": "yes" if MASKS[mask][1] else "",
                    "lr": lr,
                    "steps": steps,
                    "mean_rank": round(float(np.mean([r.rank for r in done])), 3),
                    "rank_1_share": round(sum(r.rank == 1 for r in done) / len(done), 3),
                    "sim_topk": round(float(np.mean([r.sim_topk for r in done])), 4),
                    "sim_botk": round(float(np.mean([r.sim_botk for r in done])), 4),
                    **{
                        f"{name}_sim_{side}k": round(
                            float(np.mean([r.extra[name][i] for r in done])), 4
                        )
                        for name in done[0].extra
                        for i, side in enumerate(("top", "bot"))
                    },
                    "s_per_target": round(float(np.mean([r.seconds for r in done])), 1),
                }
            )
        if not rows:
            return
        from attribution.hash_labels import CHECKPOINT_HASH_LABEL, short_hash

        notes = [
            f"{len(rows)}/{len(grid)} configurations complete. {CHECKPOINT_HASH_LABEL} "
            f"`{short_hash(model.checkpoint_sha256)}`, N = {len(train_set)}, "
            f"{len(targets)} k-means targets, k = {k_used[0]}; measured by this script "
            f"({args.workers} worker(s) x {args.threads} thread(s), "
            f"{time.perf_counter() - started:.0f} s wall so far).",
            f"Fixed: {base_cfg.unlearn_timesteps} unlearning timesteps, T = "
            f"{base_cfg.score_timesteps} (scores), {base_cfg.fisher_timesteps} (Fisher), damping "
            f"{base_cfg.damping} x mean(F), seed {base_cfg.seed}; Eq. 6 step "
            + (
                f"eta = lr / N = lr / {len(train_set)}."
                if base_cfg.lr_times_inverse_n
                else "eta = lr (1/N absorbed)."
            ),
            "Setup timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()),
        ]
        write_table(rows, Path(args.out) / args.stem, "Grid search (Table 1 style)", notes)

    def on_result(key, k, result, _tau) -> None:
        k_used[0] = k
        results[key].append(result)
        if len(results[key]) == len(targets):
            done = results[key]
            print(f"{key}: mean rank {np.mean([r.rank for r in done]):.3f}", flush=True)
            write()

    jobs = [(key, configs[key], position) for key in grid for position in targets]
    run_jobs(
        args,
        jobs,
        on_result,
        local=dict(model=model, train_set=train_set, store=store, embeddings=embeddings),
    )
    write()
    print(f"wrote {Path(args.out) / args.stem}.csv/.md")


if __name__ == "__main__":
    main()
