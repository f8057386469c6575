"""Train-to-Train self-influence (Sec. 3.2) on a tiny model."""

import numpy as np

from attribution.engine.artifacts import ArtifactStore
from attribution.engine.config import EngineConfig
from attribution.engine.items import TrainingSet
from attribution.engine.self_influence import kmeans_targets, logmel_embeddings, self_influence

from .conftest import SAMPLE_RATE, make_items


def test_unlearned_training_item_ranks_first_for_a_handful_of_targets(tiny_model):
    train_set = TrainingSet.from_items(make_items(10))
    embeddings = logmel_embeddings(train_set, SAMPLE_RATE)
    assert embeddings.shape[0] == 10
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-6)
    targets = kmeans_targets(embeddings, 4, seed=0)
    assert len(set(targets)) == 4
    # The step this untrained tiny model ranks its targets first at is eta = 1e-6; with the
    # default explicit 1/N (eta = lr / N) and N = 10 that is lr = 1e-5.
    cfg = EngineConfig(
        lr=1e-5, unlearn_timesteps=32, score_timesteps=4, fisher_timesteps=2, batch_size=8
    )
    report = self_influence(
        tiny_model, train_set, cfg, targets, embeddings, k=3, store=ArtifactStore(None)
    )
    assert [t.rank for t in report.targets] == [1, 1, 1, 1]
    assert report.mean_rank == 1.0 and report.k == 3
    assert all(-1.0 <= t.sim_topk <= 1.0 and -1.0 <= t.sim_botk <= 1.0 for t in report.targets)
    # at rank 1 the runner-up is another track, scored below the target
    for result in report.targets:
        assert result.runner_up != result.position and 0 <= result.runner_up < 10
        assert result.tau_target > result.tau_runner_up
