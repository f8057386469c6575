"""Catalog imports of tens of thousands of rows on SQLite (the embedded default), run by
``test_sqlite.py`` in a subprocess whose DATABASE_URL points at SQLite. Not collected in
the PostgreSQL run."""

import shutil
import sqlite3

import pytest
from django.db import connection

import catalog.services.imports
from catalog.models import ImportBatch, OwnershipShare, Recording, RightsHolder
from catalog.services import catalog_import_folder
from core.exceptions import ApplicationError
from core.models import AuditEvent
from tests.catalog import large_catalog

pytestmark = pytest.mark.django_db

# More ISRCs than SQLite binds in one statement (32,766), so a lookup of every ISRC of the
# file in one query would fail with "too many SQL variables".
ROWS = 33_000


@pytest.fixture(scope="module")
def large_folder(tmp_path_factory):
    return large_catalog.catalog_folder_write(tmp_path_factory.mktemp("large"), ROWS)


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def stock_sqlite_limits():
    """SQLite as most builds ship it: at most 32,766 parameters in one statement (some
    Linux distributions raise the limit; the import must not rely on that)."""
    connection.ensure_connection()
    raw = connection.connection
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    yield
    raw.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, limit)


def catalog_counts():
    return (
        RightsHolder.objects.count(),
        Recording.objects.count(),
        OwnershipShare.objects.count(),
        ImportBatch.objects.count(),
        AuditEvent.objects.count(),
    )


def test_a_large_catalog_imports_in_one_go(large_folder):
    assert connection.vendor == "sqlite"
    report = catalog_import_folder(folder=large_folder, actor=None)
    assert report.ok, report.as_dict()["problems"][:5]
    assert report.created == {
        "rights_holders": large_catalog.HOLDERS + 1,
        "recordings": ROWS,
        "ownership_shares": ROWS,
    }
    assert catalog_counts()[:4] == (large_catalog.HOLDERS + 1, ROWS, 2 * ROWS, 1)
    assert AuditEvent.objects.filter(action="recording.create").count() == ROWS
    last = Recording.objects.get(isrc=large_catalog.isrc_for(ROWS - 1))
    assert sorted(last.ownership_shares.values_list("rights_holder__legal_name", "percent")) == [
        (f"Scale Artist {(ROWS - 1) % large_catalog.HOLDERS:03d}", 60),
        (large_catalog.LABEL, 40),
    ]


def test_a_bad_cell_on_the_last_row_refuses_the_whole_file(large_folder, tmp_path):
    spoiled = tmp_path / "spoiled"
    shutil.copytree(large_folder, spoiled, ignore=shutil.ignore_patterns("audio"))
    (spoiled / "audio").symlink_to(large_folder / "audio")
    rows = [large_catalog.recording_row(i) for i in range(ROWS)]
    rows[-1][1] = "Bell\x07 track"
    large_catalog.csv_write(spoiled / "recordings.csv", "recordings", rows)
    report = catalog_import_folder(folder=spoiled, actor=None)
    assert [(p.kind, p.row, p.column) for p in report.problems] == [
        ("recordings", ROWS + 1, "title")
    ]
    assert "control characters" in report.problems[0].problem
    assert catalog_counts() == (0, 0, 0, 0, 0)


def test_a_failure_while_writing_the_last_rows_leaves_nothing(tmp_path, monkeypatch):
    """The last audio file is replaced between the check and the write: the rows already
    written (every chunk before it) are rolled back with it."""
    rows = 3_000
    folder = large_catalog.catalog_folder_write(tmp_path / "small", rows)
    checked = catalog.services.imports.import_plan_build

    def check_then_replace_the_last_audio(*args, **kwargs):
        plan = checked(*args, **kwargs)
        last = folder / large_catalog.recording_row(rows - 1)[3]
        last.write_bytes(large_catalog.wav_bytes(rows + 7))
        return plan

    monkeypatch.setattr(
        catalog.services.imports, "import_plan_build", check_then_replace_the_last_audio
    )
    with pytest.raises(ApplicationError, match=f"row {rows + 1} of the recordings file"):
        catalog_import_folder(folder=folder, actor=None)
    assert catalog_counts() == (0, 0, 0, 0, 0)


def test_a_staged_import_runs_its_tasks_in_process(
    tmp_path, settings, django_capture_on_commit_callbacks
):
    """The embedded default: without a broker the check and the import run when the
    request's transaction commits (here: when the capture below ends). SQLite takes one
    writer at a time: the import's progress is not written inside its transaction, and
    nothing waits on a lock."""
    from django.contrib.auth import get_user_model

    from catalog.services import catalog_import_confirm, catalog_import_stage

    settings.DATA_DIR = tmp_path / "data"
    settings.CATALOG_IMPORT_PROGRESS_ROWS = 100
    folder = large_catalog.catalog_folder_write(tmp_path / "small", 600)
    admin = get_user_model().objects.create(username="admin")
    files = {kind: folder / f"{kind}.csv" for kind in large_catalog.HEADERS}
    with django_capture_on_commit_callbacks(execute=True):
        batch = catalog_import_stage(files=files, actor=admin, audio_folder=str(folder))
    batch.refresh_from_db()
    assert batch.status == "checked" and batch.can_confirm, batch.report
    with django_capture_on_commit_callbacks(execute=True):
        catalog_import_confirm(batch=batch, actor=admin)
    batch.refresh_from_db()
    assert batch.status == "applied" and batch.created["recordings"] == 600
    assert batch.finished_at is not None and batch.error == ""
    assert Recording.objects.count() == 600
