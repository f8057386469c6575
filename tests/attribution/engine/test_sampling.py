"""Generation with stable-audio-tools' sampler: shape, duration, determinism."""

import pytest
import torch

from attribution.engine.loading import build_model
from attribution.engine.sampling import generate
from tests.demo.world.helpers import tiny_config


@pytest.fixture(scope="module")
def model_and_config():
    torch.manual_seed(0)
    config = tiny_config()
    return build_model(config).eval(), config


def test_generates_the_requested_duration_and_shape(model_and_config):
    model, config = model_and_config
    audio, sr = generate(model, config, "a chorale on the organ", 0.2, seed=1, steps=2)
    assert sr == 16000
    assert audio.shape == (1, round(0.2 * 16000))  # (C, T)
    assert torch.isfinite(audio).all() and audio.abs().max() <= 1.0


def test_same_seed_same_audio_and_global_rng_untouched(model_and_config):
    model, config = model_and_config
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, _ = generate(model, config, "a reel", 0.25, seed=5, steps=2)
    after = torch.rand(1)
    b, _ = generate(model, config, "a reel", 0.25, seed=5, steps=2)
    c, _ = generate(model, config, "a reel", 0.25, seed=6, steps=2)
    assert torch.equal(before, after)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_bad_requests_are_refused(model_and_config):
    model, config = model_and_config
    with pytest.raises(ValueError, match="seconds_total must be in"):
        generate(model, config, "x", 10.0, seed=0, steps=2)
    with pytest.raises(ValueError, match="prompt is empty"):
        generate(model, config, "  ", 0.1, seed=0, steps=2)


def test_sampling_defaults_are_the_models_own():
    from attribution.engine.sampling import STABLE_AUDIO_OPEN, SamplingConfig, sampling_defaults
    from tests.attribution.stable_audio_open import stable_audio_open_config

    assert sampling_defaults(tiny_config()) == SamplingConfig()  # the demo's log_mel model
    published = stable_audio_open_config()
    assert sampling_defaults(published) == STABLE_AUDIO_OPEN
    assert STABLE_AUDIO_OPEN.steps == 100 and STABLE_AUDIO_OPEN.sampler_type == "dpmpp-3m-sde"
    tuned = {**published, "sampling": {"steps": 250, "cfg_scale": 9.0}}
    assert sampling_defaults(tuned).steps == 250 and sampling_defaults(tuned).sigma_max == 500.0
    with pytest.raises(ValueError, match="unknown key"):
        sampling_defaults({**published, "sampling": {"stepz": 3}})


def _spectral_distance(a, b):
    window = torch.hann_window(256)
    spectra = [torch.stft(x[0], 256, window=window, return_complex=True).abs() for x in (a, b)]
    return (spectra[0].log1p() - spectra[1].log1p()).abs().mean()


def _tone(seconds, freq, sample_rate=16000):
    time = torch.arange(round(seconds * sample_rate)) / sample_rate
    return (0.5 * torch.sin(2 * torch.pi * freq * time))[None]  # (1, T)


def test_a_reference_steers_the_generation_more_at_a_lower_noise_level(model_and_config):
    model, config = model_and_config
    reference = _tone(0.25, 440.0)
    kwargs = {"seed": 3, "steps": 4}
    low, _ = generate(
        model, config, "a reel", 0.25, init_audio=(reference, 16000), init_noise_level=0.1, **kwargs
    )
    high, _ = generate(
        model,
        config,
        "a reel",
        0.25,
        init_audio=(reference, 16000),
        init_noise_level=40.0,
        **kwargs,
    )
    unconditioned, _ = generate(model, config, "a reel", 0.25, **kwargs)
    other, _ = generate(
        model,
        config,
        "a reel",
        0.25,
        init_audio=(_tone(0.25, 97.0), 16000),
        init_noise_level=0.1,
        **kwargs,
    )
    assert low.shape == high.shape == unconditioned.shape == (1, 4000)
    # A low level keeps the reference: its spectrum is closer to the reference's than the
    # result of another reference is (the demo's log-mel decoder does not keep phase).
    assert _spectral_distance(low, reference) < _spectral_distance(other, reference)
    assert _spectral_distance(low, reference) < _spectral_distance(high, reference)
    assert not torch.equal(low, unconditioned) and not torch.equal(low, high)
    again, _ = generate(
        model, config, "a reel", 0.25, init_audio=(reference, 16000), init_noise_level=0.1, **kwargs
    )
    assert torch.equal(low, again)


def test_bad_references_are_refused(model_and_config):
    model, config = model_and_config
    reference = (_tone(0.2, 220.0), 16000)
    with pytest.raises(ValueError, match="needs init_noise_level"):
        generate(model, config, "x", 0.1, seed=0, steps=2, init_audio=reference)
    with pytest.raises(ValueError, match="init_noise_level must be in"):
        generate(
            model, config, "x", 0.1, seed=0, steps=2, init_audio=reference, init_noise_level=99
        )
    with pytest.raises(ValueError, match="needs init_audio"):
        generate(model, config, "x", 0.1, seed=0, steps=2, init_noise_level=1.0)
    with pytest.raises(ValueError, match="non-empty"):
        generate(
            model,
            config,
            "x",
            0.1,
            seed=0,
            steps=2,
            init_audio=(torch.zeros(1, 0), 16000),
            init_noise_level=1.0,
        )
