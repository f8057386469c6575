from decimal import Decimal

import pytest

from catalog.audio import AudioError, audio_inspect
from tests.catalog.factories import tone_wav_bytes

LIMITS = {"max_bytes": 10_000_000, "max_seconds": 60}


@pytest.mark.parametrize("fmt", ["WAV", "FLAC", "OGG"])
def test_decodes_and_measures(tmp_path, fmt):
    path = tmp_path / f"tone.{fmt.lower()}"
    path.write_bytes(tone_wav_bytes(seconds=1.5, sample_rate=44100, channels=2, fmt=fmt))
    info = audio_inspect(path, **LIMITS)
    assert info.sample_rate == 44100
    assert info.channels == 2
    assert info.duration_seconds == Decimal("1.500")
    assert info.format == fmt
    assert len(info.sha256) == 64


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty"),
        (b"ID3\x03\x00 this is an mp3 tag followed by nothing", "undecodable"),
        (tone_wav_bytes(amplitude=0.0), "silent"),
        (tone_wav_bytes(amplitude=0.0005), "silent"),  # about -66 dBFS
    ],
    ids=["empty", "garbage", "digital-silence", "near-silence"],
)
def test_refuses_unusable_audio(tmp_path, content, code):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as excinfo:
        audio_inspect(path, **LIMITS)
    assert excinfo.value.code == code


def test_quiet_but_audible_is_accepted(tmp_path):
    path = tmp_path / "quiet.wav"
    path.write_bytes(tone_wav_bytes(amplitude=0.01))  # -40 dBFS
    assert audio_inspect(path, **LIMITS).peak == pytest.approx(0.01, rel=0.01)


def test_truncated_wav_is_refused_or_measured_honestly(tmp_path):
    data = tone_wav_bytes(seconds=1.0)
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 2])
    try:
        info = audio_inspect(path, **LIMITS)
    except AudioError as exc:
        assert exc.code in {"undecodable", "empty"}
    else:  # libsndfile may read what is there: then the duration must say so
        assert info.duration_seconds < Decimal("0.6")


def test_limits(tmp_path):
    path = tmp_path / "tone.wav"
    path.write_bytes(tone_wav_bytes(seconds=2.0))
    with pytest.raises(AudioError) as excinfo:
        audio_inspect(path, max_bytes=10_000_000, max_seconds=1)
    assert excinfo.value.code == "too_long"
    with pytest.raises(AudioError) as excinfo:
        audio_inspect(path, max_bytes=100, max_seconds=60)
    assert excinfo.value.code == "too_large"
    with pytest.raises(AudioError) as excinfo:
        audio_inspect(tmp_path / "missing.wav", **LIMITS)
    assert excinfo.value.code == "missing"
