"""The trainer on a tiny config: one step runs, a seed fixes the run, NaN stops it."""

import math
from dataclasses import replace

import pytest
import torch

from attribution.engine.loading import build_model
from demo.world import training
from demo.world.model_config import TrainingConfig
from tests.demo.world.helpers import TINY_ARCH, tiny_config

METADATA = [
    {"prompt": "chorale by Bach, organ", "seconds_start": 0, "seconds_total": 1},
    {"prompt": "fiddle tune, fiddle", "seconds_start": 0, "seconds_total": 1},
    {"prompt": "madrigal, choir", "seconds_start": 0, "seconds_total": 1},
]


def _audio(n=3):
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(n, 1, TINY_ARCH.sample_size, generator=g)  # (N, 1, S)
    x[0, :, 2000:] = 0  # a short track, zero-padded
    return x


def _run(steps=1, seed=0, audio=None):
    torch.manual_seed(seed)
    model = build_model(tiny_config())
    cfg = replace(TrainingConfig(), steps=steps, batch_size=2, warmup_steps=1, seed=seed)
    result = training.train(model, _audio() if audio is None else audio, METADATA, cfg)
    return model, result


def test_one_training_step_runs_and_returns_a_finite_loss():
    model, result = _run(steps=1)
    assert result.steps == 1 and len(result.losses) == 1 and math.isfinite(result.losses[0])
    assert not model.training


def test_a_seed_fixes_the_losses_and_the_weights():
    m1, r1 = _run(steps=3, seed=7)
    m2, r2 = _run(steps=3, seed=7)
    _, r3 = _run(steps=3, seed=8)
    assert r1.losses == r2.losses
    assert r1.losses != r3.losses
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_the_saved_dit_weights_are_the_ema_not_the_online_weights():
    torch.manual_seed(0)
    model = build_model(tiny_config())
    cfg = replace(TrainingConfig(), steps=4, batch_size=2, warmup_steps=1)
    online = {}

    def grab(step, total, loss):
        if step == total:
            online.update({k: v.clone() for k, v in model.model.state_dict().items()})

    training.train(model, _audio(), METADATA, cfg, on_step=grab)
    final = model.model.state_dict()
    assert any(
        not torch.equal(final[k], online[k]) for k in online if final[k].dtype.is_floating_point
    )


def test_ema_follows_ema_pytorch_warmup():
    ema = training.EMA(torch.nn.Linear(2, 2), beta=0.9999, power=0.75)
    decays = []
    for _ in range(5):
        ema.updates += 1
        decays.append(ema.decay())
    assert decays[:2] == [0.0, 0.0]  # first updates copy the weights
    assert decays[2] == pytest.approx(1 - 2**-0.75)


def test_a_nan_loss_stops_training_with_a_clear_error():
    audio = _audio()
    audio[:, :, 100] = float("nan")
    with pytest.raises(training.TrainingDivergedError, match="loss became nan at step 1"):
        _run(steps=2, audio=audio)


def test_evaluation_does_not_depend_on_batch_size():
    from demo.world.build import Track

    torch.manual_seed(0)
    model = build_model(tiny_config()).eval()
    tracks = [
        Track(
            f"t{i}",
            None,
            "x",
            "x.wav",
            "0",
            m["prompt"],
            0,
            1,
            0.5,
            "c",
            "k",
            "g",
            "e",
            "C major",
            "4/4",
            100,
            "w",
            "p",
        )
        for i, m in enumerate(METADATA)
    ]
    a = training.evaluate(model, _audio(), tracks, seed=0, batch_size=1)
    b = training.evaluate(model, _audio(), tracks, seed=0, batch_size=3)
    assert a.shape == (3,)
    assert torch.allclose(torch.from_numpy(a), torch.from_numpy(b), atol=1e-5)
