"""Catalog admin pages and API: the two-step import (upload and check -> confirm the same
files), upload limits, and who may use them."""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils.html import escape
from rest_framework.test import APIClient

from catalog.models import ImportBatch, Recording, RightsHolder
from catalog.staging import staging_root
from core.models import AuditEvent
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from tests.catalog.factories import UserFactory

# The check and the import run as tasks, sent when the request's transaction commits (in
# process here: the test settings have no broker), so these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

KIND_FILES = ("rights_holders", "recordings", "ownership_shares")


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path / "data"
    return settings.DATA_DIR


@pytest.fixture
def admin(client):
    account = UserFactory(role=CATALOG_ADMIN)
    client.force_login(account)
    return account


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), "text/csv")


def upload_all(folder: Path) -> dict:
    return {kind: upload(folder / f"{kind}.csv") for kind in KIND_FILES}


def staged_token(response) -> str:
    assert response.status_code == 302, response.content.decode()[:2000]
    location = response["Location"]
    assert location.startswith("/catalog/import/")
    return location.rstrip("/").rsplit("/", 1)[1]


def staged_folders() -> list[Path]:
    root = staging_root()
    return sorted(root.iterdir()) if root.is_dir() else []


# --- the two-step import ----------------------------------------------------------------------


def test_import_shows_the_report_and_saves_nothing_until_confirmed(client, admin, catalog_folder):
    catalog_folder.recordings[1][0] = "NOT-AN-ISRC"  # spreadsheet row 3 of recordings.csv
    folder = catalog_folder.write()
    response = client.post("/catalog/import/", {**upload_all(folder), "audio_folder": str(folder)})
    token = staged_token(response)
    page = client.get(f"/catalog/import/{token}/").content.decode()
    assert "Problems found: nothing was saved" in page
    problems = page[
        page.index('id="import-problems"') : page.index(
            "</table>", page.index('id="import-problems"')
        )
    ]
    assert '<td>recordings</td><td class="num">3</td><td>isrc</td>' in problems
    assert 'id="confirm-import"' not in page
    assert not RightsHolder.objects.exists() and not Recording.objects.exists()
    assert not ImportBatch.objects.filter(status="applied").exists()
    checked = ImportBatch.objects.get(token=token)
    assert checked.status == "checked" and not checked.ok
    check = AuditEvent.objects.get(action="catalog_import.check", object_id=str(checked.pk))
    assert check.actor == admin and check.after["problems"] >= 1

    # A confirm of a check with problems imports nothing either.
    page = client.post(f"/catalog/import/{token}/confirm/", follow=True).content.decode()
    assert "The check found problems; nothing was imported" in page
    assert not Recording.objects.exists()

    # Correct the one file and upload it alone: the other two are kept from the check.
    catalog_folder.recordings[1][0] = "GB-ABC-26-00001"
    catalog_folder.write()
    response = client.post(
        "/catalog/import/",
        {"recordings": upload(folder / "recordings.csv"), "replaces": token},
    )
    fixed = staged_token(response)
    assert fixed != token
    page = client.get(f"/catalog/import/{fixed}/").content.decode()
    assert "Ready to import" in page and 'id="confirm-import"' in page
    counts = page[page.index('id="import-counts"') :]
    for kind, created in (("rights_holders", 2), ("recordings", 3), ("ownership_shares", 3)):
        label = kind.replace("_", " ")
        assert f'<tr data-kind="{kind}"><td>{label}</td><td class="num">{created}</td>' in counts
    assert not Recording.objects.exists()

    response = client.post(f"/catalog/import/{fixed}/confirm/", follow=True)
    page = response.content.decode()
    assert "Imported" in page
    assert Recording.objects.count() == 3 and RightsHolder.objects.count() == 2
    table = page[page.index('id="imported-recordings"') :]
    for isrc in ("GBABC2600000", "GBABC2600001", "GBABC2600002"):
        assert isrc in table
    batch = ImportBatch.objects.get(status="applied")
    assert batch.token == fixed and batch.replaces.token == token
    assert batch.actor == admin and batch.file_names["recordings"] == "recordings.csv"
    assert batch.created["recordings"] == 3 and batch.finished_at is not None
    assert AuditEvent.objects.filter(action="catalog_import.apply", actor=admin).count() == 1
    assert AuditEvent.objects.filter(
        action="catalog_import.confirm", object_id=str(batch.pk), actor=admin
    ).exists()

    # Confirming again imports nothing twice.
    client.post(f"/catalog/import/{fixed}/confirm/")
    assert ImportBatch.objects.filter(status="applied").count() == 1
    assert Recording.objects.count() == 3


def test_confirm_imports_the_checked_files_not_a_later_change(client, admin, catalog_folder):
    folder = catalog_folder.write()
    token = staged_token(
        client.post("/catalog/import/", {**upload_all(folder), "audio_folder": str(folder)})
    )
    # Whatever happens to the admin's own copy after the check does not matter ...
    (folder / "recordings.csv").write_text("isrc,title,iswc,audio_path\n")
    client.post(f"/catalog/import/{token}/confirm/")
    assert Recording.objects.count() == 3
    # ... but a staged file changed on the server is refused.
    other = staged_token(
        client.post(
            "/catalog/import/",
            {"rights_holders": upload(folder / "rights_holders.csv"), "audio_folder": ""},
        )
    )
    staged_file = next((staging_root() / other / "rights_holders").iterdir())
    staged_file.write_text(staged_file.read_text() + "Someone New,artist,,,USD,\n")
    page = client.post(f"/catalog/import/{other}/confirm/", follow=True).content.decode()
    assert "changed after it was checked" in page


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("holders.pdf", b"%PDF-1.4", "is not a CSV or XLSX file"),
        ("holders.xlsx", b"legal_name,kind\nA,artist\n", "is not an XLSX workbook"),
        ("holders.csv", b"PK\x03\x04binary", "is not a CSV text file"),
    ],
)
def test_wrong_file_types_are_refused_before_anything_is_kept(
    client, admin, name, content, message
):
    response = client.post(
        "/catalog/import/", {"rights_holders": SimpleUploadedFile(name, content)}
    )
    assert response.status_code == 200
    assert escape(message) in response.content.decode()
    assert staged_folders() == []
    assert not AuditEvent.objects.filter(action="catalog_import.check").exists()


def test_oversize_files_are_refused_with_the_limit(client, admin, settings, catalog_folder):
    settings.CATALOG_MAX_IMPORT_BYTES = 64
    folder = catalog_folder.write()
    response = client.post("/catalog/import/", {"recordings": upload(folder / "recordings.csv")})
    page = response.content.decode()
    assert response.status_code == 200
    assert "an import file may be at most 0.0 MB" in page or "at most" in page
    assert "recordings.csv" in page
    assert staged_folders() == []


def test_a_check_is_private_to_its_admin(client, admin, catalog_folder):
    folder = catalog_folder.write()
    token = staged_token(
        client.post("/catalog/import/", {**upload_all(folder), "audio_folder": str(folder)})
    )
    client.force_login(UserFactory(role=CATALOG_ADMIN))
    assert client.get(f"/catalog/import/{token}/").status_code == 404
    assert client.post(f"/catalog/import/{token}/confirm/").status_code == 404
    assert client.get("/catalog/import/not-a-token/").status_code == 404
    assert not Recording.objects.exists()


def test_confirm_needs_post(client, admin, catalog_folder):
    folder = catalog_folder.write()
    token = staged_token(
        client.post("/catalog/import/", {**upload_all(folder), "audio_folder": str(folder)})
    )
    assert client.get(f"/catalog/import/{token}/confirm/").status_code == 405
    assert not Recording.objects.exists()


def test_import_api_check_then_confirm(catalog_folder):
    folder = catalog_folder.write()
    api = APIClient()
    admin = UserFactory(role=CATALOG_ADMIN)
    api.force_authenticate(admin)
    with (
        (folder / "rights_holders.csv").open("rb") as holders,
        (folder / "recordings.csv").open("rb") as recordings,
        (folder / "ownership_shares.csv").open("rb") as shares,
    ):
        checked = api.post(
            "/catalog/api/imports/check/",
            {
                "rights_holders": holders,
                "recordings": recordings,
                "ownership_shares": shares,
                "audio_folder": str(folder),
            },
            format="multipart",
        )
    assert checked.status_code == 202, checked.json()
    body = checked.json()
    token = body["token"]
    assert checked["Location"] == body["url"] and body["url"].endswith(f"/imports/{token}/")
    assert not Recording.objects.exists()
    body = api.get(body["url"]).json()
    assert body["status"] == "checked" and body["ok"] and body["can_confirm"]
    assert body["report"]["created"]["recordings"] == 3

    holder_api = APIClient()
    holder_api.force_authenticate(UserFactory(role=RIGHTS_HOLDER))
    assert holder_api.post(f"/catalog/api/imports/{token}/confirm/").status_code == 403

    confirmed = api.post(f"/catalog/api/imports/{token}/confirm/")
    assert confirmed.status_code == 200 and confirmed.json()["status"] == "applied"
    assert Recording.objects.count() == 3
    assert confirmed.json()["batch_id"] == ImportBatch.objects.get().pk
    again = api.post(f"/catalog/api/imports/{token}/confirm/")
    assert again.status_code == 200 and Recording.objects.count() == 3


def test_import_apis_refuse_wrong_types_and_sizes(settings):
    api = APIClient()
    api.force_authenticate(UserFactory(role=CATALOG_ADMIN))
    wrong = api.post(
        "/catalog/api/imports/check/",
        {"recordings": SimpleUploadedFile("r.txt", b"isrc\n")},
        format="multipart",
    )
    assert wrong.status_code == 400 and wrong.json()["field"] == "recordings"
    settings.CATALOG_MAX_IMPORT_BYTES = 10
    big = io.BytesIO(b"legal_name,kind\n" + b"A,artist\n" * 10)
    big.name = "rights_holders.csv"
    refused = api.post("/catalog/api/imports/", {"rights_holders": big}, format="multipart")
    assert refused.status_code == 400 and "at most" in refused.json()["message"]
    assert not RightsHolder.objects.exists()


# --- who may use the admin pages --------------------------------------------------------------


@pytest.mark.parametrize("role", [FINANCE, RIGHTS_HOLDER, None])
@pytest.mark.parametrize("url", ["/catalog/import/"])
def test_admin_pages_are_403_for_other_roles(client, role, url):
    client.force_login(UserFactory(role=role))
    assert client.get(url).status_code == 403


@pytest.mark.parametrize("role", [FINANCE, RIGHTS_HOLDER])
def test_admin_posts_are_403_for_other_roles(client, role, catalog_folder):
    client.force_login(UserFactory(role=role))
    folder = catalog_folder.write()
    assert client.post("/catalog/import/", upload_all(folder)).status_code == 403
    assert staged_folders() == []
