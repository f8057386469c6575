"""How music-like the demo model's generations are, against its training tracks and noise.

    .venv/bin/python benchmarks/demo_audio_quality.py [--checkpoint data/demo/model]
        [--seeds 2] [--cfg-scales 1,3,6] [--steps 50] [--out benchmarks/results/audio_quality]

Generates one clip per (prompt, seed, guidance scale) with stable-audio-tools' sampler, writes
the WAVs, and prints each clip's spectral flatness (geometric over arithmetic mean of the
Welch power spectrum: 1 for white noise, near 0 for tonal music) beside the same figure for
the training tracks and for white noise. Not a test: the numbers are measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA_DIR = Path(os.environ.get("ROYALTIES_DATA_DIR", ROOT / "data")).resolve()
PROMPTS = (
    "chorale by Johann Sebastian Bach (Bach chorales), church organ, G major, 4/4, "
    "moderate tempo, 84 BPM",
    "reel from O'Neill's Music of Ireland, fiddle, D major, 4/4, fast tempo, 120 BPM",
    "string quartet movement by Wolfgang Amadeus Mozart, string quartet, C major, 3/4, "
    "moderate tempo, 96 BPM",
)


def spectral_flatness(audio: np.ndarray, sample_rate: int) -> float:
    from scipy.signal import welch

    _, power = welch(audio, fs=sample_rate, nperseg=1024)
    power = power[1:] + 1e-20  # drop DC
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=str(DATA_DIR / "demo" / "model"))
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--cfg-scales", default="1,3,6")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "audio_quality"))
    args = parser.parse_args()

    import soundfile as sf
    import torch

    from attribution.engine.loading import load_model
    from attribution.engine.sampling import generate

    torch.set_num_threads(2)
    checkpoint = Path(args.checkpoint)
    model, config = load_model(checkpoint)
    sample_rate = int(config["sample_rate"])
    manifest = json.loads((checkpoint / "training_manifest.json").read_text())
    train = [
        spectral_flatness(sf.read(checkpoint / t["audio_path"], dtype="float32")[0], sample_rate)
        for t in manifest["tracks"]
    ]
    noise = spectral_flatness(
        np.random.default_rng(0).standard_normal(sample_rate * 5), sample_rate
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for cfg_scale in [float(c) for c in args.cfg_scales.split(",")]:
        for p, prompt in enumerate(PROMPTS):
            for seed in range(args.seeds):
                started = time.perf_counter()
                audio, _ = generate(
                    model, config, prompt, args.seconds, seed, args.steps, cfg_scale=cfg_scale
                )
                clip = audio[0].numpy()
                path = out / f"prompt{p}_seed{seed}_cfg{cfg_scale:g}.wav"
                sf.write(path, clip, sample_rate, subtype="PCM_16")
                rows.append(
                    {
                        "cfg_scale": cfg_scale,
                        "prompt": p,
                        "seed": seed,
                        "flatness": spectral_flatness(clip, sample_rate),
                        "rms": float(np.sqrt(np.mean(clip**2))),
                        "seconds": time.perf_counter() - started,
                        "wav": str(path),
                    }
                )
                print(
                    f"cfg {cfg_scale:g} prompt {p} seed {seed}: flatness "
                    f"{rows[-1]['flatness']:.4f}, rms {rows[-1]['rms']:.3f}, "
                    f"{rows[-1]['seconds']:.1f} s",
                    flush=True,
                )
    print(
        f"training tracks: flatness median {np.median(train):.4f} "
        f"(min {min(train):.4f}, max {max(train):.4f}); white noise {noise:.4f}"
    )
    for cfg_scale in sorted({r["cfg_scale"] for r in rows}):
        values = [r["flatness"] for r in rows if r["cfg_scale"] == cfg_scale]
        print(
            f"generations at cfg {cfg_scale:g}: flatness median {np.median(values):.4f} "
            f"(min {min(values):.4f}, max {max(values):.4f})"
        )
    (out / "audio_quality.json").write_text(
        json.dumps({"rows": rows, "train_flatness": train, "white_noise": noise}, indent=1)
    )


if __name__ == "__main__":
    main()
