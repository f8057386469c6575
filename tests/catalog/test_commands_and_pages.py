"""Management commands, web pages and the Django admin for catalog admins."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from catalog.models import OptOut, Recording, RightsHolder
from core.models import AuditEvent
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from tests.catalog.factories import RecordingFactory, RightsHolderFactory, UserFactory

pytestmark = pytest.mark.django_db


class TestImportCommand:
    def test_folder(self, catalog_folder, capsys):
        user = UserFactory(username="importer")
        call_command(
            "import_catalog", "--folder", str(catalog_folder.write()), "--user", "importer"
        )
        assert Recording.objects.count() == 3
        assert "created 8" in capsys.readouterr().out
        assert AuditEvent.objects.filter(action="recording.create", actor=user).count() == 3
        with pytest.raises(CommandError, match="no user named"):
            call_command("import_catalog", "--folder", str(catalog_folder.root), "--user", "x")

    def test_kind_with_shares_file(self, catalog_folder):
        folder = catalog_folder.write()
        call_command(
            "import_catalog", "--kind", "rights_holders", str(folder / "rights_holders.csv")
        )
        assert RightsHolder.objects.count() == 2
        call_command(
            "import_catalog",
            "--kind",
            "recordings",
            str(folder / "recordings.csv"),
            "--shares",
            str(folder / "ownership_shares.csv"),
        )
        assert Recording.objects.count() == 3

    def test_dry_run_and_problems(self, catalog_folder, capsys):
        folder = catalog_folder.write()
        call_command("import_catalog", "--folder", str(folder), "--dry-run")
        assert Recording.objects.count() == 0
        catalog_folder.recordings[0][0] = "nonsense"
        catalog_folder.write()
        with pytest.raises(CommandError, match="nothing was changed"):
            call_command("import_catalog", "--folder", str(folder))
        assert "recordings: row 2, column isrc:" in capsys.readouterr().out
        assert RightsHolder.objects.count() == 0

    def test_usage_errors(self, tmp_path):
        with pytest.raises(CommandError, match="give --kind and FILE"):
            call_command("import_catalog")
        with pytest.raises(CommandError, match="is not a folder"):
            call_command("import_catalog", "--folder", str(tmp_path / "nope"))


class TestPages:
    def test_holder_sees_own_catalog_and_the_rule(self, client):
        holder = RightsHolderFactory(legal_name="Mine")
        other = RightsHolderFactory(legal_name="Someone Else")
        user = UserFactory(role=RIGHTS_HOLDER)
        holder.users.add(user)
        mine = RecordingFactory(title="My Tune", shares=[(holder, Decimal(100))])
        RecordingFactory(title="Their Tune", shares=[(other, Decimal(100))])
        client.force_login(user)
        page = client.get("/catalog/").content.decode()
        assert "My Tune" in page and "Their Tune" not in page
        assert "allowed" in page
        rule = client.get("/catalog/opt-out-rule/").content.decode()
        assert "you keep being paid" in rule
        response = client.post(
            "/catalog/opt-outs/new/",
            {
                "rights_holder": holder.pk,
                "recording": f"{mine.isrc[:2]}-{mine.isrc[2:5]}-{mine.isrc[5:7]}-{mine.isrc[7:]}",
                "effective_from": "2026-01-01",
            },
        )
        assert response.status_code == 302
        assert OptOut.objects.get().recording == mine
        page = client.get("/catalog/").content.decode()
        assert "opted out" in page and "in force" in page
        # The withdraw button posts to this page's view, not to the API's action of the
        # same name (which answered the holder with JSON).
        withdraw_url = f"/catalog/opt-outs/{OptOut.objects.get().pk}/withdraw/"
        assert f'href="{withdraw_url}"' in page
        # Withdrawing asks first: a POST without the confirmation changes nothing.
        assert client.post(withdraw_url).status_code == 400
        assert OptOut.objects.get().withdrawn_at is None
        confirm = client.get(withdraw_url).content.decode()
        assert "My Tune" in confirm and "cannot be undone" in confirm
        token = re.search(r'name="confirm" value="([^"]+)"', confirm).group(1)
        response = client.post(withdraw_url, {"confirm": token})
        assert response.status_code == 302
        assert OptOut.objects.get().withdrawn_at is not None
        assert "allowed" in client.get("/catalog/").content.decode()

    def test_my_catalog_sorts_searches_and_pages(self, client, monkeypatch):
        """A large catalog is paged (recordings by ISRC, opt-outs newest first), each
        page naming how many there are; another holder's recordings never show."""
        monkeypatch.setattr("catalog.views.PAGE_SIZE", 2)
        holder = RightsHolderFactory(legal_name="Mine")
        user = UserFactory(role=RIGHTS_HOLDER)
        holder.users.add(user)
        mine = [
            RecordingFactory(
                isrc=f"USAAA260000{n}", title=f"Tune {n}", shares=[(holder, Decimal(100))]
            )
            for n in (1, 2, 3)
        ]
        RecordingFactory(title="Their Tune", shares=[(RightsHolderFactory(), Decimal(100))])
        for recording in mine:
            OptOut.objects.create(
                rights_holder=holder, recording=recording, effective_from=date(2026, 1, 1)
            )
        client.force_login(user)

        def sections(**query) -> tuple[str, str]:
            html = client.get("/catalog/", query).content.decode()
            recordings, opt_outs = html.split("<h2>Opt-outs</h2>")
            return recordings, opt_outs

        recordings, opt_outs = sections()
        assert 'id="my-recordings"' in recordings
        assert "Tune 1" in recordings and "Tune 2" in recordings and "Tune 3" not in recordings
        assert "Page 1 of 2 (3 in all)" in recordings
        assert 'id="opt-outs"' in opt_outs
        assert "Tune 3" in opt_outs and "Tune 1" not in opt_outs  # newest first
        assert "Page 1 of 2 (3 in all)" in opt_outs
        recordings, _ = sections(page=2)
        assert "Tune 3" in recordings and "Tune 1" not in recordings
        _, opt_outs = sections(opt_outs_page=2)
        assert "Tune 1" in opt_outs and "Tune 3" not in opt_outs
        assert all("Their Tune" not in part for part in sections() + sections(page=2))

        # Sorted on the server: descending by ISRC, the first page holds the last two.
        recordings, _ = sections(sort="-isrc")
        assert "Tune 3" in recordings and "Tune 2" in recordings and "Tune 1" not in recordings
        recordings, _ = sections(sort="-isrc", page=2)
        assert "Tune 1" in recordings and "Tune 3" not in recordings
        assert "sort=-isrc" in recordings  # the page links keep the sort
        # Searched across every page, by title or by ISRC as people type it.
        for query in ("tune 3", "USAAA2600003", "US-AAA-26-00003"):
            recordings, _ = sections(q=query)
            assert "Tune 3" in recordings and "Tune 1" not in recordings, query
            assert "Page 1 of" not in recordings  # one match, one page
        recordings, _ = sections(q="Their")
        assert "No recording matches" in recordings and "Their Tune" not in recordings

    def test_holder_cannot_withdraw_another_holders_opt_out(self, client):
        user = UserFactory(role=RIGHTS_HOLDER)
        RightsHolderFactory().users.add(user)
        other_opt_out = OptOut.objects.create(
            rights_holder=RightsHolderFactory(), effective_from=date(2026, 1, 1)
        )
        client.force_login(user)
        assert client.post(f"/catalog/opt-outs/{other_opt_out.pk}/withdraw/").status_code == 404
        other_opt_out.refresh_from_db()
        assert other_opt_out.withdrawn_at is None

    def test_holder_cannot_opt_out_for_another_holder(self, client):
        user = UserFactory(role=RIGHTS_HOLDER)
        RightsHolderFactory().users.add(user)
        other = RightsHolderFactory()
        client.force_login(user)
        response = client.post(
            "/catalog/opt-outs/new/", {"rights_holder": other.pk, "effective_from": "2026-01-01"}
        )
        assert response.status_code == 200  # form error: not a choice for this user
        assert not OptOut.objects.exists()
        theirs = RecordingFactory(shares=[(other, Decimal(100))])
        mine = RecordingFactory(shares=[(user.rights_holders.get(), Decimal(100))])
        response = client.post(
            "/catalog/opt-outs/new/",
            {
                "rights_holder": user.rights_holders.get().pk,
                "recording": theirs.isrc,
                "effective_from": "2026-01-01",
            },
        )
        assert "None of your recordings has this ISRC." in response.content.decode()
        assert not OptOut.objects.exists()
        # The form names a recording by ISRC: it never lists a whole catalog.
        form = client.get("/catalog/opt-outs/new/").content.decode()
        assert 'name="recording"' in form and mine.isrc not in form

    @pytest.mark.parametrize("role", [FINANCE, RIGHTS_HOLDER])
    def test_import_page_is_for_catalog_admins_only(self, client, role):
        client.force_login(UserFactory(role=role))
        assert client.get("/catalog/import/").status_code == 403


class TestAdmin:
    @pytest.fixture
    def admin_client(self, client):
        user = UserFactory(role=CATALOG_ADMIN, is_staff=True)
        client.force_login(user)
        return client

    def test_catalog_admin_can_use_the_changelists(self, admin_client):
        recording = RecordingFactory(title="Searchable Tune")
        for url in [
            "/admin/catalog/rightsholder/",
            "/admin/catalog/recording/?q=Searchable",
            "/admin/catalog/optout/",
            "/admin/catalog/importbatch/",
            f"/admin/catalog/recording/{recording.pk}/change/",
            "/admin/catalog/rightsholder/add/",
        ]:
            response = admin_client.get(url)
            assert response.status_code == 200, url
        assert (
            "Searchable Tune"
            in admin_client.get("/admin/catalog/recording/?q=Searchable").content.decode()
        )

    def test_staff_without_the_role_is_refused(self, client):
        client.force_login(UserFactory(role=FINANCE, is_staff=True))
        assert client.get("/admin/catalog/recording/").status_code == 403

    def test_create_holder_through_admin_normalizes_and_audits(self, admin_client):
        response = admin_client.post(
            "/admin/catalog/rightsholder/add/",
            {
                "legal_name": "Admin Made",
                "kind": "publisher",
                "isni": "0000 0001 2103 2683",
                "ipi": "",
                "payout_currency": "eur",
                "contact_email": "",
                "payout_details": "",
                "is_active": "on",
            },
        )
        assert response.status_code == 302, response.context["adminform"].form.errors
        holder = RightsHolder.objects.get(legal_name="Admin Made")
        assert (holder.isni, holder.payout_currency) == ("0000000121032683", "EUR")
        assert AuditEvent.objects.filter(action="rights_holder.create", object_id=str(holder.pk))

    def test_inline_shares_must_sum_to_100(self, admin_client):
        a, b = RightsHolderFactory(), RightsHolderFactory()
        recording = RecordingFactory(shares=[(a, Decimal(100))])
        share = recording.ownership_shares.get()
        url = f"/admin/catalog/recording/{recording.pk}/change/"

        def post(rows):
            data = {
                "title": recording.title,
                "iswc": "T-034.524.680-1",
                "ownership_shares-TOTAL_FORMS": str(len(rows)),
                "ownership_shares-INITIAL_FORMS": "1",
                "ownership_shares-MIN_NUM_FORMS": "1",
                "ownership_shares-MAX_NUM_FORMS": "1000",
                "opt_outs-TOTAL_FORMS": "0",
                "opt_outs-INITIAL_FORMS": "0",
            }
            for i, (pk, holder, percent) in enumerate(rows):
                data[f"ownership_shares-{i}-id"] = pk or ""
                data[f"ownership_shares-{i}-recording"] = recording.pk
                data[f"ownership_shares-{i}-rights_holder"] = holder.pk
                data[f"ownership_shares-{i}-percent"] = percent
            return admin_client.post(url, data)

        response = post([(share.pk, a, "60"), (None, b, "30")])
        assert response.status_code == 200
        assert "sum to 90" in response.content.decode()
        assert list(recording.ownership_shares.values_list("percent", flat=True)) == [100]
        response = post([(share.pk, a, "60"), (None, b, "40")])
        assert response.status_code == 302
        assert sorted(recording.ownership_shares.values_list("percent", flat=True)) == [40, 60]
        recording.refresh_from_db()
        assert recording.iswc == "T0345246801"
        assert AuditEvent.objects.filter(action="recording.shares_set").count() == 1

    def test_opt_out_through_admin_and_withdraw_action(self, admin_client):
        holder = RightsHolderFactory()
        response = admin_client.post(
            "/admin/catalog/optout/add/",
            {
                "rights_holder": holder.pk,
                "recording": "",
                "effective_from": "2026-02-01",
                "reason": "x",
            },
        )
        assert response.status_code == 302
        opt_out = OptOut.objects.get()
        assert opt_out.effective_from == date(2026, 2, 1) and opt_out.recording is None
        admin_client.post(
            "/admin/catalog/optout/",
            {"action": "withdraw", "_selected_action": [opt_out.pk]},
        )
        opt_out.refresh_from_db()
        assert opt_out.withdrawn_at is not None
