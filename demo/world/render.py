"""Score excerpt -> General MIDI (pretty_midi) -> mono audio through the bundled TimGM6mb.sf2.

Synthesis runs offline with tinysoundfont: a fresh synthesizer per track, events applied at
exact sample positions, so the same excerpt always renders to the same samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from demo.world.corpus import Work

SAMPLE_RATE = 16000
TARGET_RMS = 0.1  # loudness every track is normalised to (about -20 dBFS)
PEAK_LIMIT = 0.95
FADE_IN_S = 0.005
FADE_OUT_S = 0.08
RELEASE_S = 0.4  # audio kept after the last note-off, for the instrument's release


@dataclass(frozen=True)
class Ensemble:
    name: str  # what the caption says, e.g. "string quartet"
    programs: tuple[int, ...]  # General MIDI programs, top part first; the last repeats


POLYPHONIC_ENSEMBLES: tuple[Ensemble, ...] = (
    Ensemble("string quartet", (40, 40, 41, 42)),
    Ensemble("church organ", (19,)),
    Ensemble("piano", (0,)),
    Ensemble("choir", (52,)),
    Ensemble("brass quartet", (56, 56, 57, 58)),
    Ensemble("woodwind quartet", (73, 68, 71, 70)),
    Ensemble("harpsichord", (6,)),
)
SOLO_ENSEMBLES: tuple[Ensemble, ...] = (
    Ensemble("fiddle", (40,)),
    Ensemble("flute", (73,)),
    Ensemble("accordion", (21,)),
    Ensemble("tin whistle", (78,)),
    Ensemble("piano", (0,)),
    Ensemble("harp", (46,)),
    Ensemble("nylon guitar", (24,)),
)


@dataclass(frozen=True)
class Excerpt:
    """What is rendered for one track: a work, its instrumentation, tempo and length."""

    track_id: str
    work: Work
    ensemble: Ensemble
    tempo_qpm: int
    max_seconds: float  # the audio is cut here (it may end earlier with the music)


def stable_fraction(*keys: object) -> float:
    """A number in [0, 1) fixed by ``keys``: randomness keyed by what it belongs to."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def plan_excerpt(work: Work, *, track_id: str, max_seconds: float, seed: int) -> Excerpt:
    """Pick instrumentation, tempo and length for ``work``, deterministic in the track id.

    Lengths: a quarter of the tracks last 1.5-3 s, the rest 3 s up to ``max_seconds``, so
    many are shorter than the model's window and get zero-padded (Sec. 2.3 of the paper).
    """
    c = work.collection
    ensembles = (
        SOLO_ENSEMBLES
        if c.ensemble_kind == "solo" or work.part_count == 1
        else POLYPHONIC_ENSEMBLES
    )
    ensemble = ensembles[int(stable_fraction(seed, track_id, "ensemble") * len(ensembles))]
    if work.tempo_qpm and 40 <= work.tempo_qpm <= 240:
        tempo = round(work.tempo_qpm)
    else:
        lo, hi = c.tempo_range
        tempo = lo + int(stable_fraction(seed, track_id, "tempo") * (hi - lo + 1))
    u = stable_fraction(seed, track_id, "length")
    seconds = 1.5 + u / 0.25 * 1.5 if u < 0.25 else 3.0 + (u - 0.25) / 0.75 * (max_seconds - 3.0)
    return Excerpt(
        track_id=track_id,
        work=work,
        ensemble=ensemble,
        tempo_qpm=tempo,
        max_seconds=round(min(seconds, max_seconds), 3),
    )


def to_midi(excerpt: Excerpt):
    """The excerpt as a ``pretty_midi.PrettyMIDI``: one instrument per part, cut at max_seconds."""
    import pretty_midi

    seconds_per_ql = 60.0 / excerpt.tempo_qpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=float(excerpt.tempo_qpm))
    instruments: dict[int, pretty_midi.Instrument] = {}
    programs = excerpt.ensemble.programs
    first_onset = min(n.onset_ql for n in excerpt.work.notes)  # skip leading rests
    for note in excerpt.work.notes:
        start = (note.onset_ql - first_onset) * seconds_per_ql
        if start >= excerpt.max_seconds - 0.05:
            continue
        end = min(start + note.duration_ql * seconds_per_ql, excerpt.max_seconds)
        if note.part not in instruments:
            program = programs[min(note.part, len(programs) - 1)]
            instruments[note.part] = pretty_midi.Instrument(
                program=program, name=f"part {note.part + 1}"
            )
        velocity = max(1, min(127, note.velocity))
        instruments[note.part].notes.append(
            pretty_midi.Note(velocity=velocity, pitch=note.pitch, start=start, end=end)
        )
    for part in sorted(instruments):
        pm.instruments.append(instruments[part])
    return pm


def soundfont_path() -> Path:
    """pretty_midi's bundled General MIDI soundfont (TimGM6mb.sf2)."""
    import pretty_midi

    path = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall pretty_midi")
    return path


@cache
def _soundfont_bytes() -> bytes:
    return soundfont_path().read_bytes()


def synthesize(
    pm, *, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None
) -> np.ndarray:
    """Render a PrettyMIDI to mono float32 audio with tinysoundfont. Returns (T,)."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=sample_rate)
    sfid = synth.sfload(_soundfont_bytes())
    events: list[tuple[int, int, int, int, int]] = []  # (sample, order, channel, pitch, velocity)
    channels = [c for c in range(16) if c != 9]  # channel 10 is drums in General MIDI
    end_time = 0.0
    for index, inst in enumerate(pm.instruments):
        channel = channels[index % len(channels)]
        synth.program_select(channel, sfid, 0, inst.program)
        for n in inst.notes:
            events.append((round(n.start * sample_rate), 1, channel, n.pitch, n.velocity))
            events.append((round(n.end * sample_rate), 0, channel, n.pitch, 0))
            end_time = max(end_time, n.end)
    events.sort()
    total_seconds = end_time + RELEASE_S
    if max_seconds is not None:
        total_seconds = min(total_seconds, max_seconds)
    total = round(total_seconds * sample_rate)
    chunks: list[np.ndarray] = []
    position = 0
    for sample, kind, channel, pitch, velocity in events:
        sample = min(sample, total)
        if sample > position:
            chunks.append(np.frombuffer(synth.generate(sample - position), dtype=np.float32))
            position = sample
        if kind == 1:
            synth.noteon(channel, pitch, velocity)
        else:
            synth.noteoff(channel, pitch)
    if total > position:
        chunks.append(np.frombuffer(synth.generate(total - position), dtype=np.float32))
    stereo = np.concatenate(chunks).reshape(-1, 2)  # (T, 2) interleaved
    return stereo.mean(axis=1).astype(np.float32)


def finish(audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Loudness-normalise, limit the peak, and fade both ends. (T,) -> (T,)."""
    audio = audio.astype(np.float64)
    rms = float(np.sqrt(np.mean(audio**2))) if audio.size else 0.0
    if rms <= 1e-6:
        raise ValueError("rendered audio is silent")
    audio = audio * (TARGET_RMS / rms)
    peak = float(np.max(np.abs(audio)))
    if peak > PEAK_LIMIT:
        audio = audio * (PEAK_LIMIT / peak)
    fade_in = min(len(audio), int(FADE_IN_S * sample_rate))
    fade_out = min(len(audio), int(FADE_OUT_S * sample_rate))
    audio[:fade_in] *= np.linspace(0.0, 1.0, fade_in, endpoint=False)
    audio[len(audio) - fade_out :] *= np.linspace(1.0, 0.0, fade_out)
    return audio.astype(np.float32)


def render_excerpt(excerpt: Excerpt, *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The excerpt's audio: mono float32 in [-1, 1], at most ``max_seconds`` long. Returns (T,)."""
    pm = to_midi(excerpt)
    if not pm.instruments:
        raise ValueError(f"{excerpt.track_id}: no notes in the first {excerpt.max_seconds} s")
    return finish(
        synthesize(pm, sample_rate=sample_rate, max_seconds=excerpt.max_seconds),
        sample_rate=sample_rate,
    )


def write_wav(path: Path, audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE) -> None:
    """Mono 16-bit PCM WAV, written atomically."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    sf.write(str(tmp), audio, sample_rate, subtype="PCM_16", format="WAV")
    tmp.replace(path)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """(audio (T,) float32, sample rate) of a mono WAV."""
    import soundfile as sf

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)  # (T, C)
    return audio.mean(axis=1), sr
