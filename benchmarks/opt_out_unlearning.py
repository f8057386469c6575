"""Opt-out unlearning on the demo model: the three methods against a model retrained without
the forget set.

    .venv/bin/python benchmarks/opt_out_unlearning.py [--train-steps 3000]
        [--methods gradient_ascent,random_labels,fisher] [--forget-steps 20]
        [--forget-lr 1.0] [--max-update-norm 1e-3] [--fisher-update-norm 1e-3]
        [--forget-timesteps 8] [--loss-timesteps 16] [--held-out 32]
        [--generations 2] [--generation-steps 25] [--self-influence 2]
        [--limit-tracks N] [--cases holder,single_recording] [--stem opt_out_unlearning]

1. The demo catalog (DATA_DIR/demo, `manage.py build_demo_world`) and its held-out tracks
   (DATA_DIR/demo/heldout: never in any training set).
2. Two forget sets: every recording of one rights holder (holder_ground_truth.pick_holders,
   the first of one pick) and a single recording (the first of that holder's, by ISRC).
3. The parent: the demo DiT trained on the whole catalog (the demo world's model itself when
   --train-steps is the world's); per forget set a reference retrained from scratch without
   it (demo/world/training.py through holder_ground_truth.train_cached: same seeds, same
   steps, cached by content hash).
4. Per forget set and method: attribution/engine/forgetting.py's `forget` on the parent,
   then its checks (`loss_checks`, and with --generations / --self-influence the generation
   flatness and retain self-influence checks) against the parent and the retrained reference.

Writes benchmarks/results/<stem>.json (rewritten as each case finishes, `"complete": false`
until the end). Not a test: every number is measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from attribution_common import DATA_DIR, REPO_ROOT, Bar, add_engine_flags, engine_config, write_json

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    from demo.world.world import WorldConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_engine_flags(parser)
    parser.add_argument("--world", default=str(DATA_DIR / "demo"), help="the demo world's root")
    parser.add_argument(
        "--cache",
        default=str(DATA_DIR / "benchmarks" / "opt_out_unlearning"),
        help="trained checkpoints, keyed by content hash",
    )
    parser.add_argument(
        "--train-steps",
        type=int,
        default=WorldConfig.train_steps,
        help="steps of every training (default: the demo world's, whose model is then the "
        "parent as it is)",
    )
    parser.add_argument("--methods", default="gradient_ascent,random_labels,fisher")
    parser.add_argument("--forget-steps", type=int, default=None, help="ForgettingConfig.steps")
    parser.add_argument("--forget-lr", type=float, default=None)
    parser.add_argument("--max-update-norm", type=float, default=None)
    parser.add_argument("--fisher-update-norm", type=float, default=None)
    parser.add_argument("--forget-timesteps", type=int, default=None)
    parser.add_argument("--retain-batch", type=int, default=None)
    parser.add_argument("--loss-timesteps", type=int, default=16)
    parser.add_argument("--held-out", type=int, default=32, help="held-out tracks compared")
    parser.add_argument("--generations", type=int, default=2)
    parser.add_argument("--generation-steps", type=int, default=25)
    parser.add_argument("--self-influence", type=int, default=2, help="retain targets")
    parser.add_argument(
        "--limit-tracks", type=int, default=None, help="train on the first N tracks (smoke)"
    )
    parser.add_argument(
        "--cases",
        default="holder,single_recording",
        help="forget sets to run: holder (every recording of one rights holder), "
        "single_recording (the first of them)",
    )
    parser.add_argument("--stem", default="opt_out_unlearning")
    return parser.parse_args()


def forgetting_config(args, method: str):
    from attribution.engine.forgetting import ForgettingConfig

    given = {
        "steps": args.forget_steps,
        "lr": args.forget_lr,
        "max_update_norm": args.max_update_norm,
        "fisher_update_norm": args.fisher_update_norm,
        "timesteps": args.forget_timesteps,
        "retain_batch": args.retain_batch,
        "seed": args.seed,
    }
    return ForgettingConfig(method=method, **{k: v for k, v in given.items() if v is not None})


def held_out_tracks(world: Path, limit: int) -> tuple[Path, list[dict]]:
    manifest = world / "heldout" / "manifest.json"
    if not manifest.is_file():
        return manifest, []
    return manifest, json.loads(manifest.read_text())["tracks"][:limit]


def run_case(label, parent, reference, forget_isrcs, cfgs, args, engine_cfg, held_out, log):
    """Every method on one forget set: the checks, their values and the gaps to retraining."""
    from attribution.engine import forgetting
    from attribution.engine.fisher import diagonal_fisher
    from attribution.engine.items import TrainingSet, encode_items
    from attribution.engine.unlearn import parameters_swapped

    model, train_set = parent
    encoded = encode_items(model, train_set.items, engine_cfg, Bar())
    isrcs = [str(item.metadata.get("isrc")) for item in train_set.items]
    forget_pos = [i for i, isrc in enumerate(isrcs) if isrc in forget_isrcs]
    retain_pos = [i for i, isrc in enumerate(isrcs) if isrc not in forget_isrcs]
    forget_items = [encoded[i] for i in forget_pos]
    retain_items = [encoded[i] for i in retain_pos]
    limits = forgetting.ValidationThresholds(
        loss_timesteps=args.loss_timesteps,
        generations=args.generations,
        generation_steps=args.generation_steps,
        self_influence_targets=args.self_influence,
    )

    def losses(on):
        return {
            "forget": forgetting.set_losses(on, forget_items, engine_cfg, limits),
            "retain": forgetting.set_losses(on, retain_items, engine_cfg, limits),
            "held_out": forgetting.set_losses(on, held_out, engine_cfg, limits),
        }

    parent_losses = losses(model)
    reference_losses = losses(reference)
    prompts = [train_set.items[i].prompt for i in retain_pos][: limits.generations]
    parent_flat = forgetting.generation_flatness(model, prompts, limits) if prompts else []
    reference_flat = forgetting.generation_flatness(reference, prompts, limits) if prompts else []
    targets = retain_pos[: limits.self_influence_targets]
    parent_ranks = forgetting.own_ranks(model, train_set, engine_cfg, targets)
    retain_set = TrainingSet(
        items=[train_set.items[i] for i in retain_pos], manifest_sha256="retain"
    )
    fisher = None
    results = {
        "forget_isrcs": sorted(forget_isrcs),
        "counts": {k: len(v) for k, v in parent_losses.items()},
        "methods": {},
    }
    for method, cfg in cfgs.items():
        if method == "fisher" and fisher is None:
            fisher = diagonal_fisher(model, encoded, engine_cfg, Bar())
        started = time.perf_counter()
        weights = forgetting.forget(
            model, forget_items, retain_items, engine_cfg, cfg,
            fisher=fisher if method == "fisher" else None, progress=Bar(),
        )  # fmt: skip
        seconds = time.perf_counter() - started
        with parameters_swapped(model, weights):
            derived_losses = losses(model)
            checks = forgetting.loss_checks(parent_losses, derived_losses, limits, reference_losses)
            if prompts:
                checks["generation_flatness"] = forgetting.flatness_check(
                    parent_flat,
                    forgetting.generation_flatness(model, prompts, limits),
                    limits,
                    reference_flat,
                )
            if targets:
                ranks = forgetting.own_ranks(
                    model, retain_set, engine_cfg, [retain_pos.index(p) for p in targets]
                )
                checks["self_influence"] = forgetting.self_influence_check(
                    parent_ranks, ranks, limits
                )
        results["methods"][method] = {
            "config": cfg.to_dict(),
            "seconds": round(seconds, 1),
            "passed": forgetting.validation_passed(checks),
            "checks": checks,
            "means": {
                name: forgetting.group_means(found)
                for name, found in (
                    ("parent", parent_losses),
                    ("derived", derived_losses),
                    ("retrained", reference_losses),
                )
            },
        }
        log(f"{label} {method}: {seconds:.0f} s, passed {results['methods'][method]['passed']}")
    return results


def main() -> None:
    args = parse_args()
    import torch
    from attribution_common import load_catalog
    from holder_ground_truth import git_commit, pick_holders, train_cached

    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.items import encode_items, load_training_set

    torch.set_num_threads(args.threads)
    world, cache = Path(args.world), Path(args.cache)
    tracks, holders, shares = load_catalog(world)
    if args.limit_tracks:
        tracks = tracks[: args.limit_tracks]
    holder = pick_holders(tracks, holders, shares, 1, max_share=0.1)[0]
    holder_isrcs = {t.isrc for t in tracks if holder in {n for n, _ in shares[t.isrc]}}
    single = {sorted(holder_isrcs)[0]}
    engine_cfg = engine_config(args)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    cfgs = {method: forgetting_config(args, method) for method in methods}
    out = Path(args.out) / f"{args.stem}.json"
    report = {
        "benchmark": "opt_out_unlearning",
        "commit": git_commit(),
        "machine": platform.platform(),
        "argv": sys.argv[1:],
        "engine": engine_cfg.to_dict(),
        "holder": holder,
        "complete": False,
        "cases": {},
    }

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    parent_record = train_cached(
        tracks, steps=args.train_steps, train_seed=0, cache=cache, label="parent", log=log,
        world_root=world,
    )  # fmt: skip
    parent_dir = Path(parent_record["folder"])
    model = load_engine_model(parent_dir, device=engine_cfg.device)
    train_set = load_training_set(parent_dir / "training_manifest.json", model)
    heldout_manifest, heldout_tracks = held_out_tracks(world, args.held_out)
    held_out = []
    if heldout_tracks:
        heldout_set = load_training_set(heldout_manifest, model)
        held_out = encode_items(model, heldout_set.items[: args.held_out], engine_cfg, Bar())
    report["held_out"] = len(held_out)
    report["parent"] = parent_record
    cases = {"holder": holder_isrcs, "single_recording": single}
    chosen = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(chosen) - set(cases))
    if unknown:
        raise SystemExit(f"Unknown case(s) {unknown}; choose from {sorted(cases)}.")
    for label in chosen:
        forget_isrcs = cases[label]
        kept = [t for t in tracks if t.isrc not in forget_isrcs]
        reference_record = train_cached(
            kept, steps=args.train_steps, train_seed=0, cache=cache, label=f"without {label}",
            log=log,
        )  # fmt: skip
        reference = load_engine_model(reference_record["folder"], device=engine_cfg.device)
        case = run_case(
            label, (model, train_set), reference, forget_isrcs, cfgs, args, engine_cfg,
            held_out, log,
        )  # fmt: skip
        case["retrained"] = reference_record
        report["cases"][label] = case
        write_json(out, report)
    report["complete"] = True
    write_json(out, report)
    log(f"wrote {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")


if __name__ == "__main__":
    main()
