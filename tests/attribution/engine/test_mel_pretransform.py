"""The training-free log-mel pretransform: shapes, determinism, inversion, loader wiring."""

import math

import pytest
import torch

from attribution.engine.loading import build_model
from attribution.engine.mel_pretransform import (
    PRETRANSFORM_TYPE,
    LogMelConfig,
    LogMelPretransform,
    config_entry,
    make_pretransform,
)
from tests.demo.world.helpers import TINY_ARCH, tiny_config

SR = 16000
CFG = LogMelConfig(sample_rate=SR, n_fft=512, hop_length=128, n_mels=32, griffin_lim_iters=32)


def chord(seconds: float, freqs=(220.0, 277.2, 329.6), sr: int = SR) -> torch.Tensor:
    t = torch.arange(round(seconds * sr)) / sr
    return sum(0.2 * torch.sin(2 * math.pi * f * t) for f in freqs)  # (T,)


@pytest.fixture(scope="module")
def pretransform():
    return LogMelPretransform(CFG)


def test_encode_shape_scale_and_batch_independence(pretransform):
    x = torch.stack([chord(0.512), 0.5 * chord(0.512, (440.0,))])[:, None]  # (2, 1, 8192)
    z = pretransform.encode(x)
    assert z.shape == (2, 32, 8192 // 128)  # (B, n_mels, T / hop)
    assert torch.isfinite(z).all()
    single = pretransform.encode(x[1:])
    assert torch.allclose(z[1:], single, atol=1e-5)
    assert torch.equal(pretransform.encode(x), z)  # deterministic


def test_silence_maps_to_the_log_floor(pretransform):
    z = pretransform.encode(torch.zeros(1, 1, 4096))
    expected = (math.log(CFG.floor) - CFG.shift) / CFG.scale
    assert torch.allclose(z, torch.full_like(z, expected), atol=1e-5)


def test_a_tone_lights_the_mel_band_that_holds_its_frequency(pretransform):
    import torchaudio.functional as AF

    z = pretransform.encode(chord(0.512, (1000.0,))[None, None])  # (1, M, L)
    band = int(z[0, :, 10:-10].mean(dim=-1).argmax())
    centres = AF.melscale_fbanks(257, CFG.f_min, SR / 2, CFG.n_mels, SR, norm="slaney").argmax(0)
    freq_of_bin = centres.float() * SR / 512
    assert abs(float(freq_of_bin[band]) - 1000.0) < 250.0


def test_decode_gives_audio_whose_spectrogram_matches(pretransform):
    x = chord(0.512)[None, None]  # (1, 1, 8192)
    z = pretransform.encode(x)
    audio = pretransform.decode(z)
    assert audio.shape == x.shape
    assert torch.isfinite(audio).all()
    assert torch.equal(pretransform.decode(z), audio)  # deterministic phase start

    # Edge frames see the window's zero padding differently; compare the inner ones, by
    # mel magnitude (energy-weighted: the quiet skirts of each partial are inaudible).
    def magnitude(latents):
        return torch.exp(latents[..., 4:-4] * CFG.scale + CFG.shift)

    def relative_error(latents):
        return float((magnitude(latents) - magnitude(z)).abs().sum() / magnitude(z).sum())

    assert relative_error(pretransform.encode(audio)) < 0.2  # measured 0.11
    # what a decoder that lost the spectrum would score
    assert relative_error(pretransform.encode(0.2 * torch.randn_like(x))) > 1.0


def test_bad_lengths_and_configs_are_refused(pretransform):
    with pytest.raises(ValueError, match="multiple of hop_length"):
        pretransform.encode(torch.zeros(1, 1, 1000))
    with pytest.raises(ValueError, match="mono"):
        LogMelConfig(sample_rate=SR, audio_channels=2)
    with pytest.raises(ValueError, match="n_fft >= hop_length"):
        LogMelConfig(sample_rate=SR, n_fft=64, hop_length=128)
    with pytest.raises(ValueError, match="positive"):
        LogMelConfig(sample_rate=SR, scale=0.0)


def test_config_entry_round_trips():
    entry = config_entry(CFG)
    assert entry["type"] == PRETRANSFORM_TYPE
    assert make_pretransform(entry, SR).cfg == CFG


def test_the_loader_plugs_it_into_a_stable_audio_tools_model():
    model = build_model(tiny_config())
    assert isinstance(model.pretransform, LogMelPretransform)
    assert model.pretransform.downsampling_ratio == TINY_ARCH.hop_length
    assert model.min_input_length == TINY_ARCH.hop_length
    assert not any(p.requires_grad for p in model.pretransform.parameters())
    # Nothing of the pretransform is stored in a checkpoint: it is a function of the config.
    assert not any(k.startswith("pretransform.") for k in model.state_dict())
    latents = model.pretransform.encode(torch.zeros(2, 1, TINY_ARCH.sample_size))
    assert latents.shape == (2, model.io_channels, TINY_ARCH.sample_size // TINY_ARCH.hop_length)
