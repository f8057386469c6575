"""Catalog imports from the pages and the API run as tasks: the check and the import of a
staged batch, their progress on the batch's row, redelivery, failures, and one flow through
a real Celery worker on the real Redis broker."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from catalog import tasks
from catalog.importing import KINDS
from catalog.models import ImportBatch, Recording, RightsHolder
from catalog.services import catalog_import_apply_run, catalog_import_stage
from catalog.services.imports import ImportSuperseded
from catalog.services.staged_imports import BatchProgress, ImportBusy, _batch_import, _claim
from core.models import AuditEvent
from core.roles import CATALOG_ADMIN
from tests.catalog.factories import UserFactory
from tests.catalog.large_catalog import catalog_folder_write
from tests.conftest import database_session
from tests.flows.conftest import broker_app, project_celery_app  # noqa: F401

# The tasks are sent when the staging transaction commits: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """Staged files, media and artifacts under one folder, as a worker process sees them."""
    settings.DATA_DIR = tmp_path
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    return tmp_path


@pytest.fixture
def admin():
    return UserFactory(role=CATALOG_ADMIN)


def stage(folder: Path, admin, **kwargs) -> ImportBatch:
    """Stage the folder's three files; without a broker the check runs on commit."""
    files = {kind: folder / f"{kind}.csv" for kind in KINDS}
    batch = catalog_import_stage(files=files, actor=admin, audio_folder=str(folder), **kwargs)
    batch.refresh_from_db()
    return batch


def confirmed(batch: ImportBatch) -> ImportBatch:
    """The batch as ``catalog_import_confirm`` leaves it before its task runs."""
    ImportBatch.objects.filter(pk=batch.pk).update(status="importing", heartbeat_at=None)
    batch.refresh_from_db()
    return batch


# --- progress ---------------------------------------------------------------------------------


def test_progress_is_written_on_the_row_at_least_every_n_rows(admin):
    batch = ImportBatch.objects.create(token="a" * 32, status="checking", actor=admin)
    progress = BatchProgress(batch, every_rows=500)
    for done in range(0, 2501, 100):
        progress("check recordings", done, 2500)
        row = ImportBatch.objects.get(pk=batch.pk)
        assert row.phase == "check recordings" and row.total == 2500
        assert done - row.processed < 500, (done, row.processed)
    assert row.processed == 2500 and row.percent_done == 100 and row.heartbeat_at is not None
    progress("import recordings", 0, 2500)  # a new phase is written at once
    assert ImportBatch.objects.get(pk=batch.pk).phase == "import recordings"


def test_the_import_reports_progress_while_its_transaction_is_open(admin, tmp_path, settings):
    """The import writes in one transaction; its progress is seen outside it meanwhile."""
    settings.CATALOG_IMPORT_PROGRESS_ROWS = 500
    batch = stage(catalog_folder_write(tmp_path / "big", 1200), admin)
    assert batch.status == "checked" and batch.can_confirm, batch.report
    batch = confirmed(batch)
    seen: list[tuple[str, int, int]] = []
    write = BatchProgress.write

    def watched(self, **values):
        write(self, **values)
        if connection.in_atomic_block:  # the import's transaction: read from outside it
            with database_session() as session:
                seen.append(
                    session.execute(
                        "SELECT phase, processed, total FROM catalog_importbatch WHERE id = %s",
                        [batch.pk],
                    ).fetchone()
                )

    BatchProgress.write = watched
    try:
        catalog_import_apply_run(batch_id=batch.pk)
    finally:
        BatchProgress.write = write
    assert ("import recordings", 500, 1200) in seen and ("import recordings", 1000, 1200) in seen
    batch.refresh_from_db()
    assert batch.status == "applied" and batch.created["recordings"] == 1200
    assert Recording.objects.count() == 1200


# --- redelivery -------------------------------------------------------------------------------


def test_a_redelivered_import_task_imports_nothing_twice(admin, catalog_folder):
    batch = stage(catalog_folder.write(), admin)
    batch = confirmed(batch)
    assert tasks.apply_import.apply(args=[batch.pk]).get() == "applied"
    batch.refresh_from_db()
    assert batch.attempts == 2  # the check's claim and the import's
    # The same message delivered again: the batch is applied, the run does nothing.
    assert tasks.apply_import.apply(args=[batch.pk]).get() is None
    assert ImportBatch.objects.get(pk=batch.pk).attempts == 2
    assert Recording.objects.count() == 3
    assert AuditEvent.objects.filter(action="catalog_import.apply").count() == 1


def test_a_run_whose_claim_was_taken_over_cannot_commit_its_import(admin, catalog_folder):
    batch = confirmed(stage(catalog_folder.write(), admin))
    first = _claim(batch_id=batch.pk, status="importing")
    # While the first run works (fresh heartbeat) a second delivery waits its turn ...
    with pytest.raises(ImportBusy):
        catalog_import_apply_run(batch_id=batch.pk)
    # ... and takes the batch over once the first run has gone silent.
    ImportBatch.objects.filter(pk=batch.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    second = _claim(batch_id=batch.pk, status="importing")
    assert second.attempts == first.attempts + 1
    # The first run, still alive after all, finishes its writes: they are rolled back.
    with pytest.raises(ImportSuperseded):
        _batch_import(first, dry_run=False, progress=lambda *args: None, claimed=first)
    assert not Recording.objects.exists() and not RightsHolder.objects.exists()
    assert ImportBatch.objects.get(pk=batch.pk).status == "importing"
    # The second run imports, once.
    _batch_import(second, dry_run=False, progress=lambda *args: None, claimed=second)
    assert ImportBatch.objects.get(pk=batch.pk).status == "applied"
    assert Recording.objects.count() == 3


# --- failures ---------------------------------------------------------------------------------


def test_a_failing_import_ends_failed_with_its_reason_and_stores_nothing(
    admin, catalog_folder, monkeypatch
):
    batch = confirmed(stage(catalog_folder.write(), admin))

    def broken(**kwargs):
        raise RuntimeError("disk full")

    # The error strikes inside the import's transaction, after records were written.
    monkeypatch.setattr("catalog.services.imports.audit_record", broken)
    with pytest.raises(RuntimeError):
        tasks.apply_import.apply(args=[batch.pk])
    batch.refresh_from_db()
    assert batch.status == "failed" and batch.finished_at is not None
    assert "RuntimeError: disk full" in batch.error and "nothing was imported" in batch.error
    assert not Recording.objects.exists() and not RightsHolder.objects.exists()


def test_a_staged_file_changed_before_the_import_fails_it(admin, catalog_folder):
    batch = confirmed(stage(catalog_folder.write(), admin))
    path = batch.path("ownership_shares")
    path.write_text(path.read_text() + "GB-ABC-26-00001,Aria Artist,1\n")
    catalog_import_apply_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert batch.status == "failed"
    assert batch.error == (
        "The stored ownership_shares file changed after it was checked; upload it again."
    )
    assert not Recording.objects.exists()


def test_the_import_api_reports_a_bad_row_and_refuses_to_confirm(admin, catalog_folder):
    catalog_folder.shares[0][2] = "sixty"  # spreadsheet row 2 of ownership_shares.csv
    folder = catalog_folder.write()
    api = APIClient()
    api.force_authenticate(admin)
    with (folder / "ownership_shares.csv").open("rb") as shares:
        sent = api.post(
            "/catalog/api/imports/",
            {"ownership_shares": shares, "base_dir": str(folder)},
            format="multipart",
        )
    assert sent.status_code == 202, sent.json()
    body = api.get(sent["Location"]).json()
    assert body["status"] == "checked" and not body["ok"] and not body["can_confirm"]
    assert {
        "file": "ownership_shares",
        "row": 2,
        "column": "percent",
        "problem": "share 'sixty' is not a number",
    } in body["report"]["problems"]
    refused = api.post(f"/catalog/api/imports/{body['token']}/confirm/")
    assert refused.status_code == 400 and "found problems" in refused.json()["message"]
    assert not Recording.objects.exists()


def test_the_one_step_import_api_checks_then_imports(admin, catalog_folder):
    folder = catalog_folder.write()
    api = APIClient()
    api.force_authenticate(admin)
    sent = api.post("/catalog/api/imports/", {"folder": str(folder)}, format="json")
    assert sent.status_code == 202, sent.json()
    body = api.get(sent["Location"]).json()
    assert body["status"] == "applied" and body["report"]["created"]["recordings"] == 3
    assert Recording.objects.count() == 3
    dry = api.post("/catalog/api/imports/", {"folder": str(folder), "dry_run": True})
    assert api.get(dry["Location"]).json()["status"] == "checked"


# --- a real worker ----------------------------------------------------------------------------


def _until_settled(api: APIClient, url: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = api.get(url).json()
        if body["status"] not in ("checking", "importing"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"the batch did not settle: {body}")


def test_a_real_worker_checks_and_imports_through_the_broker(
    admin,
    tmp_path,
    broker_app,  # noqa: F811
    queue_worker,
    celery_client,
):
    folder = catalog_folder_write(tmp_path / "catalog", 600)
    queue_worker("default")
    api = APIClient()
    api.force_authenticate(admin)
    with (
        (folder / "rights_holders.csv").open("rb") as holders,
        (folder / "recordings.csv").open("rb") as recordings,
        (folder / "ownership_shares.csv").open("rb") as shares,
    ):
        sent = api.post(
            "/catalog/api/imports/check/",
            {
                "rights_holders": holders,
                "recordings": recordings,
                "ownership_shares": shares,
                "audio_folder": str(folder),
            },
            format="multipart",
        )
    assert sent.status_code == 202 and sent.json()["status"] == "checking"
    checked = _until_settled(api, sent["Location"])
    assert checked["status"] == "checked" and checked["can_confirm"], checked
    assert checked["report"]["created"]["recordings"] == 600 and not Recording.objects.exists()

    accepted = api.post(f"/catalog/api/imports/{checked['token']}/confirm/")
    assert accepted.status_code == 202 and accepted.json()["status"] == "importing"
    done = _until_settled(api, sent["Location"])
    assert done["status"] == "applied" and done["error"] == "", done
    assert done["finished_at"] and done["started_at"] and done["phase"] == ""
    assert Recording.objects.count() == 600

    # The import task delivered once more (a broker redelivery) imports nothing.
    batch = ImportBatch.objects.get(token=checked["token"])
    result = celery_client.send_task("catalog.apply_import", args=[batch.pk], queue="default")
    assert result.get(timeout=60) is None
    assert Recording.objects.count() == 600
    again = ImportBatch.objects.get(pk=batch.pk)
    assert again.applied and again.attempts == batch.attempts
    assert AuditEvent.objects.filter(action="catalog_import.apply").count() == 1


# --- the batch's page -------------------------------------------------------------------------


def test_the_page_of_a_running_import_shows_its_progress_and_reloads_itself(
    client, admin, catalog_folder
):
    batch = confirmed(stage(catalog_folder.write(), admin))
    ImportBatch.objects.filter(pk=batch.pk).update(
        phase="import recordings", processed=42_500, total=100_000
    )
    client.force_login(admin)
    url = f"/catalog/import/{batch.token}/"
    page = client.get(url).content.decode()
    assert '<meta http-equiv="refresh" content="3">' in page  # no JavaScript needed
    assert "Importing…" in page and "Import recordings: 42500 of 100000 rows (42 %)." in page
    assert '<progress max="100000" value="42500">' in page
    assert f'<a href="{url}" id="import-reload">' in page
    assert 'id="confirm-import"' not in page and 'id="import-reupload"' not in page

    ImportBatch.objects.filter(pk=batch.pk).update(status="failed", error="Disk full.")
    page = client.get(url).content.decode()
    assert 'http-equiv="refresh"' not in page
    assert "Import failed: nothing was imported" in page and "Disk full." in page
