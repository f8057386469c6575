"""The catalog API: who may read what, who may write, filtering and pagination."""

from datetime import date
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from catalog.models import OptOut, Recording, RightsHolder
from catalog.services import opt_out_create
from core.models import AuditEvent
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from tests.catalog.factories import RecordingFactory, RightsHolderFactory, UserFactory

pytestmark = pytest.mark.django_db

API = "/catalog/api"


def client_for(user):
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def admin():
    return client_for(UserFactory(role=CATALOG_ADMIN))


@pytest.fixture
def world():
    """Two holders with their own users; three recordings, one co-owned."""
    mine = RightsHolderFactory(legal_name="Mine")
    theirs = RightsHolderFactory(legal_name="Theirs")
    me = UserFactory(role=RIGHTS_HOLDER)
    mine.users.add(me)
    own = RecordingFactory(title="Own song", shares=[(mine, Decimal(100))])
    shared = RecordingFactory(
        title="Shared song", shares=[(mine, Decimal("25")), (theirs, Decimal("75"))]
    )
    other = RecordingFactory(title="Other song", shares=[(theirs, Decimal(100))])
    return {"mine": mine, "theirs": theirs, "me": me, "own": own, "shared": shared, "other": other}


def ids(response):
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


def test_anonymous_is_refused():
    response = APIClient().get(f"{API}/recordings/")
    assert response.status_code in (401, 403)


def test_rights_holder_reads_only_its_own_records(world):
    client = client_for(world["me"])
    assert ids(client.get(f"{API}/rights-holders/")) == {world["mine"].pk}
    assert ids(client.get(f"{API}/recordings/")) == {world["own"].pk, world["shared"].pk}
    assert client.get(f"{API}/recordings/{world['other'].pk}/").status_code == 404
    assert client.get(f"{API}/rights-holders/{world['theirs'].pk}/").status_code == 404


def test_finance_and_admin_read_everything(world, admin):
    finance = client_for(UserFactory(role=FINANCE))
    for client in (finance, admin):
        assert len(ids(client.get(f"{API}/recordings/"))) == 3
        assert len(ids(client.get(f"{API}/rights-holders/"))) == 2


def test_user_without_role_sees_nothing(world):
    client = client_for(UserFactory())
    assert ids(client.get(f"{API}/recordings/")) == set()


@pytest.mark.parametrize("role", [RIGHTS_HOLDER, FINANCE, None])
def test_only_catalog_admins_write(world, role):
    user = UserFactory(role=role)
    world["mine"].users.add(user)
    client = client_for(user)
    assert (
        client.post(f"{API}/rights-holders/", {"legal_name": "X", "kind": "artist"}).status_code
        == 403
    )
    assert (
        client.patch(f"{API}/rights-holders/{world['mine'].pk}/", {"legal_name": "Y"}).status_code
        == 403
    )
    assert client.patch(f"{API}/recordings/{world['own'].pk}/", {"title": "Z"}).status_code == 403
    shares = {"ownership_shares": [{"rights_holder": world["mine"].pk, "percent": "100"}]}
    assert (
        client.put(
            f"{API}/recordings/{world['shared'].pk}/shares/", shares, format="json"
        ).status_code
        == 403
    )
    assert client.post(f"{API}/imports/", {"dry_run": True}).status_code == 403
    assert RightsHolder.objects.get(pk=world["mine"].pk).legal_name == "Mine"
    assert not AuditEvent.objects.exists()


def test_admin_creates_and_updates_a_rights_holder(admin):
    response = admin.post(
        f"{API}/rights-holders/",
        {
            "legal_name": "Nova Estate",
            "kind": "estate",
            "isni": "0000 0001 2103 2683",
            "ipi": "14107338",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["isni"], body["ipi"]) == ("0000000121032683", "00014107338")
    response = admin.patch(
        f"{API}/rights-holders/{body['id']}/", {"is_active": False, "reason": "unpaid fees dispute"}
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    event = AuditEvent.objects.get(action="rights_holder.suspend")
    assert event.before["is_active"] is True and event.reason == "unpaid fees dispute"


def test_bad_identifiers_give_a_clear_400(admin):
    response = admin.post(
        f"{API}/rights-holders/", {"legal_name": "Bad", "kind": "artist", "ipi": "00014107339"}
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": "IPI name number '00014107339' has wrong check digits.",
        "field": "ipi",
    }
    assert not RightsHolder.objects.filter(legal_name="Bad").exists()


def test_admin_replaces_shares_and_bad_sums_are_refused(world, admin):
    url = f"{API}/recordings/{world['shared'].pk}/shares/"
    bad = {"ownership_shares": [{"rights_holder": world["mine"].pk, "percent": "50"}]}
    response = admin.put(url, bad, format="json")
    assert response.status_code == 400
    assert "sum to 50" in response.json()["message"]
    good = {
        "ownership_shares": [
            {"rights_holder": world["mine"].pk, "percent": "33.3333"},
            {"rights_holder": world["theirs"].pk, "percent": "66.6667"},
        ]
    }
    response = admin.put(url, good, format="json")
    assert response.status_code == 200
    assert sorted(s["percent"] for s in response.json()["ownership_shares"]) == [
        "33.3333",
        "66.6667",
    ]


def test_filtering_and_search(world, admin):
    assert ids(admin.get(f"{API}/recordings/", {"rights_holder": world["theirs"].pk})) == {
        world["shared"].pk,
        world["other"].pk,
    }
    assert ids(admin.get(f"{API}/recordings/", {"title": "own"})) == {world["own"].pk}
    assert ids(admin.get(f"{API}/recordings/", {"search": world["other"].isrc})) == {
        world["other"].pk
    }
    assert ids(admin.get(f"{API}/rights-holders/", {"kind": "label"})) == set()
    opt_out_create(rights_holder=world["theirs"], effective_from=date(2020, 1, 1), actor=None)
    assert ids(admin.get(f"{API}/recordings/", {"opted_out": "true"})) == {
        world["shared"].pk,
        world["other"].pk,
    }
    assert ids(admin.get(f"{API}/recordings/", {"opted_out": "false"})) == {world["own"].pk}


def test_recordings_are_paged_by_cursor_in_the_asked_order(admin, monkeypatch):
    """Every recording once, in order, following ``next``; equal titles by ISRC; back
    with ``previous``; a forged cursor is a 404, not an error."""
    from catalog.apis.recordings import RecordingPagination

    monkeypatch.setattr(RecordingPagination, "page_size", 2)
    recordings = [RecordingFactory(title=f"Same {n % 2}") for n in range(5)]
    for ordering, key, reverse in [
        ("", lambda r: r.isrc, False),
        ("-title", lambda r: (r.title, r.isrc), True),
        ("title", lambda r: (r.title, r.isrc), False),
    ]:
        url, pages, seen = f"{API}/recordings/?ordering={ordering}", [], []
        while url:
            body = admin.get(url).json()
            assert "count" not in body and len(body["results"]) <= 2
            pages.append(body)
            seen += [r["isrc"] for r in body["results"]]
            url = body["next"]
        assert seen == [r.isrc for r in sorted(recordings, key=key, reverse=reverse)]
        assert len(pages) == 3 and pages[0]["previous"] is None
        back = admin.get(pages[2]["previous"]).json()
        assert [r["isrc"] for r in back["results"]] == seen[2:4]
        assert admin.get(back["previous"]).json()["results"] == pages[0]["results"]
    for forged in ["bm90LWEtY3Vyc29y", "eyJ2IjpbIngiLCJ5Il0sInAiOmZhbHNlfQ=="]:
        response = admin.get(f"{API}/recordings/", {"cursor": forged, "ordering": "created_at"})
        assert response.status_code == 404


class TestOptOutApi:
    def test_holder_opts_out_its_own_recording(self, world):
        client = client_for(world["me"])
        response = client.post(
            f"{API}/opt-outs/",
            {
                "rights_holder": world["mine"].pk,
                "recording": world["own"].pk,
                "effective_from": "2026-03-01",
            },
        )
        assert response.status_code == 201, response.content
        assert response.json()["scope"] == "recording"
        assert ids(client.get(f"{API}/opt-outs/")) == {response.json()["id"]}
        withdraw = client.post(f"{API}/opt-outs/{response.json()['id']}/withdraw/")
        assert withdraw.status_code == 200 and withdraw.json()["withdrawn_at"]

    def test_holder_withdraws_through_the_json_suffix_url(self, world):
        """The router's ``.json`` twin of the action works like the plain URL (it was a
        TypeError, 500, while the action took no ``format`` argument)."""
        opt_out = opt_out_create(
            rights_holder=world["mine"], recording=None, effective_from=date(2026, 3, 1), actor=None
        )
        client = client_for(world["me"])
        withdraw = client.post(f"{API}/opt-outs/{opt_out.pk}/withdraw.json")
        assert withdraw.status_code == 200 and withdraw.json()["withdrawn_at"]
        opt_out.refresh_from_db()
        assert opt_out.withdrawn_at is not None

    def test_holder_cannot_opt_out_for_someone_else(self, world):
        client = client_for(world["me"])
        response = client.post(f"{API}/opt-outs/", {"rights_holder": world["theirs"].pk})
        assert response.status_code == 403
        assert not OptOut.objects.exists()

    def test_holder_does_not_see_other_holders_opt_outs(self, world, admin):
        opt_out_create(rights_holder=world["theirs"], effective_from=date(2026, 1, 1), actor=None)
        assert ids(client_for(world["me"]).get(f"{API}/opt-outs/")) == set()
        assert len(ids(admin.get(f"{API}/opt-outs/"))) == 1


@pytest.mark.django_db(transaction=True)  # the tasks are sent when the request commits
class TestImportApi:
    @pytest.fixture(autouse=True)
    def data_dir(self, settings, tmp_path):
        settings.DATA_DIR = tmp_path / "data"

    def test_upload_with_problems_returns_the_report(self, admin, catalog_folder):
        catalog_folder.shares[0][2] = "x"
        folder = catalog_folder.write()
        with (
            (folder / "rights_holders.csv").open("rb") as holders,
            (folder / "recordings.csv").open("rb") as recordings,
            (folder / "ownership_shares.csv").open("rb") as shares,
        ):
            response = admin.post(
                f"{API}/imports/",
                {
                    "rights_holders": holders,
                    "recordings": recordings,
                    "ownership_shares": shares,
                    "base_dir": str(folder),
                },
                format="multipart",
            )
        assert response.status_code == 202
        body = admin.get(response["Location"]).json()
        assert body["status"] == "checked" and body["ok"] is False
        assert body["report"]["problems"] == [
            {
                "file": "ownership_shares",
                "row": 2,
                "column": "percent",
                "problem": "share 'x' is not a number",
            }
        ]
        assert not Recording.objects.exists()

    def test_folder_import_dry_run_then_apply(self, admin, catalog_folder):
        folder = catalog_folder.write()
        response = admin.post(
            f"{API}/imports/", {"folder": str(folder), "dry_run": True}, format="json"
        )
        assert response.status_code == 202
        body = admin.get(response["Location"]).json()
        assert body["status"] == "checked" and body["report"]["dry_run"] is True
        assert body["report"]["created"]["recordings"] == 3
        assert not Recording.objects.exists()
        response = admin.post(f"{API}/imports/", {"folder": str(folder)}, format="json")
        assert response.status_code == 202
        body = admin.get(response["Location"]).json()
        assert body["status"] == "applied" and body["report"]["applied"] is True
        assert Recording.objects.count() == 3
