"""Build the demo world's catalog: select works, render tracks, write the catalog files.

Layout under ``<root>`` (``DATA_DIR/demo``)::

    catalog/rights_holders.csv, recordings.csv, ownership_shares.csv, audio/<track_id>.wav
    heldout/manifest.json, heldout/audio/<track_id>.wav   (rendered, never trained on)
    cache/scores/*.json                                    (parsed music21 scores)
    build_state.json                                       (fingerprints and content hashes)

A build is skipped when ``build_state.json`` records the same inputs (the fingerprint) and
every file it lists still has the recorded SHA-256; otherwise the catalog is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from demo.world import captions, catalog, corpus, render

BUILD_FORMAT = 1
STATE_NAME = "build_state.json"
ISRC_YEAR = 2026

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class CatalogConfig:
    root: Path  # DATA_DIR/demo
    tracks: int = 300
    heldout: int = 96  # the gap's standard error was 0.0074 with 96 (0.016 with 24)
    seed: int = 0
    max_seconds: float = 6.144  # the model's window; no track is longer
    sample_rate: int = render.SAMPLE_RATE

    def fingerprint(self) -> str:
        import music21

        inputs = {
            "format": BUILD_FORMAT,
            "tracks": self.tracks,
            "heldout": self.heldout,
            "seed": self.seed,
            "max_seconds": self.max_seconds,
            "sample_rate": self.sample_rate,
            "music21": music21.__version__,
            "soundfont_sha256": sha256_file(render.soundfont_path()),
            "code_sha256": _code_hash(),
        }
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@dataclass
class Track:
    """One rendered track, as the manifests list it."""

    track_id: str
    isrc: str | None
    title: str
    audio_path: str  # relative to the folder of the file that lists it
    sha256: str
    caption: str
    seconds_start: int  # stable-audio-tools' timing: floor of the crop offset in seconds
    seconds_total: int  # ceil of the file's length in seconds, as its PadCrop computes it
    duration_s: float  # exact length of the audio
    composer: str
    collection: str
    genre: str
    ensemble: str
    key: str
    meter: str
    tempo_qpm: int
    work_id: str
    corpus_path: str


@dataclass
class CatalogResult:
    tracks: list[Track]
    heldout: list[Track]
    reused: bool
    seconds: float = 0.0
    files: dict[str, str] = field(default_factory=dict)  # path relative to root -> sha256


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def code_hash(paths: list[Path]) -> str:
    """Hash of the syntax trees of ``paths``: a change to the code rebuilds what it made,
    reformatting or editing comments does not."""
    import ast

    h = hashlib.sha256()
    for path in paths:
        h.update(ast.dump(ast.parse(path.read_text())).encode())
    return h.hexdigest()


def _code_hash() -> str:
    """The modules whose output lands in the catalog."""
    here = Path(__file__).parent
    return code_hash(
        [here / n for n in ("corpus.py", "render.py", "captions.py", "catalog.py", "build.py")]
    )


def read_state(root: Path) -> dict:
    path = root / STATE_NAME
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}


def write_state(root: Path, state: dict) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / (STATE_NAME + ".tmp")
    tmp.write_text(json.dumps(state, indent=1, sort_keys=True))
    tmp.replace(root / STATE_NAME)


def files_intact(root: Path, files: dict[str, str]) -> bool:
    """Every listed file exists and still has its recorded SHA-256."""
    for rel, digest in files.items():
        path = root / rel
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return bool(files)


def _track_from_excerpt(
    excerpt: render.Excerpt, *, isrc: str | None, audio_path: str, sha: str, seconds: float
) -> Track:
    w = excerpt.work
    return Track(
        track_id=excerpt.track_id,
        isrc=isrc,
        title=captions.title(excerpt),
        audio_path=audio_path,
        sha256=sha,
        caption=captions.caption(excerpt),
        seconds_start=0,
        seconds_total=math.ceil(round(seconds, 6)),
        duration_s=round(seconds, 6),
        composer=w.credited_composer,
        collection=w.collection.collection,
        genre=w.collection.genre,
        ensemble=excerpt.ensemble.name,
        key=w.key,
        meter=w.meter,
        tempo_qpm=excerpt.tempo_qpm,
        work_id=w.work_id,
        corpus_path=w.corpus_path,
    )


def write_manifest(
    path: Path,
    *,
    seed: int,
    sample_rate: int,
    tracks: list[Track],
    created_at: str,
    extra: dict | None = None,
) -> None:
    """The manifest format shared by training and held-out sets; list order is the set position."""
    data = {"seed": seed, "created_at": created_at, "sample_rate": sample_rate, **(extra or {})}
    data["tracks"] = [asdict(t) for t in tracks]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def read_manifest(path: Path) -> dict:
    data = json.loads(Path(path).read_text())
    data["tracks"] = [Track(**t) for t in data["tracks"]]
    return data


def utc_now() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def build_catalog(cfg: CatalogConfig, progress: Progress | None = None) -> CatalogResult:
    """Render the catalog and held-out tracks, or reuse them when inputs and hashes match."""
    started = time.monotonic()
    root = cfg.root
    fingerprint = cfg.fingerprint()
    state = read_state(root)
    previous = state.get("catalog", {})
    if previous.get("fingerprint") == fingerprint and files_intact(root, previous.get("files", {})):
        return CatalogResult(
            tracks=[Track(**t) for t in previous["tracks"]],
            heldout=[Track(**t) for t in previous["heldout"]],
            reused=True,
            seconds=time.monotonic() - started,
            files=previous["files"],
        )

    cache_dir = root / "cache"
    total = cfg.tracks + cfg.heldout
    parsed = [0]

    def on_parsed(n: int) -> None:
        parsed[0] += n
        if progress is not None:
            progress("parse scores", parsed[0], total)

    works = corpus.select_works(total, cache_dir=cache_dir, seed=cfg.seed, progress=on_parsed)
    # Held-out works: every k-th work, so they follow the same collection mix as training.
    step = max(2, total // max(cfg.heldout, 1))
    heldout_idx = set(range(step - 1, total, step)[: cfg.heldout]) if cfg.heldout else set()
    train_works = [w for i, w in enumerate(works) if i not in heldout_idx]
    heldout_works = [w for i, w in enumerate(works) if i in heldout_idx]

    catalog_dir = root / "catalog"
    heldout_dir = root / "heldout"
    files: dict[str, str] = {}
    entries: list[catalog.CatalogEntry] = []
    holders: dict[str, catalog.RightsHolder] = {}
    designation: dict[str, int] = {}
    tracks: list[Track] = []
    heldout: list[Track] = []
    rendered = 0
    for kind, work_list, folder in (
        ("train", train_works, catalog_dir),
        ("heldout", heldout_works, heldout_dir),
    ):
        for index, work in enumerate(work_list):
            track_id = f"{'dw' if kind == 'train' else 'ho'}{index + 1:04d}"
            excerpt = render.plan_excerpt(
                work, track_id=track_id, max_seconds=cfg.max_seconds, seed=cfg.seed
            )
            audio = render.render_excerpt(excerpt, sample_rate=cfg.sample_rate)  # (T,)
            rel_audio = f"audio/{track_id}.wav"
            wav_path = folder / rel_audio
            render.write_wav(wav_path, audio, sample_rate=cfg.sample_rate)
            sha = sha256_file(wav_path)
            files[wav_path.relative_to(root).as_posix()] = sha
            seconds = len(audio) / cfg.sample_rate
            if kind == "train":
                label = catalog.LABELS[catalog.LABEL_BY_FOLDER[work.folder]]
                designation[label.registrant] = designation.get(label.registrant, 0) + 1
                isrc = catalog.make_isrc(label, ISRC_YEAR, designation[label.registrant])
                track = _track_from_excerpt(
                    excerpt, isrc=isrc, audio_path=rel_audio, sha=sha, seconds=seconds
                )
                shares, named = catalog.ownership(
                    track_id=track_id,
                    folder=work.folder,
                    composer=work.credited_composer,
                    collection_name=work.collection.collection,
                    ensemble=excerpt.ensemble.name,
                    seed=cfg.seed,
                )
                for h in named:
                    holders.setdefault(h.legal_name, h)
                entries.append(
                    catalog.CatalogEntry(
                        track_id=track_id,
                        isrc=isrc,
                        iswc=catalog.make_iswc(len(entries) + 1),
                        title=track.title,
                        audio_path=rel_audio,
                        shares=tuple(shares),
                    )
                )
                tracks.append(track)
            else:
                heldout.append(
                    _track_from_excerpt(
                        excerpt, isrc=None, audio_path=rel_audio, sha=sha, seconds=seconds
                    )
                )
            rendered += 1
            if progress is not None:
                progress("render", rendered, total)

    for path in catalog.write_catalog(catalog_dir, entries, holders):
        files[path.relative_to(root).as_posix()] = sha256_file(path)
    manifest_path = heldout_dir / "manifest.json"
    write_manifest(
        manifest_path,
        seed=cfg.seed,
        sample_rate=cfg.sample_rate,
        tracks=heldout,
        created_at=utc_now(),
    )
    files[manifest_path.relative_to(root).as_posix()] = sha256_file(manifest_path)
    _remove_stale_audio(catalog_dir / "audio", {t.track_id for t in tracks})
    _remove_stale_audio(heldout_dir / "audio", {t.track_id for t in heldout})

    state = read_state(root)
    state["catalog"] = {
        "fingerprint": fingerprint,
        "files": files,
        "tracks": [asdict(t) for t in tracks],
        "heldout": [asdict(t) for t in heldout],
    }
    write_state(root, state)
    return CatalogResult(
        tracks=tracks,
        heldout=heldout,
        reused=False,
        seconds=time.monotonic() - started,
        files=files,
    )


def _remove_stale_audio(folder: Path, keep: set[str]) -> None:
    """Drop WAVs of tracks a smaller rebuild no longer has, so the folder matches the CSVs."""
    if not folder.is_dir():
        return
    for path in folder.glob("*.wav"):
        if path.stem not in keep:
            path.unlink()
