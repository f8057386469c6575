"""The catalog import: all or nothing, a report by row, idempotent."""

import io
import itertools
from decimal import Decimal

import pandas as pd
import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import ImportBatch, OwnershipShare, Recording, RightsHolder
from catalog.services import catalog_import, catalog_import_files, catalog_import_folder
from core.models import AuditEvent
from tests.catalog.conftest import write_csv
from tests.catalog.factories import RecordingFactory, RightsHolderFactory

pytestmark = pytest.mark.django_db


def catalog_counts():
    return (
        RightsHolder.objects.count(),
        Recording.objects.count(),
        OwnershipShare.objects.count(),
        ImportBatch.objects.count(),
        AuditEvent.objects.count(),
    )


def problems_of(report):
    return [(p.kind, p.row, p.column) for p in report.problems]


def test_folder_import_registers_everything(catalog_folder):
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None)
    assert report.ok, report.as_dict()
    assert report.applied
    assert report.created == {"rights_holders": 2, "recordings": 3, "ownership_shares": 3}
    aria = RightsHolder.objects.get(legal_name="Aria Artist")
    assert (aria.isni, aria.ipi, aria.payout_currency) == ("0000000121032683", "00014107338", "EUR")
    assert RightsHolder.objects.get(legal_name="Lumen Label").payout_currency == "USD"
    recording = Recording.objects.get(isrc="GBABC2600000")
    assert recording.iswc == "T0345246801"
    assert recording.sample_rate == 16000
    assert recording.duration_seconds == Decimal("0.250")
    assert (
        recording.audio.name
        == f"recordings/{recording.audio_sha256[:2]}/{recording.audio_sha256}.wav"
    )
    assert recording.audio.storage.exists(recording.audio.name)
    assert sorted(recording.ownership_shares.values_list("percent", flat=True)) == [
        Decimal("40.0000"),
        Decimal("60.0000"),
    ]
    batch = ImportBatch.objects.get()
    assert batch.pk == report.batch_id
    assert AuditEvent.objects.filter(action="recording.create").count() == 3
    assert AuditEvent.objects.filter(action="catalog_import.apply").count() == 1


def test_an_imported_record_is_audited_like_one_entered_by_hand(catalog_folder, tmp_path):
    """The import writes through the create services: the same audit row per holder and
    recording as the pages, the API and the admin leave, marked as the import's."""
    from catalog.services import ShareSpec, recording_create, rights_holder_create
    from tests.catalog.factories import tone_wav_bytes

    catalog_import_folder(folder=catalog_folder.write(), actor=None)
    imported = AuditEvent.objects.get(
        action="recording.create",
        object_id=str(Recording.objects.get(isrc="GBABC2600000").pk),
    )
    aria, lumen = (RightsHolder.objects.get(legal_name=n) for n in ("Aria Artist", "Lumen Label"))
    assert imported.reason == "catalog import"
    assert imported.after["ownership_shares"] == [
        {"rights_holder": aria.pk, "percent": "60.0000"},
        {"rights_holder": lumen.pk, "percent": "40.0000"},
    ]
    assert not AuditEvent.objects.filter(action="recording.shares_set").exists()

    audio = tmp_path / "by-hand.wav"
    audio.write_bytes(tone_wav_bytes(freq=900, seconds=0.25))
    by_hand = recording_create(
        title="By hand",
        isrc="GB-ABC-26-99999",
        audio_path=audio,
        shares=[ShareSpec(aria, Decimal(100))],
        actor=None,
    )
    entered = AuditEvent.objects.get(action="recording.create", object_id=str(by_hand.pk))
    assert set(entered.after) == set(imported.after)
    holder = AuditEvent.objects.get(action="rights_holder.create", object_id=str(aria.pk))
    other = rights_holder_create(legal_name="By Hand", kind="artist", actor=None)
    assert holder.reason == "catalog import"
    assert set(holder.after) == set(
        AuditEvent.objects.get(action="rights_holder.create", object_id=str(other.pk)).after
    )


def test_reimport_is_a_no_op(catalog_folder):
    folder = catalog_folder.write()
    catalog_import_folder(folder=folder, actor=None)
    before = catalog_counts()
    report = catalog_import_folder(folder=folder, actor=None)
    assert report.ok and report.no_op and not report.applied
    assert report.unchanged == {"rights_holders": 2, "recordings": 3, "ownership_shares": 3}
    assert catalog_counts() == before


def test_dry_run_changes_nothing(catalog_folder):
    before = catalog_counts()
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None, dry_run=True)
    assert report.ok and report.dry_run and not report.applied
    assert report.created["recordings"] == 3
    assert catalog_counts() == before


def assert_nothing_changed_and(report, before, expected):
    assert not report.ok
    assert not report.applied
    assert catalog_counts() == before
    assert expected in problems_of(report), report.as_dict()


@pytest.mark.parametrize(
    ("spoil", "expected", "words"),
    [
        pytest.param(
            lambda f: f.recordings[1].__setitem__(0, "GB-ABC-26-0001"),
            ("recordings", 3, "isrc"),
            "12 characters",
            id="bad-isrc-length",
        ),
        pytest.param(
            lambda f: f.recordings[1].__setitem__(0, "XX-ABC-26-00001"),
            ("recordings", 3, "isrc"),
            "country prefix",
            id="bad-isrc-country",
        ),
        pytest.param(
            lambda f: f.recordings[2].__setitem__(0, f.recordings[0][0]),
            ("recordings", 4, "isrc"),
            "duplicate ISRC",
            id="duplicate-isrc-in-file",
        ),
        pytest.param(
            lambda f: f.shares[1].__setitem__(2, "39.9999"),
            ("ownership_shares", 2, "percent"),
            "sum to 99.9999, not 100",
            id="shares-not-100",
        ),
        pytest.param(
            lambda f: f.shares[3].__setitem__(1, "Nobody Known"),
            ("ownership_shares", 5, "rights_holder"),
            "unknown rights holder",
            id="unknown-holder",
        ),
        pytest.param(
            lambda f: f.shares[0].__setitem__(2, "-60"),
            ("ownership_shares", 2, "percent"),
            "greater than 0",
            id="negative-share",
        ),
        pytest.param(
            lambda f: f.shares[0].__setitem__(2, "sixty"),
            ("ownership_shares", 2, "percent"),
            "not a number",
            id="non-numeric-share",
        ),
        pytest.param(
            lambda f: f.shares[0].__setitem__(2, "59.99999"),
            ("ownership_shares", 2, "percent"),
            "4 decimal places",
            id="too-precise-share",
        ),
        pytest.param(
            lambda f: f.recordings[2].__setitem__(3, "audio/missing.wav"),
            ("recordings", 4, "audio_path"),
            "does not exist",
            id="missing-audio",
        ),
        pytest.param(
            lambda f: (f.root / "audio" / "track1.wav").write_bytes(b"RIFF not really a wave"),
            ("recordings", 3, "audio_path"),
            "cannot be decoded",
            id="undecodable-audio",
        ),
        pytest.param(
            lambda f: f.recordings[0].__setitem__(2, "T-034.524.680-9"),
            ("recordings", 2, "iswc"),
            "check digit",
            id="bad-iswc",
        ),
        pytest.param(
            lambda f: f.holders[0].__setitem__(3, "00014107339"),
            ("rights_holders", 2, "ipi"),
            "check digits",
            id="bad-ipi",
        ),
        pytest.param(
            lambda f: f.holders[1].__setitem__(1, "band"),
            ("rights_holders", 3, "kind"),
            "not one of",
            id="bad-kind",
        ),
        pytest.param(
            lambda f: f.shares.__delitem__(slice(4, 6)),
            ("recordings", 4, "isrc"),
            "no ownership shares",
            id="recording-without-shares",
        ),
        pytest.param(
            lambda f: f.shares.append(["GB-ABC-26-99999", "Aria Artist", "100"]),
            ("ownership_shares", 8, "isrc"),
            "unknown recording",
            id="shares-for-unknown-recording",
        ),
    ],
)
def test_any_bad_row_changes_nothing(catalog_folder, spoil, expected, words):
    spoil(catalog_folder)
    folder = catalog_folder.write()
    before = catalog_counts()
    report = catalog_import_folder(folder=folder, actor=None)
    assert_nothing_changed_and(report, before, expected)
    problem = next(p for p in report.problems if (p.kind, p.row, p.column) == expected)
    assert words in problem.problem


def test_silent_audio_is_refused(catalog_folder):
    silent = catalog_folder.root / "audio" / "track2.wav"
    from tests.catalog.factories import tone_wav_bytes

    silent.write_bytes(tone_wav_bytes(amplitude=0.0))
    before = catalog_counts()
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None)
    assert_nothing_changed_and(report, before, ("recordings", 4, "audio_path"))
    assert "silent" in report.problems[0].problem


def test_audio_over_size_or_length_is_refused(catalog_folder, settings):
    folder = catalog_folder.write()
    before = catalog_counts()
    settings.CATALOG_MAX_AUDIO_SECONDS = 0.2
    report = catalog_import_folder(folder=folder, actor=None)
    assert_nothing_changed_and(report, before, ("recordings", 2, "audio_path"))
    assert "over the limit" in report.problems[0].problem
    settings.CATALOG_MAX_AUDIO_SECONDS = 60
    settings.CATALOG_MAX_AUDIO_BYTES = 1000
    report = catalog_import_folder(folder=folder, actor=None)
    assert "bytes, over the limit" in report.problems[0].problem
    assert catalog_counts() == before


def test_isrc_already_registered_with_other_audio(catalog_folder):
    RecordingFactory(isrc="GBABC2600001")
    before = catalog_counts()
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None)
    assert_nothing_changed_and(report, before, ("recordings", 3, "isrc"))
    assert "already registered" in report.problems[0].problem


def test_wrong_encoding(catalog_folder, tmp_path):
    path = tmp_path / "rights_holders.csv"
    path.write_bytes("legal_name,kind\nBj\u00f6rk Estate,estate\n".encode("latin-1"))
    before = catalog_counts()
    report = catalog_import(kind="rights_holders", path_or_file=path, actor=None)
    assert_nothing_changed_and(report, before, ("rights_holders", None, ""))
    assert "not UTF-8" in report.problems[0].problem


@pytest.mark.parametrize(
    "content", [b"", b"legal_name,kind\n", b"\n\n"], ids=["empty", "header", "blank"]
)
def test_empty_file(tmp_path, content):
    path = tmp_path / "rights_holders.csv"
    path.write_bytes(content)
    before = catalog_counts()
    report = catalog_import(kind="rights_holders", path_or_file=path, actor=None)
    assert_nothing_changed_and(report, before, ("rights_holders", None, ""))
    assert "empty" in report.problems[0].problem or "no data rows" in report.problems[0].problem


def test_missing_column(tmp_path):
    path = write_csv(
        tmp_path / "ownership_shares.csv", ["isrc", "holder", "percent"], [["a", "b", "1"]]
    )
    report = catalog_import(kind="ownership_shares", path_or_file=path, actor=None)
    assert problems_of(report) == [("ownership_shares", 1, "rights_holder")]


def test_good_rows_are_not_applied_when_one_file_is_bad(catalog_folder):
    """Holders are fine, one share row is not: not even the holders are created."""
    catalog_folder.shares[0][2] = "abc"
    before = catalog_counts()
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None)
    assert not report.ok
    assert catalog_counts() == before
    assert not RightsHolder.objects.filter(legal_name="Aria Artist").exists()


def test_every_problem_is_reported_at_once(catalog_folder):
    catalog_folder.recordings[1][0] = "bad"
    catalog_folder.shares[5][1] = "Nobody"
    catalog_folder.holders[0][2] = "0000000121032684"
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None)
    assert set(problems_of(report)) >= {
        ("rights_holders", 2, "isni"),
        ("recordings", 3, "isrc"),
        ("ownership_shares", 7, "rights_holder"),
    }


def test_xlsx_import(tmp_path, catalog_folder):
    folder = catalog_folder.write()
    for kind in ("rights_holders", "recordings", "ownership_shares"):
        frame = pd.read_csv(folder / f"{kind}.csv", dtype=str, keep_default_na=False)
        if kind == "ownership_shares":
            frame["percent"] = frame["percent"].astype(float)  # numbers, as Excel stores them
        frame.to_excel(folder / f"{kind}.xlsx", index=False)
        (folder / f"{kind}.csv").unlink()
    report = catalog_import_folder(folder=folder, actor=None)
    assert report.ok, report.as_dict()
    assert Recording.objects.count() == 3
    assert OwnershipShare.objects.filter(percent=Decimal("60")).count() == 3


def test_shares_file_replaces_registered_shares_and_audits(catalog_folder):
    folder = catalog_folder.write()
    catalog_import_folder(folder=folder, actor=None)
    write_csv(
        folder / "new_shares.csv",
        ["isrc", "rights_holder", "percent"],
        [["GBABC2600000", "Aria Artist", "100"]],
    )
    report = catalog_import(
        kind="ownership_shares", path_or_file=folder / "new_shares.csv", actor=None
    )
    assert report.ok and report.updated["ownership_shares"] == 1
    recording = Recording.objects.get(isrc="GBABC2600000")
    assert list(recording.ownership_shares.values_list("rights_holder__legal_name", "percent")) == [
        ("Aria Artist", Decimal("100.0000"))
    ]
    event = AuditEvent.objects.filter(
        action="recording.shares_set", object_id=str(recording.pk)
    ).first()
    assert len(event.before["ownership_shares"]) == 2


def test_uploaded_file_object(catalog_folder):
    catalog_folder.write()
    data = (catalog_folder.root / "rights_holders.csv").read_bytes()
    upload = io.BytesIO(data)
    upload.name = "holders.csv"
    report = catalog_import(kind="rights_holders", path_or_file=upload, actor=None)
    assert report.ok and report.created["rights_holders"] == 2


def test_relative_audio_path_of_an_upload_needs_a_folder(catalog_folder):
    catalog_folder.write()
    RightsHolderFactory(legal_name="Aria Artist")
    files = {
        "recordings": io.BytesIO((catalog_folder.root / "recordings.csv").read_bytes()),
        "ownership_shares": io.BytesIO(
            b"isrc,rights_holder,percent\nGBABC2600000,Aria Artist,100\n"
        ),
    }
    report = catalog_import_files(files=files, actor=None)
    assert ("recordings", 2, "audio_path") in problems_of(report)
    files["recordings"].seek(0)
    report = catalog_import_files(
        files={"recordings": files["recordings"], "ownership_shares": files["ownership_shares"]},
        actor=None,
        dry_run=True,
        base_dirs={"recordings": catalog_folder.root},
    )
    # with the folder, only the two recordings without shares remain wrong
    assert problems_of(report) == [("recordings", 3, "isrc"), ("recordings", 4, "isrc")]


@pytest.mark.django_db(transaction=True)
def test_a_failure_while_applying_rolls_everything_back(catalog_folder, monkeypatch):
    """Real commits: an error after some rows were written leaves no trace at all."""
    import catalog.services.imports

    original = catalog.services.imports.audit_record_many
    written = {}

    def failing_audit(**kwargs):
        if kwargs["action"] == "recording.create":
            # holders, recordings and their shares are in the database by now
            written["counts"] = catalog_counts()
            raise RuntimeError("disk full")
        return original(**kwargs)

    monkeypatch.setattr(catalog.services.imports, "audit_record_many", failing_audit)
    with pytest.raises(RuntimeError, match="disk full"):
        catalog_import_folder(folder=catalog_folder.write(), actor=None)
    assert written["counts"][:3] == (2, 3, 6)
    assert catalog_counts() == (0, 0, 0, 0, 0)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    percents=st.lists(
        st.integers(min_value=1, max_value=999_999), min_size=1, max_size=4, unique=True
    ).map(lambda cuts: sorted(cuts)),
    off_by=st.sampled_from([0, 0, 1, -1, 10_000]),
)
def test_import_accepts_exactly_the_share_sets_summing_to_100(tmp_path_factory, percents, off_by):
    """Shares in a file (4 decimals) are stored iff they sum to exactly 100."""
    from tests.catalog.conftest import CatalogFolder

    bounds = [0, *percents, 1_000_000]
    parts = [Decimal(b - a) / 10_000 for a, b in itertools.pairwise(bounds)]
    parts[-1] += Decimal(off_by) / 10_000
    folder = CatalogFolder(tmp_path_factory.mktemp("hyp"), n_tracks=1)
    folder.holders = [[f"H{i}", "artist", "", "", "USD", ""] for i in range(len(parts))]
    folder.shares = [[folder.recordings[0][0], f"H{i}", f"{p:f}"] for i, p in enumerate(parts)]
    with transaction.atomic():
        report = catalog_import_folder(folder=folder.write(), actor=None, dry_run=True)
        transaction.set_rollback(True)
    if off_by == 0:
        assert report.ok, report.as_dict()
    else:
        assert not report.ok
        assert [p.column for p in report.problems] in (["percent"], ["percent", "percent"])


def test_a_bad_holder_row_is_reported_once_not_again_on_its_shares(catalog_folder):
    catalog_folder.holders[1][1] = "band"  # Lumen Label's kind is wrong
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None)
    assert problems_of(report) == [("rights_holders", 3, "kind")]


@pytest.mark.django_db(transaction=True)
def test_concurrent_imports_of_the_same_folder_register_it_once(catalog_folder):
    import threading

    from django.db import connection

    from core.exceptions import ApplicationError

    folder = catalog_folder.write()
    outcomes = []
    barrier = threading.Barrier(2)

    def run():
        try:
            barrier.wait()
            report = catalog_import_folder(folder=folder, actor=None)
            outcomes.append("applied" if report.applied else "no-op")
        except ApplicationError as exc:
            outcomes.append(exc.message)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("applied") == 1, outcomes
    other = next(o for o in outcomes if o != "applied")
    assert other == "no-op" or other.startswith("the catalog changed while importing")
    assert (RightsHolder.objects.count(), Recording.objects.count()) == (2, 3)
    assert ImportBatch.objects.count() == 1
    for recording in Recording.objects.all():
        assert sum(recording.ownership_shares.values_list("percent", flat=True)) == 100


def test_payout_details_are_imported_and_an_empty_cell_keeps_them(catalog_folder):
    folder = catalog_folder.write()
    holders = catalog_folder.holders
    header = ["legal_name", "kind", "isni", "ipi", "payout_currency", "contact_email"]
    write_csv(
        folder / "rights_holders.csv",
        [*header, "payout_details"],
        [[*holders[0], "IBAN DE00 1234"], [*holders[1], ""]],
    )
    assert catalog_import_folder(folder=folder, actor=None).ok
    aria = RightsHolder.objects.get(legal_name="Aria Artist")
    assert aria.payout_details == "IBAN DE00 1234"
    assert RightsHolder.objects.get(legal_name="Lumen Label").payout_details == ""
    # A later file without the column (or with the cell empty) never erases them.
    write_csv(folder / "rights_holders.csv", header, holders)
    report = catalog_import_folder(folder=folder, actor=None)
    assert report.ok and report.no_op
    aria.refresh_from_db()
    assert aria.payout_details == "IBAN DE00 1234"
    write_csv(
        folder / "rights_holders.csv",
        [*header, "payout_details"],
        [[*holders[0], "IBAN FR00 9"], [*holders[1], ""]],
    )
    assert catalog_import_folder(folder=folder, actor=None).ok
    aria.refresh_from_db()
    assert aria.payout_details == "IBAN FR00 9"


# --- catalogs at real size: streaming, and the same validation as the services ----------------


def _traced_peak(consume) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        consume()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_files_are_read_row_by_row(tmp_path, fmt):
    """Reading a file holds one row at a time: its peak memory is a small part of what
    holding every row takes (an XLSX workbook keeps only its shared strings)."""
    from catalog.importing import read_rows
    from tests.catalog import large_catalog

    write = large_catalog.csv_write if fmt == "csv" else large_catalog.xlsx_write
    path = write(
        tmp_path / f"ownership_shares.{fmt}",
        "ownership_shares",
        large_catalog.rows_of("ownership_shares", 15_000),
    )
    rows = 0

    def stream():
        nonlocal rows
        for _ in read_rows("ownership_shares", path):
            rows += 1

    streamed = _traced_peak(stream)
    held = _traced_peak(lambda: list(read_rows("ownership_shares", path)))
    assert rows == 30_000
    # An XLSX workbook's shared strings (here every ISRC and name) are read whole, so its
    # stream keeps more than a CSV's; neither keeps the rows.
    assert streamed < held / (4 if fmt == "csv" else 2), (streamed, held)


def test_lookups_stay_under_the_bound_parameter_limit(tmp_path, monkeypatch):
    """However large the files, no query names more than a chunk of keys (SQLite refuses
    a statement with more than 32,766 parameters)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    import catalog.importing
    from tests.catalog.conftest import CatalogFolder

    monkeypatch.setattr(catalog.importing, "LOOKUP_CHUNK", 4)
    folder = CatalogFolder(tmp_path / "forty", n_tracks=40).write()
    with CaptureQueriesContext(connection) as queries:
        report = catalog_import_folder(folder=folder, actor=None)
    assert report.ok, report.as_dict()
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert max(sql.count("'GBABC26") for sql in selects) == 4
    assert catalog_counts()[:3] == (2, 40, 80)


def _rolled_back(action):
    """``action()``'s outcome (``ApplicationError`` message or None), leaving no trace."""
    from core.exceptions import ApplicationError

    with transaction.atomic():
        try:
            action()
            outcome = None
        except ApplicationError as exc:
            outcome = exc.message
        transaction.set_rollback(True)
    return outcome


any_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=40),  # control characters
    st.text(min_size=250, max_size=300),  # around the length limit
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=any_text, email=st.one_of(st.just(""), any_text, st.emails()))
def test_a_holder_cell_is_stored_exactly_when_the_service_would_store_it(tmp_path, name, email):
    """Any text in a rights-holder file is a row problem or the value the pages and the
    API would store; never a database error."""
    from catalog.services import rights_holder_create

    path = write_csv(
        tmp_path / "rights_holders.csv",
        ["legal_name", "kind", "isni", "ipi", "payout_currency", "contact_email"],
        [[name, "artist", "", "", "USD", email]],
    )
    stored = []

    def import_file():
        report = catalog_import(kind="rights_holders", path_or_file=path, actor=None)
        stored.extend(RightsHolder.objects.values_list("legal_name", "contact_email"))
        return report

    reports = []
    _rolled_back(lambda: reports.append(import_file()))
    refused = _rolled_back(
        lambda: rights_holder_create(
            legal_name=name.strip(), kind="artist", contact_email=email.strip(), actor=None
        )
    )
    report = reports[0]
    assert report.ok == (refused is None), (report.as_dict(), refused)
    if report.ok:
        assert stored == [(" ".join(name.split()), email.strip())]
    else:
        assert stored == []
        assert {p.row for p in report.problems} == {2}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(title=any_text, isrc=st.one_of(any_text, st.just("GB-ABC-26-00000")))
def test_a_recording_cell_is_refused_exactly_when_the_service_refuses_it(
    catalog_folder, title, isrc
):
    """Titles and ISRCs from a file are judged as ``recording_update`` and
    ``recording_create`` judge them (dry run: the audio is the folder's)."""
    from catalog.services import recording_update
    from catalog.validators import isrc_normalize

    catalog_folder.recordings = catalog_folder.recordings[:1]
    catalog_folder.recordings[0][:2] = [isrc, title]
    catalog_folder.shares = [[isrc, "Aria Artist", "100"]]
    report = catalog_import_folder(folder=catalog_folder.write(), actor=None, dry_run=True)
    title_problem = ("recordings", 2, "title") in problems_of(report)
    isrc_problem = ("recordings", 2, "isrc") in problems_of(report)
    recording = RecordingFactory()
    refused = _rolled_back(
        lambda: recording_update(recording=recording, data={"title": title}, actor=None)
    )
    assert title_problem == (refused is not None or not title.split()), (report.as_dict(), refused)
    try:
        isrc_normalize(isrc)
        isrc_refused = False
    except Exception:
        isrc_refused = True
    assert isrc_problem == isrc_refused
    if not (title_problem or isrc_problem):
        assert report.ok, report.as_dict()
