"""Same checkpoint, query and config give bit-identical scores on CPU in two processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

CHILD = """
import json, sys
import torch
torch.set_num_threads(1)
from tests.attribution.engine.conftest import build_tiny, make_items
from attribution.engine.artifacts import ArtifactStore
from attribution.engine.config import EngineConfig
from attribution.engine.items import TrainingSet, query_from_training_item
from attribution.engine.methods import unlearning_scores

model = build_tiny(seed=3)
train_set = TrainingSet.from_items(make_items(5, seed=4))
cfg = EngineConfig(unlearn_timesteps=16, score_timesteps=3, fisher_timesteps=2, batch_size=4)
scores = unlearning_scores(
    model, query_from_training_item(train_set.items[1]), train_set, cfg,
    store=ArtifactStore(sys.argv[1]),
)
print(json.dumps({"tau_hex": [float(x).hex() for x in scores.tau],
                  "checkpoint": model.checkpoint_sha256}))
"""


def run_child(artifact_dir: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONHASHSEED": "random"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(artifact_dir)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_processes_give_bit_identical_scores(tmp_path):
    # separate artifact folders: each process computes its own Fisher and theta0 losses
    first, second = run_child(tmp_path / "a"), run_child(tmp_path / "b")
    assert first["checkpoint"] == second["checkpoint"]
    assert first["tau_hex"] == second["tau_hex"]
    assert any(float.fromhex(x) != 0.0 for x in first["tau_hex"])
