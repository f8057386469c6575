"""Stable Audio Open 1.0 at full size on this machine: time and peak memory of each stage.

    .venv/bin/python benchmarks/attribution_stable_audio_open.py [--depth 24] [--keep]

Builds the published Stable Audio Open 1.0 architecture (24 DiT blocks, embed 1536, the
Oobleck VAE, a t5-base-sized T5 encoder; random weights: no weights are downloaded), saves
it in the published layout (model_config.json, model.safetensors) and runs the engine's
stages on two training items and one query with the smallest T (one draw each):

  load       load_engine_model (config, weights, T5 from its local folder)
  encode     three items padded to the 47.5 s window through the VAE (20 s and 47.5 s of
             training audio, a 10 s query)
  fisher     one item's per-sample squared gradient into the float64 Fisher sums
  base       theta0 losses of the two training items (Eq. 2's first term)
  unlearn    one Eq. 6 step (the query's gradient, preconditioned)
  score      the two items' losses under theta'

Each stage's wall time and peak resident memory (VmHWM, reset before the stage through
/proc/self/clear_refs) are printed and written to
benchmarks/results/stable_audio_open_stages-<date>-<commit>.json. The checkpoint (about
5 GB) is written under $ROYALTIES_DATA_DIR/benchmarks/ and deleted afterwards unless --keep.
"""

from __future__ import annotations

import argparse
import gc
import math
import shutil
import subprocess
import time
from datetime import date
from pathlib import Path

from attribution_common import DATA_DIR, REPO_ROOT, write_json


def rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS


class Stages:
    def __init__(self) -> None:
        self.rows: list[dict] = []

    def run(self, name: str, function):
        gc.collect()
        reset_peak()
        started = time.perf_counter()
        value = function()
        row = {
            "stage": name,
            "seconds": round(time.perf_counter() - started, 2),
            "peak_rss_mib": round(rss_mib("VmHWM")),
            "rss_after_mib": round(rss_mib("VmRSS")),
        }
        self.rows.append(row)
        print(
            f"{name:10s} {row['seconds']:9.1f} s   peak {row['peak_rss_mib'] / 1024:6.2f} GiB   "
            f"after {row['rss_after_mib'] / 1024:6.2f} GiB",
            flush=True,
        )
        return value


def stereo_tone(seconds: float, frequency: float, sample_rate: int):
    import torch

    time_axis = torch.arange(int(seconds * sample_rate)) / sample_rate
    left = 0.4 * torch.sin(2 * math.pi * frequency * time_axis)
    return torch.stack([left, 0.8 * torch.roll(left, 37)])  # (2, T)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=24, help="DiT blocks (published: 24)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--keep", action="store_true", help="keep the written checkpoint")
    parser.add_argument(
        "--activation-checkpointing",
        action="store_true",
        help="recompute the DiT blocks' activations in backward (EngineConfig)",
    )
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    import torch

    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.config import EngineConfig
    from attribution.engine.fisher import accumulate_fisher, empty_sums, finalize_fisher
    from attribution.engine.items import TrainingItem, encode_item, make_query
    from attribution.engine.loss import dataset_losses
    from attribution.engine.methods.unlearning import relative_update_norm
    from attribution.engine.unlearn import parameters_swapped, unlearn
    from tests.attribution.stable_audio_open import (
        T5_NAME,
        build_random_model,
        stable_audio_open_config,
        write_checkpoint,
        write_t5_encoder,
    )

    torch.set_num_threads(args.threads)
    root = DATA_DIR / "benchmarks" / "stable_audio_open"
    shutil.rmtree(root, ignore_errors=True)
    encoders, checkpoint = root / "text_encoders", root / "checkpoint"
    config = stable_audio_open_config(depth=args.depth)
    stages = Stages()

    def build() -> dict:
        write_t5_encoder(encoders / T5_NAME, num_layers=12, d_ff=3072, vocab_size=32128)
        module = build_random_model(config, encoders)
        counts = {
            "parameters": sum(p.numel() for p in module.parameters()),
            "dit_parameters": sum(p.numel() for p in module.model.parameters()),
            "block_parameters": sum(
                p.numel() for n, p in module.named_parameters() if ".transformer.layers." in n
            ),
        }
        write_checkpoint(checkpoint, config, module)
        return counts

    counts = stages.run("build+save", build)
    print(counts, flush=True)
    model = stages.run("load", lambda: load_engine_model(checkpoint, text_encoder_dirs=[encoders]))
    cfg = EngineConfig(
        unlearn_timesteps=1,
        score_timesteps=1,
        fisher_timesteps=1,
        batch_size=1,
        lr=1e-9,
        activation_checkpointing=args.activation_checkpointing,
    )
    rate = model.sample_rate
    training = [
        TrainingItem("track-0", stereo_tone(20.0, 220.0, rate), "a slow organ chorale", 0, 20),
        TrainingItem("track-1", stereo_tone(47.5, 330.0, rate), "a fast fiddle reel", 0, 48),
    ]
    query = make_query(stereo_tone(10.0, 262.0, rate), rate, "a bright piano tone", model)

    def encode() -> list:
        with torch.no_grad():
            return [encode_item(model, item, cfg) for item in [*training, query]]

    *encoded, encoded_query = stages.run("encode", encode)

    def fisher() -> dict:
        sums = empty_sums(model)
        accumulate_fisher(model, encoded, cfg, sums, 0, 1)
        return finalize_fisher(sums, 1, cfg.fisher_timesteps)

    fisher_values = stages.run("fisher", fisher)
    base = stages.run("base", lambda: dataset_losses(model, encoded, cfg))
    theta_prime = stages.run(
        "unlearn", lambda: unlearn(model, encoded_query, fisher_values, cfg, len(encoded))
    )
    relative = relative_update_norm(model, theta_prime)

    def score():
        with parameters_swapped(model, theta_prime):
            return dataset_losses(model, encoded, cfg)

    unlearned = stages.run("score", score)
    tau = (unlearned - base).tolist()
    print(f"tau {tau}   update relative norm {relative:.3e}", flush=True)

    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout.strip()
    report = {
        "benchmark": "stable_audio_open_stages",
        "command": "benchmarks/attribution_stable_audio_open.py "
        + f"--depth {args.depth} --threads {args.threads}"
        + (" --activation-checkpointing" if args.activation_checkpointing else ""),
        "date": date.today().isoformat(),
        "commit": commit,
        "machine": "2-core CPU machine (24 GiB)",
        "checkpoint": f"Stable Audio Open 1.0 architecture, {args.depth} blocks, random weights "
        "(seed 0)",
        "checkpoint_sha256": model.checkpoint_sha256,
        "config": {"sample_size": config["sample_size"], "sample_rate": rate},
        "engine_config": cfg.to_dict(),
        **counts,
        "stages": stages.rows,
        "peak_rss_mib": max(row["peak_rss_mib"] for row in stages.rows[1:]),
        "tau": tau,
        "update_relative_norm": relative,
    }
    variant = "-activation-checkpointing" if args.activation_checkpointing else ""
    name = f"stable_audio_open_stages-{report['date']}-{commit}{variant}.json"
    write_json(Path(args.out) / name, report)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
