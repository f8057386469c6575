"""Captions, codes (ISRC, ISWC, ISNI) and ownership shares: valid and deterministic."""

import csv
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from demo.world import captions, catalog, render
from tests.demo.world.helpers import scale_work


def test_caption_is_deterministic_and_names_the_metadata():
    excerpt = render.plan_excerpt(scale_work("bach"), track_id="dw0001", max_seconds=6.0, seed=0)
    text = captions.caption(excerpt)
    assert text == captions.caption(
        render.plan_excerpt(scale_work("bach"), track_id="dw0001", max_seconds=6.0, seed=0)
    )
    assert "Johann Sebastian Bach" in text and "Bach chorales" in text
    assert excerpt.ensemble.name in text and "C major" in text and "4/4" in text
    assert f"{excerpt.tempo_qpm} BPM" in text
    assert text.startswith(captions.work_title(excerpt) + ", ")
    assert captions.title(excerpt) == f"{captions.work_title(excerpt)} ({excerpt.ensemble.name})"


def test_plans_are_keyed_by_track_id_not_by_order():
    a = [
        render.plan_excerpt(scale_work(), track_id=f"dw{i:04d}", max_seconds=6.144, seed=0)
        for i in range(40)
    ]
    b = [
        render.plan_excerpt(scale_work(), track_id=f"dw{i:04d}", max_seconds=6.144, seed=0)
        for i in reversed(range(40))
    ]
    assert a == list(reversed(b))
    lengths = [e.max_seconds for e in a]
    assert min(lengths) >= 1.5 and max(lengths) <= 6.144
    assert any(x < 3.0 for x in lengths)  # some tracks much shorter than the window
    assert len({e.ensemble.name for e in a}) > 3


def test_isrc_is_valid_and_deterministic():
    from stdnum import isrc

    label = catalog.LABELS[0]
    code = catalog.make_isrc(label, 2026, 17)
    assert code == "GBHN72600017"
    assert isrc.is_valid(code)
    assert catalog.make_isrc(label, 2026, 17) == code


def test_iswc_and_isni_check_digits():
    from stdnum import isni

    assert catalog.iswc_check_digit("034524680") == "1"  # T-034.524.680-1, the ISO 15707 example
    assert catalog.make_iswc(1) == catalog.make_iswc(1)
    assert all(isni.is_valid(catalog.make_isni(n)) for n in range(1, 50))


@given(
    st.text(min_size=1, max_size=12),
    st.sampled_from(sorted(catalog.LABEL_BY_FOLDER)),
    st.integers(0, 5),
)
def test_shares_of_every_recording_sum_to_exactly_100(track_id, folder, seed):
    shares, holders = catalog.ownership(
        track_id=track_id,
        folder=folder,
        composer="Traditional",
        collection_name="X",
        ensemble="piano",
        seed=seed,
    )
    assert sum(Decimal(p) for _, p in shares) == Decimal(100)
    assert all(Decimal(p).as_tuple().exponent >= -4 and Decimal(p) > 0 for _, p in shares)
    assert {name for name, _ in shares} == {h.legal_name for h in holders}
    assert all(h.kind in {"artist", "label", "publisher", "estate", "collective"} for h in holders)


def test_catalog_files_have_the_agreed_columns(tmp_path):
    shares, holders = catalog.ownership(
        track_id="dw0001",
        folder="bach",
        composer="Johann Sebastian Bach",
        collection_name="Bach chorales",
        ensemble="choir",
        seed=0,
    )
    entry = catalog.CatalogEntry(
        track_id="dw0001",
        isrc="DELK42600001",
        iswc=catalog.make_iswc(1),
        title="Chorale",
        audio_path="audio/dw0001.wav",
        shares=tuple(shares),
    )
    catalog.write_catalog(tmp_path, [entry], {h.legal_name: h for h in holders})
    with (tmp_path / "rights_holders.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "legal_name",
        "kind",
        "isni",
        "ipi",
        "payout_currency",
        "contact_email",
        "payout_details",
    ]
    assert rows[0]["payout_details"]  # the payment files have somewhere to send the money
    with (tmp_path / "recordings.csv").open() as f:
        assert next(iter(csv.DictReader(f))) == {
            "isrc": "DELK42600001",
            "title": "Chorale",
            "iswc": catalog.make_iswc(1),
            "audio_path": "audio/dw0001.wav",
        }
    with (tmp_path / "ownership_shares.csv").open() as f:
        share_rows = list(csv.DictReader(f))
    assert list(share_rows[0]) == ["isrc", "rights_holder", "percent"]
    assert sum(Decimal(r["percent"]) for r in share_rows) == 100
