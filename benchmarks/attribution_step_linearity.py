"""Where Eq. 2's first-order reading holds: tau against the step size on Stable Audio Open's
architecture.

    .venv/bin/python benchmarks/attribution_step_linearity.py [--depth 2] [--window 65536]

Builds the published Stable Audio Open 1.0 config with its DiT cut to --depth blocks and a
--window-sample window, random weights (seed 0) and a t5-base-width T5, three stereo
training tones and one query (the architecture test's world), then scores the training set
with learning rates a decade apart. For each: the update's relative norm, the share of
weights float32 moved, the regime the engine assigns, and tau over the previous rate's tau
(10 in the first-order regime). Writes benchmarks/results/step_linearity-<date>-<commit>.json.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from datetime import date
from pathlib import Path

from attribution_common import REPO_ROOT, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--window", type=int, default=65536, help="sample_size (x 2048)")
    parser.add_argument("--lrs", default="1e-11,1e-10,1e-9,1e-8,1e-7,1e-6")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"))
    args = parser.parse_args()

    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.config import EngineConfig
    from attribution.engine.items import TrainingItem, TrainingSet, make_query
    from attribution.engine.methods import unlearning_scores
    from tests.attribution.stable_audio_open import (
        T5_NAME,
        build_random_model,
        stable_audio_open_config,
        stereo_tone,
        write_checkpoint,
        write_t5_encoder,
    )

    torch.set_num_threads(args.threads)
    config = stable_audio_open_config(depth=args.depth, sample_size=args.window)
    with tempfile.TemporaryDirectory() as tmp:
        encoders = Path(tmp) / "text_encoders"
        write_t5_encoder(encoders / T5_NAME)
        module = build_random_model(config, encoders)
        write_checkpoint(Path(tmp) / "checkpoint", config, module)
        del module
        model = load_engine_model(Path(tmp) / "checkpoint", text_encoder_dirs=[encoders])

    rate = model.sample_rate

    def tone(index: int, seconds: float) -> torch.Tensor:
        return torch.from_numpy(stereo_tone(index, seconds, rate).T.copy())  # (2, T)

    items = [
        TrainingItem(f"track-{i}", tone(i, 0.9 if i == 0 else 1.3), f"tone {i}", 0, 1)
        for i in range(3)
    ]
    train_set = TrainingSet.from_items(items)
    query = make_query(tone(9, 1.2), rate, "a dark cello tone", model)
    base = EngineConfig(
        unlearn_timesteps=16, score_timesteps=4, fisher_timesteps=2, batch_size=8, lr=1e-4
    )
    store = ArtifactStore(None)
    rows, previous = [], None
    for lr in [float(x) for x in args.lrs.split(",")]:
        scores = unlearning_scores(model, query, train_set, base.replace(lr=lr), store=store)
        stats = scores.provenance["statistics"]
        ratio = None if previous is None else (scores.tau / previous).tolist()
        rows.append(
            {
                "lr": lr,
                "eta": stats["eta"],
                "update_relative_norm": stats["update_relative_norm"],
                "weights_changed_fraction": stats["weights_changed_fraction"],
                "update_regime": stats["update_regime"],
                "tau": scores.tau.tolist(),
                "tau_over_previous": ratio,
            }
        )
        previous = scores.tau
        print(
            f"lr {lr:8.0e}  relative norm {stats['update_relative_norm']:.3e}  "
            f"moved {stats['weights_changed_fraction']:6.1%}  {stats['update_regime']:18s}  "
            f"tau / previous {ratio}",
            flush=True,
        )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout.strip()
    report = {
        "benchmark": "step_linearity",
        "command": f"benchmarks/attribution_step_linearity.py --depth {args.depth} "
        f"--window {args.window} --lrs {args.lrs}",
        "date": date.today().isoformat(),
        "commit": commit,
        "machine": "2-core CPU machine (24 GiB)",
        "checkpoint": f"Stable Audio Open 1.0 config, {args.depth} blocks, window "
        f"{args.window}, random weights (seed 0)",
        "checkpoint_sha256": model.checkpoint_sha256,
        "engine_config": base.to_dict(),
        "rows": rows,
    }
    write_json(Path(args.out) / f"step_linearity-{report['date']}-{commit}.json", report)


if __name__ == "__main__":
    main()
