"""Score -> MIDI -> audio: length, sample rate, loudness, determinism, and the parse cache."""

import numpy as np
import pytest

from demo.world import corpus, render
from tests.demo.world.helpers import scale_work


def test_rendered_excerpt_has_the_planned_length_rate_and_is_not_silent(tmp_path):
    work = scale_work(parts=2, bars=4)  # 16 quarter notes at 120 BPM = 8 s of music
    excerpt = render.plan_excerpt(work, track_id="t1", max_seconds=3.0, seed=0)
    audio = render.render_excerpt(excerpt)  # (T,)
    assert audio.ndim == 1
    assert len(audio) == pytest.approx(excerpt.max_seconds * render.SAMPLE_RATE, abs=2)
    assert np.sqrt(np.mean(audio**2)) > 0.05  # normalised to about -20 dBFS
    assert np.abs(audio).max() <= render.PEAK_LIMIT + 1e-6

    path = tmp_path / "t1.wav"
    render.write_wav(path, audio)
    back, sr = render.read_wav(path)
    assert sr == 16000
    assert len(back) == len(audio)
    assert np.abs(back - audio).max() < 1e-4  # 16-bit PCM
    import soundfile as sf

    info = sf.info(str(path))
    assert (info.channels, info.subtype, info.format) == (1, "PCM_16", "WAV")


def test_short_music_ends_with_its_release_not_at_max_seconds():
    work = scale_work(parts=1, bars=1)  # 4 quarter notes at 120 BPM = 2 s
    excerpt = render.plan_excerpt(work, track_id="short", max_seconds=6.0, seed=0)
    audio = render.render_excerpt(excerpt)
    expected = min(2.0 + render.RELEASE_S, excerpt.max_seconds)
    assert len(audio) / render.SAMPLE_RATE == pytest.approx(expected, abs=0.01)


def test_rendering_is_deterministic_and_depends_on_the_instrumentation():
    work = scale_work()
    excerpt = render.plan_excerpt(work, track_id="t1", max_seconds=2.0, seed=0)
    a = render.render_excerpt(excerpt)
    b = render.render_excerpt(excerpt)
    assert np.array_equal(a, b)
    other = next(e for e in render.POLYPHONIC_ENSEMBLES if e != excerpt.ensemble)
    from dataclasses import replace

    c = render.render_excerpt(replace(excerpt, ensemble=other))
    n = min(len(a), len(c))
    assert not np.allclose(a[:n], c[:n])


def test_an_excerpt_without_notes_is_refused():
    work = scale_work()
    from dataclasses import replace

    excerpt = render.plan_excerpt(
        replace(work, notes=work.notes[:0] + work.notes[-1:]), track_id="x", max_seconds=2.0, seed=0
    )
    empty = replace(excerpt, max_seconds=0.01)
    with pytest.raises(ValueError, match="no notes"):
        render.render_excerpt(empty)


def test_a_real_chorale_is_parsed_once_then_read_from_the_cache(tmp_path):
    bach = corpus.COLLECTIONS_BY_FOLDER["bach"]
    path = corpus.corpus_root() / "bach" / "bwv66.6.mxl"
    works = corpus.load_works(path, bach, tmp_path)
    assert len(works) == 1 and len(works[0].notes) > 50
    assert works[0].part_count == 4 and works[0].meter == "4/4"
    cached = list((tmp_path / "scores").glob("*.json"))
    assert len(cached) == 1
    again = corpus.load_works(path, bach, tmp_path)
    assert again == works
    audio = render.render_excerpt(
        render.plan_excerpt(works[0], track_id="c", max_seconds=4.0, seed=0)
    )
    assert 1.4 * 16000 <= len(audio) <= 4.0 * 16000


def test_quotas_split_the_total_exactly():
    for total in (1, 7, 300, 1000):
        q = corpus.quotas(total)
        assert sum(q.values()) == total
        assert all(v >= 0 for v in q.values())
