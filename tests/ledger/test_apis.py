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
    from ledger.statement_exports import statement_lines_csv
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
    assert response.status_code == 200 and response.content == statement_lines_csv(statement=own)
    pdf = holder.get(f"/ledger/api/statements/{own.pk}/pdf/")
    assert pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF-")
    everyone = api_for(user_with_role(FINANCE)).get("/ledger/api/statements/").json()
    assert {r["id"] for r in everyone["results"]} == {own.pk, other.pk}
    assert APIClient().get(f"/ledger/api/statements/{own.pk}/csv/").status_code == 401
    catalog_admin = api_for(user_with_role(CATALOG_ADMIN))
    assert catalog_admin.get("/ledger/api/statements/").json()["results"] == []
    assert catalog_admin.get(f"/ledger/api/statements/{own.pk}/").status_code == 404
    # The router's format suffix reaches the download too.
    assert holder.get(f"/ledger/api/statements/{own.pk}/csv.json").content == statement_lines_csv(
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
    audit = body["audit"]
    assert audit["ok"] and audit["events_checked"] == audit["head_seq"] > 0
    tip = AuditEvent.objects.get(seq=audit["head_seq"])
    assert audit["head_hash"] == tip.hash
    wrong = finance.post(
        "/ledger/api/verify/", {"expect_audit": [f"{tip.seq}:{'0' * 64}"]}, format="json"
    ).json()
    assert not wrong["ok"] and wrong["first_break"] is None
    assert wrong["audit"]["break_seq"] == tip.seq
    assert "recorded anchor" in wrong["audit"]["first_break"]
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    assert holder.post("/ledger/api/verify/", {}, format="json").status_code == 403
    runs = AuditEvent.objects.filter(action="ledger.verify").order_by("id")
    assert [(e.actor, e.after["ok"]) for e in runs] == [
        (finance_user, True),
        (finance_user, True),
        (finance_user, False),
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
        "/ledger/api/periods/",
        "/ledger/api/periods/{id}/close/",
        "/ledger/api/statements/available/",
        "/ledger/api/statements/generate/",
    ):
        assert path in paths, path
    assert (
        "text/csv"
        in paths["/ledger/api/statements/{id}/csv/"]["get"]["responses"]["200"]["content"]
    )


# --- statements through the API alone ----------------------------------------------------------


def test_a_holder_finds_generates_and_downloads_statements_with_the_api_alone(world):
    from core.models import AuditEvent
    from ledger.exports import statement_pdf
    from ledger.models import Statement
    from ledger.statement_exports import statement_lines_csv
    from tests.ledger.conftest import user_with_role

    user = user_with_role(RIGHTS_HOLDER, [world.a])
    holder = api_for(user)
    assert holder.get("/ledger/api/statements/").json()["results"] == []  # none frozen yet
    available = holder.get("/ledger/api/statements/available/").json()
    assert available["count"] == 1
    assert available["results"] == [
        {
            "rights_holder": world.a.pk,
            "period": world.period.pk,
            "period_starts_at": world.period.starts_at.isoformat().replace("+00:00", "Z"),
            "period_ends_at": world.period.ends_at.isoformat().replace("+00:00", "Z"),
            "currency": "USD",
            "statement": None,
        }
    ]

    asked = {"rights_holder": world.a.pk, "period": world.period.pk, "currency": "usd"}
    first = holder.post("/ledger/api/statements/generate/", asked, format="json")
    assert first.status_code == 200, first.json()
    statement = Statement.objects.get()
    body = first.json()
    assert body["id"] == statement.pk and body["rights_holder"] == world.a.pk
    assert body["closing_balance"] == 10_005_000_00 and body["opening_balance"] == 0
    assert body["content_sha256"] == statement.content_sha256
    assert [line["entry"] for line in body["content"]["lines"]] == [1, 3]
    # Identical every time, through the same service as the page (one statement, one audit).
    assert holder.post("/ledger/api/statements/generate/", asked, format="json").json() == body
    page = APIClient()
    page.force_login(user)
    assert page.get(f"/ledger/statements/{world.a.pk}/{world.period.pk}/USD/").status_code == 200
    assert Statement.objects.count() == 1
    events = AuditEvent.objects.filter(action="ledger.statement.generate")
    assert [(e.actor, e.object_id) for e in events] == [(user, str(statement.pk))]

    rows = holder.get("/ledger/api/statements/available/").json()["results"]
    assert [r["statement"] for r in rows] == [statement.pk]
    assert [r["id"] for r in holder.get("/ledger/api/statements/").json()["results"]] == [
        statement.pk
    ]
    csv_file = holder.get(f"/ledger/api/statements/{statement.pk}/csv/")
    assert csv_file.content == statement_lines_csv(statement=statement)
    pdf = holder.get(f"/ledger/api/statements/{statement.pk}/pdf/")
    assert pdf.content == statement_pdf(statement=statement)


def test_statement_generation_through_the_api_keeps_the_pages_rules(world):
    from datetime import timedelta

    from django.utils import timezone

    from ledger.models import Statement
    from tests.ledger.conftest import user_with_role

    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    url = "/ledger/api/statements/generate/"

    def ask(client, rights_holder, period=world.period, currency="USD"):
        data = {"rights_holder": rights_holder.pk, "period": period.pk, "currency": currency}
        return client.post(url, data, format="json")

    # Another holder's statement does not exist for A: 404, and nothing is frozen.
    refused = ask(holder, world.b)
    assert refused.status_code == 404 and refused.json()["detail"] == "No such rights holder."
    assert (
        holder.get(f"/ledger/api/statements/available/?rights_holder={world.b.pk}").status_code
        == 404
    )
    open_period = services.statement_period_create(
        starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=1)
    )
    not_closed = ask(holder, world.a, period=open_period)
    assert not_closed.status_code == 404
    assert not_closed.json()["detail"] == "No closed statement period with this id."
    assert ask(holder, world.a, currency="EUR").status_code == 404
    assert holder.post(url, {"rights_holder": world.a.pk}, format="json").status_code == 400
    too_big = {"rights_holder": 2**70, "period": world.period.pk, "currency": "USD"}
    assert holder.post(url, too_big, format="json").status_code == 400
    catalog_admin = api_for(user_with_role(CATALOG_ADMIN))
    assert ask(catalog_admin, world.a).status_code == 404
    assert catalog_admin.get("/ledger/api/statements/available/").json()["results"] == []
    assert ask(APIClient(), world.a).status_code == 401
    assert not Statement.objects.exists()

    # Finance generates any holder's, and lists any holder's rows.
    finance = api_for(user_with_role(FINANCE))
    generated = ask(finance, world.b)
    assert generated.status_code == 200 and generated.json()["closing_balance"] == 5_000_000_00
    rows = finance.get(f"/ledger/api/statements/available/?rights_holder={world.b.pk}").json()
    assert [(r["rights_holder"], r["statement"]) for r in rows["results"]] == [
        (world.b.pk, generated.json()["id"])
    ]
    assert finance.get("/ledger/api/statements/available/").json()["results"] == []  # own: none
    narrowed = f"/ledger/api/statements/available/?rights_holder={world.b.pk}&currency=eur"
    assert finance.get(narrowed).json()["count"] == 0
    assert finance.get(narrowed.replace("eur", "usd")).json()["count"] == 1
    other_period = f"/ledger/api/statements/available/?rights_holder={world.b.pk}&period="
    assert finance.get(f"{other_period}{open_period.pk}").json()["count"] == 0


def test_a_frozen_statement_that_no_longer_matches_is_a_400_in_the_api(world):
    from attribution.models import Generation
    from tests.ledger.conftest import user_with_role

    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.b]))
    asked = {"rights_holder": world.b.pk, "period": world.period.pk, "currency": "USD"}
    assert holder.post("/ledger/api/statements/generate/", asked).status_code == 200
    Generation.objects.filter(pk=world.entries[1].generation_id).update(prompt="rewritten")
    refused = holder.post("/ledger/api/statements/generate/", asked)
    assert refused.status_code == 400
    assert "no longer matches the ledger" in refused.json()["message"]


# --- the journal's settlement provenance -------------------------------------------------------


def test_entries_carry_the_settlement_provenance(world, django_assert_max_num_queries):
    from tests.ledger.conftest import user_with_role

    finance = api_for(user_with_role(FINANCE))
    with django_assert_max_num_queries(8):  # not one query per entry
        rows = finance.get("/ledger/api/entries/").json()["results"]
    by_seq = {row["seq"]: row for row in rows}
    e1 = world.entries[0]
    settlement = e1.settlement
    provenance = by_seq[1]["settlement"]
    assert provenance == {
        "generation": settlement.generation_id,
        "attribution_run": settlement.attribution_run_id,
        "currency": "USD",
        "revenue_minor": 2001,
        "revenue": settlement.revenue,
        "pool": settlement.pool,
        "platform": settlement.platform,
        "residue": settlement.residue,
        "policy": settlement.policy,
        "score_count": 4,
        "scores_sha256": settlement.scores_sha256,
        "run_scores_sha256": settlement.run_scores_sha256,
        "checkpoint_sha256": e1.generation.model_version.checkpoint_sha256,
        "manifest_sha256": e1.generation.model_version.manifest_sha256,
        "provenance_sha256": e1.provenance_sha256,
    }
    assert provenance["policy"]["top_k"] == 1
    assert by_seq[4]["settlement"] is None  # a reversal books no split

    detail = finance.get("/ledger/api/entries/1/").json()
    assert detail["hash_ok"] is True and detail["provenance_ok"] is True
    assert detail["settlement"]["prompt"] == e1.generation.prompt
    [track] = detail["settlement"]["tracks"]
    line = settlement.tracks.select_related("recording").get()
    assert track == {
        "position": 0,
        "recording": line.recording_id,
        "isrc": line.recording.isrc,
        "title": line.recording.title,
        "weight": line.weight,
        "amount": settlement.pool,
    }
    assert detail["settlement"]["holders"] == [
        {
            "rights_holder": world.a.pk,
            "rights_holder_name": world.a.legal_name,
            "amount": 10_005_000_00,
            "tracks": [[0, 10_005_000_00]],
            "reference_parts": [],
        }
    ]
    assert detail["settlement"]["ownership_snapshot"] == settlement.ownership_snapshot
    assert finance.get("/ledger/api/entries/3/").json()["reversed_by"] == [4]
    reversal = finance.get("/ledger/api/entries/4/").json()
    assert reversal["settlement"] is None and reversal["provenance_ok"] is None
    assert reversal["hash_ok"] is True
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    assert holder.get("/ledger/api/entries/1/").status_code == 403


# --- statement periods -------------------------------------------------------------------------


def test_finance_creates_and_closes_periods_through_the_api_with_clear_refusals(world):
    from datetime import timedelta

    from django.utils import timezone

    from core.models import AuditEvent
    from ledger.models import StatementPeriod
    from tests.ledger.conftest import user_with_role

    finance_user = user_with_role(FINANCE)
    finance = api_for(finance_user)
    url = "/ledger/api/periods/"
    # Without a time zone, the ends are UTC.
    january = {"starts_at": "2020-01-01T00:00:00", "ends_at": "2020-02-01T00:00:00"}
    created = finance.post(url, january, format="json")
    assert created.status_code == 201, created.json()
    period = created.json()
    assert period["starts_at"] == "2020-01-01T00:00:00Z" and period["ends_at"] == (
        "2020-02-01T00:00:00Z"
    )
    assert period["state"] == "ended" and period["closed_at"] is None

    overlap = {"starts_at": "2020-01-15T00:00:00Z", "ends_at": "2020-03-01T00:00:00Z"}
    refused = finance.post(url, overlap, format="json")
    assert refused.status_code == 400 and refused.json() == {
        "message": "The period overlaps the existing period 2020-01-01 00:00 to 2020-02-01 "
        "00:00 UTC.",
        "field": "starts_at",
    }
    backwards = {"starts_at": "2020-03-01T00:00:00Z", "ends_at": "2020-02-01T00:00:00Z"}
    assert finance.post(url, backwards, format="json").json()["field"] == "ends_at"
    assert finance.post(url, {"starts_at": "soon"}, format="json").status_code == 400

    closed = finance.post(f"{url}{period['id']}/close/")
    assert closed.status_code == 200 and closed.json()["state"] == "closed"
    again = finance.post(f"{url}{period['id']}/close/")
    assert again.status_code == 400 and "already closed" in again.json()["message"]
    now = timezone.now()
    running = services.statement_period_create(
        starts_at=now + timedelta(days=1), ends_at=now + timedelta(days=2)
    )
    early = finance.post(f"{url}{running.pk}/close/")
    assert early.status_code == 400 and "after it has ended" in early.json()["message"]
    assert finance.post(f"{url}999999/close/").status_code == 404

    listed = finance.get(url).json()["results"]
    assert [p["id"] for p in listed] == [running.pk, world.period.pk, period["id"]]
    assert [p["state"] for p in listed] == ["future", "closed", "closed"]
    assert [p["id"] for p in finance.get(f"{url}?closed=false").json()["results"]] == [running.pk]
    assert finance.get(f"{url}{period['id']}/").json()["state"] == "closed"

    events = AuditEvent.objects.filter(action__startswith="ledger.period.", actor=finance_user)
    assert [(e.action, e.object_id) for e in events.order_by("id")] == [
        ("ledger.period.create", str(period["id"])),
        ("ledger.period.close", str(period["id"])),
    ]
    # Finance only.
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.a]))
    count = StatementPeriod.objects.count()
    march = {"starts_at": "2020-03-01T00:00:00Z", "ends_at": "2020-04-01T00:00:00Z"}
    assert holder.post(url, march, format="json").status_code == 403
    assert holder.get(url).status_code == 403
    catalog_admin = api_for(user_with_role(CATALOG_ADMIN))
    assert catalog_admin.post(f"{url}{running.pk}/close/").status_code == 403
    assert StatementPeriod.objects.count() == count
    assert APIClient().get(url).status_code == 401


# --- balances ----------------------------------------------------------------------------------


def test_balances_are_paginated_in_the_standard_shape_with_the_currency(world, monkeypatch):
    from rest_framework.pagination import PageNumberPagination

    from tests.ledger.conftest import user_with_role

    monkeypatch.setattr(PageNumberPagination, "page_size", 1)
    finance = api_for(user_with_role(FINANCE))
    first = finance.get("/ledger/api/balances/").json()
    assert first["count"] == 2 and first["currency"] == "USD" and first["previous"] is None
    assert first["next"].endswith("/ledger/api/balances/?page=2")
    second = finance.get("/ledger/api/balances/?page=2").json()
    assert second["next"] is None and second["currency"] == "USD"
    rows = first["results"] + second["results"]
    assert rows == [
        {
            "rights_holder": world.a.pk,
            "currency": "USD",
            "balance": 10_005_000_00,
            "balance_display": "10.00500000",
        },
        {
            "rights_holder": world.b.pk,
            "currency": "USD",
            "balance": 5_000_000_00,
            "balance_display": "5.00000000",
        },
    ]
    assert finance.get("/ledger/api/balances/?page=3").status_code == 404
    assert finance.get("/ledger/api/balances/?currency=eur").json() == {
        "count": 0,
        "next": None,
        "previous": None,
        "currency": "EUR",
        "results": [],
    }
    holder = api_for(user_with_role(RIGHTS_HOLDER, [world.b]))
    own = holder.get("/ledger/api/balances/").json()
    assert own["count"] == 1 and [r["rights_holder"] for r in own["results"]] == [world.b.pk]
