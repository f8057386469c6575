"""The catalog build: deterministic manifests for a seed, reuse only when hashes match."""

import csv
import json
from dataclasses import asdict
from decimal import Decimal

import pytest

from demo.world import build


@pytest.fixture(scope="module")
def score_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("score-cache")


def _build(root, score_cache, **kw):
    root.mkdir(parents=True, exist_ok=True)
    cache = root / "cache"
    if not cache.exists():
        cache.symlink_to(
            score_cache, target_is_directory=True
        )  # parse each score once per test run
    return build.build_catalog(
        build.CatalogConfig(
            root=root, tracks=kw.pop("tracks", 3), heldout=1, seed=kw.pop("seed", 0)
        )
    )


def test_same_seed_gives_the_same_tracks_captions_isrcs_and_audio(tmp_path, score_cache):
    a = _build(tmp_path / "a", score_cache)
    b = _build(tmp_path / "b", score_cache)
    assert not a.reused and not b.reused
    assert [asdict(t) for t in a.tracks] == [asdict(t) for t in b.tracks]
    assert len(a.tracks) == 3 and len(a.heldout) == 1
    assert {t.work_id for t in a.tracks}.isdisjoint({t.work_id for t in a.heldout})
    for t in a.tracks:
        assert t.seconds_start == 0 and t.seconds_total >= t.duration_s > 1.0
        assert (tmp_path / "a" / "catalog" / t.audio_path).is_file()
    manifest = json.loads((tmp_path / "a" / "heldout" / "manifest.json").read_text())
    assert (
        manifest["seed"] == 0
        and manifest["sample_rate"] == 16000
        and manifest["created_at"].endswith("Z")
    )
    assert manifest["tracks"][0]["sha256"] == a.heldout[0].sha256


def test_catalog_csvs_agree_with_the_tracks(tmp_path, score_cache):
    result = _build(tmp_path / "c", score_cache)
    folder = tmp_path / "c" / "catalog"
    with (folder / "recordings.csv").open() as f:
        recordings = list(csv.DictReader(f))
    assert [r["isrc"] for r in recordings] == [t.isrc for t in result.tracks]
    assert all((folder / r["audio_path"]).is_file() for r in recordings)
    with (folder / "ownership_shares.csv").open() as f:
        shares = list(csv.DictReader(f))
    with (folder / "rights_holders.csv").open() as f:
        holders = {r["legal_name"] for r in csv.DictReader(f)}
    for isrc in {r["isrc"] for r in recordings}:
        assert sum(Decimal(s["percent"]) for s in shares if s["isrc"] == isrc) == 100
    assert {s["rights_holder"] for s in shares} == holders


def test_second_build_is_reused_and_a_changed_file_is_rebuilt(tmp_path, score_cache):
    root = tmp_path / "d"
    first = _build(root, score_cache)
    second = _build(root, score_cache)
    assert second.reused
    assert [t.sha256 for t in second.tracks] == [t.sha256 for t in first.tracks]

    wav = root / "catalog" / first.tracks[0].audio_path
    data = bytearray(wav.read_bytes())
    data[-1] ^= 0xFF  # same size and name, different content
    wav.write_bytes(bytes(data))
    third = _build(root, score_cache)
    assert not third.reused
    assert build.sha256_file(wav) == first.tracks[0].sha256


def test_fingerprint_changes_with_every_input(tmp_path):
    base = build.CatalogConfig(root=tmp_path)
    prints = {
        build.CatalogConfig(root=tmp_path, **kw).fingerprint()
        for kw in ({}, {"seed": 1}, {"tracks": 301}, {"heldout": 3}, {"max_seconds": 5.0})
    }
    assert len(prints) == 5
    assert base.fingerprint() == build.CatalogConfig(root=tmp_path / "elsewhere").fingerprint()
