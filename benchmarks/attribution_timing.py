"""Measured throughput of the engine's three kinds of work on a checkpoint, and the cost of a
full-size run extrapolated from it (labelled as such).

    .venv/bin/python benchmarks/attribution_timing.py [--checkpoint data/demo/model]
        [--repeats 3] [--threads 1]

Times (best of --repeats, on real training items): a scoring forward pass of --batch-size
draws, an unlearning forward+backward of --batch-size draws, and one per-sample Fisher
gradient (one draw, forward+backward). From these it extrapolates, for the config given by
the flags: the Fisher (N x fisher_timesteps per-sample gradients), the theta0 losses
(N x score_timesteps forward draws), and one query (unlearn_timesteps x steps draws forward+
backward + N x score_timesteps forward draws). Writes benchmarks/results/attribution_timing.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from attribution_common import add_engine_flags, engine_config, write_json


def best_of(repeats: int, run) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.fisher import block_parameters
    from attribution.engine.items import encode_item, load_training_set
    from attribution.engine.loss import draw, row_losses

    torch.set_num_threads(args.threads)
    cfg = engine_config(args)
    model = load_engine_model(args.checkpoint, device=cfg.device)
    manifest = Path(args.manifest or Path(args.checkpoint) / "training_manifest.json")
    train_set = load_training_set(manifest, model)
    item = encode_item(model, train_set.items[0], cfg)
    t, noise = draw(model, item, cfg, "score", range(cfg.batch_size))
    params = list(block_parameters(model).values())

    def forward() -> None:
        with torch.no_grad():
            row_losses(model, item, t, noise, mask=cfg.loss_mask)

    def forward_backward() -> None:
        torch.autograd.grad(row_losses(model, item, t, noise, mask=True).sum(), params)

    def per_sample() -> None:
        torch.autograd.grad(row_losses(model, item, t[:1], noise[:1], mask=False)[0], params)

    n = len(train_set)
    forward_s = best_of(args.repeats, forward) / cfg.batch_size  # per draw
    backward_s = best_of(args.repeats, forward_backward) / cfg.batch_size  # per draw
    per_sample_s = best_of(args.repeats, per_sample)
    fisher_s = n * cfg.fisher_timesteps * per_sample_s
    base_s = n * cfg.score_timesteps * forward_s
    unlearn_s = cfg.unlearn_timesteps * cfg.steps * backward_s
    query_s = unlearn_s + base_s
    result = {
        "checkpoint_sha256": model.checkpoint_sha256,
        "n_items": n,
        "threads": args.threads,
        "engine_config": cfg.to_dict(),
        "measured_seconds_per_draw": {
            "scoring_forward": forward_s,
            "unlearning_forward_backward": backward_s,
            "fisher_per_sample_gradient": per_sample_s,
        },
        "extrapolated_seconds": {
            "fisher": fisher_s,
            "theta0_losses": base_s,
            "per_query_unlearning": unlearn_s,
            "per_query_scoring": base_s,
            "per_query_total": query_s,
            "self_influence_40_targets": 40 * query_s,
        },
    }
    write_json(Path(args.out) / "attribution_timing.json", result)
    print(f"N = {n}, config {cfg.to_dict()}, {args.threads} thread(s)")
    for key, value in result["measured_seconds_per_draw"].items():
        print(f"  measured {key}: {value * 1000:.1f} ms per draw")
    for key, value in result["extrapolated_seconds"].items():
        print(f"  extrapolated {key}: {value:.0f} s ({value / 60:.1f} min)")


if __name__ == "__main__":
    main()
