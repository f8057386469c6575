import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from ledger import selectors, services
from tests.ledger import factories

pytestmark = pytest.mark.django_db


def client_for(role: str, holders=()):
    user = factories.UserFactory()
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    for holder in holders:
        holder.users.add(user)
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_finance_reads_the_journal_with_postings(settled_run):
    entry = services.generation_settle(attribution_run=settled_run)
    response = client_for(FINANCE).get("/ledger/api/entries/")
    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["seq"] == entry.seq and row["hash"] == entry.hash
    assert sum(p["amount"] for p in row["postings"]) == 0
    assert len(row["postings"]) == entry.postings.count()


def test_rights_holders_see_only_their_own_balances(small_catalog, settled_run):
    _, holders = small_catalog
    services.generation_settle(attribution_run=settled_run)
    client = client_for(RIGHTS_HOLDER, holders=[holders[0]])
    assert client.get("/ledger/api/entries/").status_code == 403
    rows = client.get("/ledger/api/balances/?currency=usd").json()["results"]
    assert [r["rights_holder"] for r in rows] == [holders[0].pk]
    assert rows[0]["balance"] == selectors.holder_balance(rights_holder=holders[0], currency="USD")
    everyone = client_for(FINANCE).get("/ledger/api/balances/").json()["results"]
    assert {r["rights_holder"] for r in everyone} == {h.pk for h in holders}


def test_anonymous_users_get_nothing(settled_run):
    assert APIClient().get("/ledger/api/balances/").status_code in (401, 403)


# --- accounts, statements and payout batches (the `world` fixture: known amounts) ------------


def api_for(user) -> APIClient:
    from rest_framework.authtoken.models import Token

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_accounts_list_balances_for_finance_only(world):
    from tests.ledger.conftest import user_with_role

    finance = api_for(user_with_role(FINANCE))
    response = finance.get("/ledger/api/accounts/?currency=usd&ordering=key")
    assert response.status_code == 200
    rows = response.json()["results"]
    assert sum(r["balance"] for r in rows) == 0  # the trial balance
    by_key = {r["key"]: r for r in rows}
    payable = by_key[f"holder_payable:USD:{world.a.pk}"]
    assert payable["balance"] == -10_005_000_00 and payable["balance_display"] == "-10.00500000"
    assert payable["rights_holder"] == world.a.pk
    only = finance.get("/ledger/api/accounts/?kind=platform_revenue").json()["results"]
    assert [r["key"] for r in only] == ["platform_revenue:USD"]
    detail = finance.get(f"/ledger/api/accounts/{payable['id']}/").json()
    assert detail["balance"] == payable["balance"]
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    assert holder.get("/ledger/api/accounts/").status_code == 403
    assert APIClient().get("/ledger/api/accounts/").status_code == 401


def test_entries_filter_by_kind_and_booking_date(world):
    from django.utils import timezone

    from tests.ledger.conftest import user_with_role

    finance = api_for(user_with_role(FINANCE))
    rows = finance.get("/ledger/api/entries/?kind=reversal").json()["results"]
    assert [r["seq"] for r in rows] == [4] and rows[0]["reverses"] == 3
    today = timezone.now().date().isoformat()
    rows = finance.get(f"/ledger/api/entries/?date_from={today}&date_to={today}").json()
    assert [r["seq"] for r in rows["results"]] == [1, 2, 3, 4]
    assert (
        finance.get("/ledger/api/entries/?date_from=2000-01-01&date_to=2000-01-02").json()["count"]
        == 0
    )
    assert finance.get("/ledger/api/entries/?date_from=yesterday").status_code == 400


def test_statements_are_scoped_to_the_holder_and_downloadable(world):
    from ledger.exports import statement_csv
    from tests.ledger.conftest import user_with_role

    own = services.statement_generate(rights_holder=world.a, period=world.period, currency="USD")
    other = services.statement_generate(rights_holder=world.b, period=world.period, currency="USD")
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    rows = holder.get("/ledger/api/statements/").json()["results"]
    assert [r["id"] for r in rows] == [own.pk]
    assert rows[0]["closing_balance"] == 10_005_000_00
    assert holder.get(f"/ledger/api/statements/{other.pk}/").status_code == 404
    assert holder.get(f"/ledger/api/statements/{other.pk}/csv/").status_code == 404
    assert holder.get(f"/ledger/api/statements/{other.pk}/pdf/").status_code == 404
    response = holder.get(f"/ledger/api/statements/{own.pk}/csv/", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response.content == statement_csv(statement=own)
    pdf = holder.get(f"/ledger/api/statements/{own.pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    everyone = api_for(user_with_role(FINANCE)).get("/ledger/api/statements/").json()
    assert {r["id"] for r in everyone["results"]} == {own.pk, other.pk}
    assert APIClient().get(f"/ledger/api/statements/{own.pk}/csv/").status_code == 401
    catalog_admin = api_for(user_with_role(CATALOG_ADMIN))
    assert catalog_admin.get("/ledger/api/statements/").json()["results"] == []
    assert catalog_admin.get(f"/ledger/api/statements/{own.pk}/").status_code == 404
    # The router's format suffix reaches the download too.
    assert holder.get(f"/ledger/api/statements/{own.pk}/csv.json").content == statement_csv(
        statement=own
    )


def test_payout_batch_api_round_trip_is_audited(world):
    import csv
    import io

    from core.models import AuditEvent
    from ledger.models import PayoutBatch, PayoutLine
    from tests.ledger.conftest import user_with_role

    finance_user = user_with_role(FINANCE)
    finance = api_for(finance_user)
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    assert holder.post("/ledger/api/payout-batches/", {"currency": "USD"}).status_code == 403
    assert holder.get("/ledger/api/payout-batches/").status_code == 403

    created = finance.post(
        "/ledger/api/payout-batches/", {"currency": "usd", "threshold_minor": 100}, format="json"
    )
    assert created.status_code == 201, created.json()
    batch = created.json()
    assert batch["status"] == "draft" and batch["total_minor"] == 1500
    assert {(line["rights_holder"], line["amount"]) for line in batch["lines"]} == {
        (world.a.pk, "10.00"),
        (world.b.pk, "5.00"),
    }
    refused = finance.post("/ledger/api/payout-batches/", {"currency": "USD", "threshold_minor": 1})
    assert refused.status_code == 400 and "No rights holder" in refused.json()["message"]

    url = f"/ledger/api/payout-batches/{batch['id']}/"
    export = finance.get(f"{url}export/?fmt=csv")
    assert export.status_code == 200 and export["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [r["amount_minor"] for r in rows] == ["1000", "500"]
    assert finance.get(f"{url}export/?fmt=xlsx").content.startswith(b"PK")
    assert finance.get(f"{url}export/?fmt=pdf").status_code == 400
    assert holder.get(f"{url}export/").status_code == 403

    paid = finance.post(f"{url}mark-paid/")
    assert paid.status_code == 200 and paid.json()["status"] == "paid"
    assert len(paid.json()["entries"]) == 1
    assert finance.post(f"{url}mark-paid/").status_code == 400

    line_b = PayoutLine.objects.get(batch_id=batch["id"], rights_holder=world.b)
    other_batch_line = {"line": line_b.pk + 1000, "reason": "x"}
    assert finance.post(f"{url}fail-line/", other_batch_line).status_code == 404
    failed = finance.post(f"{url}fail-line/", {"line": line_b.pk, "reason": "IBAN closed"})
    assert failed.status_code == 200
    assert len(failed.json()["entries"]) == 2
    assert selectors.holder_balance(rights_holder=world.b, currency="USD") == 500_000_000

    actions = list(
        AuditEvent.objects.filter(actor=finance_user)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "ledger.payout_batch.create",
        "ledger.payout_batch.export",
        "ledger.payout_batch.export",
        "ledger.payout_batch.mark_paid",
        "ledger.payout_line.fail",
    ]
    assert PayoutBatch.objects.get().created_by == finance_user


def test_verify_api_runs_the_chain_check_for_finance_and_is_audited(world):
    from core.models import AuditEvent
    from tests.ledger.conftest import user_with_role

    finance_user = user_with_role(FINANCE)
    finance = api_for(finance_user)
    head = world.entries[-1]
    report = finance.post("/ledger/api/verify/", {}, format="json")
    assert report.status_code == 200, report.json()
    body = report.json()
    assert body["ok"] and body["first_break"] is None and body["entries_checked"] == 4
    assert (body["head_seq"], body["head_hash"]) == (head.seq, head.hash)
    assert set(body["trial_balance"].values()) == {0}
    anchored = finance.post(
        "/ledger/api/verify/", {"expect": [f"{head.seq}:{head.hash.upper()}"]}, format="json"
    )
    assert anchored.json()["ok"]
    broken = finance.post("/ledger/api/verify/", {"expect": [f"2:{'0' * 64}"]}, format="json")
    assert not broken.json()["ok"] and broken.json()["break_seq"] == 2
    assert "recorded anchor" in broken.json()["first_break"]
    bad = finance.post("/ledger/api/verify/", {"expect": ["not-an-anchor"]}, format="json")
    assert bad.status_code == 400
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    assert holder.post("/ledger/api/verify/", {}, format="json").status_code == 403
    runs = AuditEvent.objects.filter(action="ledger.verify").order_by("id")
    assert [(e.actor, e.after["ok"]) for e in runs] == [
        (finance_user, True),
        (finance_user, True),
        (finance_user, False),
    ]


def test_schema_documents_the_ledger_api_without_warnings():
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    with GENERATOR_STATS.silence():
        schema = SchemaGenerator().get_schema(request=None, public=True)
    messages = [*GENERATOR_STATS._warn_cache, *GENERATOR_STATS._error_cache]
    assert [m for m in messages if "ledger" in m.lower()] == []
    paths = schema["paths"]
    for path in (
        "/ledger/api/accounts/",
        "/ledger/api/statements/{id}/csv/",
        "/ledger/api/payout-batches/",
        "/ledger/api/payout-batches/{id}/export/",
        "/ledger/api/payout-batches/{id}/mark-paid/",
        "/ledger/api/payout-batches/{id}/fail-line/",
        "/ledger/api/verify/",
    ):
        assert path in paths, path
    assert (
        "text/csv"
        in paths["/ledger/api/statements/{id}/csv/"]["get"]["responses"]["200"]["content"]
    )
