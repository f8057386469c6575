"""A scoring worker's memory and time to its first shard at N = 300 and N = 4000 tracks.

    .venv/bin/python benchmarks/attribution_worker_scale.py [--sizes 300,4000] [--shard 64]

For each N, a training manifest of N tracks (the demo's 300 real tracks, then copies under
new track ids, so new draws) is written, its encodings are stored once (timed), and then a
fresh process plays a shard worker: it loads the model and the training set, opens the stored
encodings and scores one shard of --shard tracks with the exact method's scoring stage
(theta' = theta0: the work, not the numbers, is what is measured). It reports its resident
memory (VmHWM, the peak) and the seconds from start to the first shard's values, with the
stored encodings and, for comparison, with every track encoded in memory (how the engine
worked before encodings were stored). Writes benchmarks/results/worker_scale-<date>-<commit>.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from attribution_common import DATA_DIR, REPO_ROOT, write_json


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def worker(args) -> None:
    """One shard worker, started fresh: prints {"first_shard_s", "peak_rss_mib"}."""
    started = time.perf_counter()
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.config import EngineConfig
    from attribution.engine.items import load_training_set
    from attribution.engine.loss import dataset_losses

    torch.set_num_threads(1)
    model = load_engine_model(args.checkpoint)
    train_set = load_training_set(args.manifest, model)
    cfg = EngineConfig()
    store = ArtifactStore(args.store if args.stored else None)
    shard = store.encodings(model, train_set, cfg)[: args.shard]
    dataset_losses(model, shard, cfg)  # the shard's Eq. 2 losses (theta0: the work is the same)
    print(
        json.dumps({"first_shard_s": time.perf_counter() - started, "peak_rss_mib": peak_rss_mib()})
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(DATA_DIR / "demo" / "model"))
    parser.add_argument("--sizes", default="300,4000")
    parser.add_argument("--shard", type=int, default=64)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--manifest", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--stored", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    import torch

    from attribution.engine.artifacts import ArtifactStore
    from attribution.engine.checkpoint import load_engine_model
    from attribution.engine.config import EngineConfig
    from attribution.engine.items import load_training_set

    torch.set_num_threads(1)
    checkpoint = Path(args.checkpoint)
    base = json.loads((checkpoint / "training_manifest.json").read_text())
    model = load_engine_model(checkpoint)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for size in [int(s) for s in args.sizes.split(",")]:
            tracks = []
            for i in range(size):
                track = dict(base["tracks"][i % len(base["tracks"])])
                track["audio_path"] = str((checkpoint / track["audio_path"]).resolve())
                if i >= len(base["tracks"]):
                    track["track_id"] = f"{track['track_id']}~{i // len(base['tracks'])}"
                tracks.append(track)
            manifest = Path(scratch) / f"manifest-{size}.json"
            manifest.write_text(json.dumps({**base, "tracks": tracks}))
            store = Path(scratch) / "store"
            started = time.perf_counter()
            ArtifactStore(store).encodings(
                model, load_training_set(manifest, model), EngineConfig()
            )
            encode_s = time.perf_counter() - started
            row = {"n": size, "encode_once_s": encode_s}
            for stored in (True, False):
                command = [
                    sys.executable,
                    __file__,
                    "--worker",
                    "--checkpoint",
                    str(checkpoint),
                    "--manifest",
                    str(manifest),
                    "--store",
                    str(store),
                    "--shard",
                    str(args.shard),
                ] + (["--stored"] if stored else [])
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                figures = json.loads(out.stdout.strip().splitlines()[-1])
                label = "stored" if stored else "in_memory"
                row[f"{label}_first_shard_s"] = figures["first_shard_s"]
                row[f"{label}_peak_rss_mib"] = figures["peak_rss_mib"]
            rows.append(row)
            print(row, flush=True)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT
    ).stdout.strip()
    report = {
        "benchmark": "worker_scale",
        "date": date.today().isoformat(),
        "commit": commit,
        "machine": "2-core CPU machine (24 GiB)",
        "checkpoint": model.checkpoint_sha256[:16],
        "command": "benchmarks/attribution_worker_scale.py " + " ".join(sys.argv[1:]),
        "shard": args.shard,
        "rows": rows,
    }
    write_json(Path(args.out) / f"worker_scale-{report['date']}-{commit}.json", report)


if __name__ == "__main__":
    main()
