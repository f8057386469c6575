"""Real compositions from music21's bundled corpus, parsed once and cached as note lists.

Parsing scores with music21 is the slow part of building the demo world, so each
corpus file is parsed once and its works are cached as JSON note lists under
``<cache_dir>/scores/``. The cache key holds the music21 version and the file's size, so an
upgraded corpus is re-parsed.

A *work* is one piece: a Score file gives one, an ABC opus (O'Neill's, Essen) gives many.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

CACHE_FORMAT = 2
OPUS_TAKE = 12  # tunes taken from one ABC opus file


@dataclass(frozen=True)
class Collection:
    """A folder of music21's corpus and what the demo says about it."""

    folder: str
    composer: str  # used when the score's own metadata names no composer
    collection: str  # human name of the collection, e.g. "Bach chorales"
    genre: str  # e.g. "chorale", "fiddle tune"
    weight: float  # share of the catalog drawn from this folder
    tempo_range: tuple[int, int]  # quarter-note BPM when the score gives none
    max_file_kb: int  # larger files are skipped: parsing them costs too much
    ensemble_kind: str  # "polyphonic" or "solo": which instrumentations fit


COLLECTIONS: tuple[Collection, ...] = (
    Collection(
        "bach",
        "Johann Sebastian Bach",
        "Bach chorales",
        "chorale",
        0.32,
        (66, 96),
        30,
        "polyphonic",
    ),
    Collection(
        "ryansMammoth",
        "Traditional",
        "Ryan's Mammoth Collection",
        "fiddle tune",
        0.25,
        (150, 200),
        4,
        "solo",
    ),
    Collection(
        "palestrina",
        "Giovanni Pierluigi da Palestrina",
        "Palestrina masses",
        "Renaissance mass",
        0.08,
        (100, 140),
        14,
        "polyphonic",
    ),
    Collection(
        "monteverdi",
        "Claudio Monteverdi",
        "Monteverdi madrigals",
        "madrigal",
        0.1,
        (90, 130),
        20,
        "polyphonic",
    ),
    Collection(
        "oneills1850",
        "Traditional",
        "O'Neill's Music of Ireland",
        "Irish folk tune",
        0.1,
        (140, 190),
        20,
        "solo",
    ),
    Collection(
        "trecento",
        "Anonymous (Trecento)",
        "Trecento polyphony",
        "medieval ballata",
        0.05,
        (90, 130),
        200,
        "polyphonic",
    ),
    Collection(
        "mozart",
        "Wolfgang Amadeus Mozart",
        "Mozart string quartets",
        "classical quartet",
        0.03,
        (100, 150),
        40,
        "polyphonic",
    ),
    Collection(
        "haydn",
        "Joseph Haydn",
        "Haydn string quartets",
        "classical quartet",
        0.02,
        (100, 150),
        40,
        "polyphonic",
    ),
    Collection(
        "beethoven",
        "Ludwig van Beethoven",
        "Beethoven string quartets",
        "classical quartet",
        0.01,
        (80, 140),
        40,
        "polyphonic",
    ),
    Collection(
        "josquin",
        "Josquin des Prez",
        "Josquin masses",
        "Renaissance mass",
        0.02,
        (100, 140),
        60,
        "polyphonic",
    ),
)
COLLECTIONS_BY_FOLDER = {c.folder: c for c in COLLECTIONS}


@dataclass(frozen=True)
class Note:
    part: int
    pitch: int  # MIDI key
    onset_ql: float  # quarter lengths from the start of the work
    duration_ql: float
    velocity: int


@dataclass(frozen=True)
class Work:
    """One parsed piece: the notes and the metadata a caption is built from."""

    work_id: str  # stable id: "<folder>/<file stem>[#<tune number>]"
    corpus_path: str  # path relative to music21's corpus folder
    folder: str
    title: str
    composer: str
    key: str  # e.g. "G major"
    meter: str  # e.g. "3/4"
    tempo_qpm: float | None  # from the score's metronome mark, if any
    part_count: int
    notes: tuple[Note, ...]

    @property
    def collection(self) -> Collection:
        return COLLECTIONS_BY_FOLDER[self.folder]

    @property
    def credited_composer(self) -> str:
        """The collection's canonical composer name; score metadata spells names many ways
        ("J.S. Bach", "Palestrina, Giovanni Perluigi da"), so it is used only for anthologies."""
        if self.collection.composer.startswith("Anonymous") and self.composer:
            return self.composer
        return self.collection.composer


def corpus_root() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


def candidate_files(collection: Collection) -> list[Path]:
    """Files of one collection small enough to parse quickly, in a fixed order."""
    folder = corpus_root() / collection.folder
    suffixes = {".mxl", ".xml", ".krn", ".abc", ".musicxml"}
    files = [
        p
        for p in sorted(folder.rglob("*"))
        if p.suffix in suffixes
        and p.is_file()
        and p.stat().st_size <= collection.max_file_kb * 1024
    ]
    return files


def _cache_path(cache_dir: Path, corpus_file: Path) -> Path:
    import music21

    rel = corpus_file.relative_to(corpus_root()).as_posix()
    key = f"{CACHE_FORMAT}|{music21.__version__}|{rel}|{corpus_file.stat().st_size}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    return cache_dir / "scores" / f"{digest}.json"


def _first_or_none(stream, cls):
    for el in stream.recurse().getElementsByClass(cls):
        return el
    return None


def _work_from_score(
    score, *, corpus_file: Path, collection: Collection, number: int | None
) -> Work | None:
    """Note list and metadata of one music21 Score (None when it has no notes)."""
    from music21 import key as m21key
    from music21 import meter, tempo

    rel = corpus_file.relative_to(corpus_root()).as_posix()
    stem = corpus_file.stem
    work_id = f"{collection.folder}/{stem}" + (f"#{number}" if number is not None else "")

    parts = list(score.parts) or [score]
    notes: list[Note] = []
    for part_index, part in enumerate(parts):
        for n in part.flatten().stripTies().notes:
            duration = float(n.duration.quarterLength)
            if duration <= 0:  # grace notes
                continue
            velocity = n.volume.velocity if n.volume.velocity is not None else 80
            for p in n.pitches:
                notes.append(
                    Note(
                        part=part_index,
                        pitch=int(p.midi),
                        onset_ql=float(n.offset),  # offset in the flattened part
                        duration_ql=duration,
                        velocity=int(velocity),
                    )
                )
    if not notes:
        return None
    notes.sort(key=lambda x: (x.onset_ql, x.part, x.pitch))

    md = score.metadata
    title = (md.title if md is not None and md.title else None) or (
        md.movementName if md is not None and md.movementName else None
    )
    title = (title or stem).strip()
    composer = (md.composer if md is not None and md.composer else "") or collection.composer

    key_obj = _first_or_none(score, m21key.Key)
    if key_obj is None:
        try:
            key_obj = score.analyze("key")
        except Exception:  # music21 raises several types on odd scores
            key_obj = None
    key_name = (
        f"{key_obj.tonic.name.replace('-', ' flat')} {key_obj.mode}" if key_obj else "C major"
    )

    ts = _first_or_none(score, meter.TimeSignature)
    mm = _first_or_none(score, tempo.MetronomeMark)
    qpm = None
    if mm is not None:
        try:
            qpm = float(mm.getQuarterBPM()) if mm.getQuarterBPM() else None
        except Exception:
            qpm = None
    return Work(
        work_id=work_id,
        corpus_path=rel,
        folder=collection.folder,
        title=title,
        composer=composer.strip(),
        key=key_name,
        meter=ts.ratioString if ts is not None else "4/4",
        tempo_qpm=qpm,
        part_count=len(parts),
        notes=tuple(notes),
    )


def parse_file(corpus_file: Path, collection: Collection) -> list[Work]:
    """Parse one corpus file into its works (uncached)."""
    from music21 import converter, stream

    parsed = converter.parse(str(corpus_file))
    if isinstance(parsed, stream.Opus):
        scores = [(s, i + 1) for i, s in enumerate(parsed.scores)]
    else:
        scores = [(parsed, None)]
    works = []
    for score, number in scores:
        work = _work_from_score(
            score, corpus_file=corpus_file, collection=collection, number=number
        )
        if work is not None:
            works.append(work)
    return works


def _work_to_json(w: Work) -> dict:
    d = {k: getattr(w, k) for k in Work.__dataclass_fields__ if k != "notes"}
    d["notes"] = [[n.part, n.pitch, n.onset_ql, n.duration_ql, n.velocity] for n in w.notes]
    return d


def _work_from_json(d: dict) -> Work:
    notes = tuple(Note(*row) for row in d.pop("notes"))
    return Work(notes=notes, **d)


def load_works(corpus_file: Path, collection: Collection, cache_dir: Path) -> list[Work]:
    """Works of one corpus file, from the cache when it holds them."""
    path = _cache_path(cache_dir, corpus_file)
    if path.exists():
        try:
            return [_work_from_json(d) for d in json.loads(path.read_text())]
        except (ValueError, TypeError, KeyError):
            path.unlink()  # a torn write from an interrupted run: parse again
    works = parse_file(corpus_file, collection)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([_work_to_json(w) for w in works]))
    tmp.replace(path)
    return works


def quotas(total: int) -> dict[str, int]:
    """Split ``total`` works over the collections by weight (largest remainder, fixed tie-break)."""
    weight_sum = sum(c.weight for c in COLLECTIONS)
    exact = {c.folder: total * c.weight / weight_sum for c in COLLECTIONS}
    out = {f: int(v) for f, v in exact.items()}
    rest = total - sum(out.values())
    order = sorted(exact, key=lambda f: (-(exact[f] - out[f]), f))
    for f in order[:rest]:
        out[f] += 1
    return out


def select_works(
    total: int,
    *,
    cache_dir: Path,
    seed: int,
    min_notes: int = 8,
    progress=None,
) -> list[Work]:
    """``total`` distinct works drawn over the collections by weight, deterministic in ``seed``.

    Files of each collection are visited in a seeded order and parsed (or read from the
    cache) until its quota is filled; an ABC opus contributes at most ``OPUS_TAKE`` tunes so
    that no single file dominates. A collection that runs out passes its remainder to the next ones.
    ``progress(n)`` is called with the number of works gained after each file.
    """
    wanted = quotas(total)
    chosen: list[Work] = []
    carry = 0
    for collection in COLLECTIONS:
        need = wanted[collection.folder] + carry
        files = candidate_files(collection)
        random.Random(f"{seed}:{collection.folder}").shuffle(files)  # noqa: S311 - not security
        got: list[Work] = []
        for f in files:
            if len(got) >= need:
                break
            works = [w for w in load_works(f, collection, cache_dir) if len(w.notes) >= min_notes]
            take = works[:OPUS_TAKE] if len(works) > 1 else works
            take = take[: need - len(got)]
            got.extend(take)
            if progress is not None:
                progress(len(take))
        carry = need - len(got)
        chosen.extend(got)
    if carry:
        raise ValueError(f"music21's corpus gave only {len(chosen)} usable works, {total} wanted")
    return chosen
