"""The ledger's pages: each role sees its own data, others get 404/403, actions are audited."""

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from attribution.models import Generation
from catalog.models import Recording
from core.models import AuditEvent
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from ledger import selectors, services
from ledger.hashing import timestamp_canonical
from ledger.models import JournalEntry, PayoutBatch, PayoutLine, Statement, StatementPeriod
from ledger.money import ACCRUAL_SCALE
from tests.conftest import APP_ROLE
from tests.ledger import factories
from tests.ledger.conftest import FORMULA_PROMPT, settle_known, user_with_role

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def statement_url(world, holder=None, suffix=""):
    holder = holder or world.a
    return f"/ledger/statements/{holder.pk}/{world.period.pk}/USD/{suffix}"


def confirmed(client, url, data=None, **kwargs):
    """POST ``url`` as the confirmation page does: with the token of what it showed (the
    page is fetched by GET, or, for a form that posts its fields first, by that POST)."""
    data = dict(data or {})
    shown = client.post(url, data) if data else client.get(url)
    assert shown.status_code == 200, shown.status_code
    token = re.search(r'name="confirm" value="([^"]+)"', shown.content.decode()).group(1)
    return client.post(url, data | {"confirm": token}, **kwargs)


def main_html(response) -> str:
    """The page without its per-request CSRF tokens."""
    html = response.content.decode()
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", html)


def kpi(html: str, testid: str) -> tuple[str, str]:
    """(exact value, what is shown) of the amount marked ``data-testid=testid``."""
    match = re.search(rf'data-testid="{testid}" data-exact="([^"]+)"><span [^>]*>([^<]+)<', html)
    assert match, testid
    return match.group(1), match.group(2)


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", "", html)


# --- rights holders --------------------------------------------------------------------------


def test_dashboard_shows_balance_earnings_chart_and_next_payout(world):
    page = logged_in(user_with_role(RIGHTS_HOLDER, [world.a])).get("/ledger/")
    assert page.status_code == 200
    html = page.content.decode()
    assert world.a.legal_name in html and world.b.legal_name not in html
    # 10.005 + 5.00 - 5.00 (reversed): all booked this calendar month, none paid yet.
    assert kpi(html, "balance-USD") == ("10.00500000", "$10.01")
    assert kpi(html, "earned-USD") == ("10.00500000", "$10.01")
    assert 'title="exactly 10.00500000 USD"' in html
    assert "<svg" in html and 'aria-label="Earnings per month in USD"' in html
    # 1000 whole cents reach the 10.00 USD minimum (LEDGER_PAYOUT_MINIMUM_MINOR).
    payout = html[html.index('data-testid="payout-USD"') :]
    assert "$10.00</span></div>" in payout[:400] and "in the next payout batch" in payout[:600]


def test_dashboard_says_what_is_missing_below_the_payout_minimum(world):
    html = logged_in(user_with_role(RIGHTS_HOLDER, [world.b])).get("/ledger/").content.decode()
    assert kpi(html, "balance-USD") == ("5.00000000", "$5.00")
    text = text_of(html)
    assert "$5.00 of $10.00" in text and "$5.00 more to reach the payout minimum" in text


def test_a_draft_batch_is_shown_as_reserved(world):
    services.payout_batch_create(currency="USD", threshold_minor=100)
    html = logged_in(user_with_role(RIGHTS_HOLDER, [world.a])).get("/ledger/").content.decode()
    text = text_of(html)
    assert "$10.00 is already in a payout batch awaiting payment" in text
    assert "$0.00 of $10.00" in text


def test_dashboard_of_another_holder_is_404_and_finance_may_open_it(world):
    holder_a = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    assert holder_a.get(f"/ledger/?holder={world.b.pk}").status_code == 404
    assert holder_a.get("/ledger/?holder=x").status_code == 404
    finance = logged_in(user_with_role(FINANCE))
    page = finance.get(f"/ledger/?holder={world.b.pk}")
    assert page.status_code == 200 and world.b.legal_name in page.content.decode()


def test_users_who_act_for_no_holder(world):
    assert logged_in(user_with_role(FINANCE)).get("/ledger/").url == "/ledger/journal/"
    statements = logged_in(user_with_role(FINANCE)).get("/ledger/statements/")
    assert "pick a holder on" in statements.content.decode()  # finance may open any holder's
    for user in (
        user_with_role(CATALOG_ADMIN),
        user_with_role(RIGHTS_HOLDER),
        factories.UserFactory(),
    ):
        client = logged_in(user)
        for url in ("/ledger/", "/ledger/statements/"):
            page = client.get(url)
            assert page.status_code == 200
            assert "do not act for any rights holder" in page.content.decode()
            assert world.a.legal_name not in page.content.decode()
        for suffix in ("", "csv/", "pdf/"):
            assert client.get(statement_url(world, suffix=suffix)).status_code == 404
    assert not Statement.objects.exists()


def test_anonymous_users_are_sent_to_log_in(world):
    for url in ("/ledger/", "/ledger/statements/", statement_url(world), "/ledger/journal/"):
        response = Client().get(url)
        assert response.status_code == 302 and response.url.startswith("/accounts/login/"), url


def test_statement_list_links_each_closed_period(world):
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    open_period = services.statement_period_create(
        starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=30)
    )
    html = client.get("/ledger/statements/").content.decode()
    assert statement_url(world) in html and statement_url(world, suffix="csv/") in html
    assert f"/{open_period.pk}/USD/" not in html  # statements exist for closed periods only
    assert "on first opening" in html
    client.get(statement_url(world))
    html = client.get("/ledger/statements/").content.decode()
    assert "10.00500000" in html and "on first opening" not in html


def test_statement_page_is_identical_each_time_it_is_opened(world):
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    first = client.get(statement_url(world))
    assert first.status_code == 200
    # More business after the period does not change the period's statement.
    settle_known(world.entries[0].generation.model_version, heaviest=0, revenue_minor=5000)
    second = client.get(statement_url(world))
    assert main_html(first) == main_html(second)
    html = main_html(first)
    assert kpi(html, "opening") == ("0.00000000", "$0.00")
    assert kpi(html, "closing") == ("10.00500000", "$10.01")
    assert "Reversal of #3: duplicate generation" in html
    assert "=HYPERLINK" in html  # shown as text on the page (autoescaped)
    statement = Statement.objects.get()
    assert statement.content_sha256 in html
    assert AuditEvent.objects.filter(action="ledger.statement.generate").count() == 1


def test_statement_csv_has_one_exact_row_per_generation_and_track(world):
    """The flat CSV: one row per generation and track (a reversal as its negative), exact
    amounts, summing to the statement's net earnings; a formula title is neutralised."""
    e1, _, e3, e4 = world.entries
    Recording.objects.filter(pk=e1.settlement.tracks.get().recording_id).update(
        title=FORMULA_PROMPT
    )
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    response = client.get(statement_url(world, suffix="csv/"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    day = f"{world.period.starts_at:%Y-%m-%d}"
    assert response["Content-Disposition"] == (
        f'attachment; filename="statement-{world.a.pk}-{day}-USD.csv"'
    )
    statement = Statement.objects.get()
    t1, t3 = e1.settlement.tracks.get(), e3.settlement.tracks.get()
    head = (
        f"{statement.pk},{world.a.pk},{timestamp_canonical(world.period.starts_at)},"
        f"{timestamp_canonical(world.period.ends_at)},USD"
    )
    expected = (
        "statement,rights_holder,period_start,period_end,currency,kind,entry,date,generation,"
        "attribution_run,isrc,title,ownership_share_percent,share_of_pool_percent,amount,basis\n"
        f"{head},earning,1,{timestamp_canonical(e1.generation.created_at)},{e1.generation_id},"
        f'{e1.attribution_run_id},{t1.recording.isrc},"\'=HYPERLINK(""http://evil"",""x"")",'
        "100.0000,100,10.00500000,training influence\n"
        f"{head},earning,3,{timestamp_canonical(e3.generation.created_at)},{e3.generation_id},"
        f"{e3.attribution_run_id},{t3.recording.isrc},{t3.recording.title},100.0000,100,"
        "5.00000000,training influence\n"
        f"{head},reversal,4,{timestamp_canonical(e4.effective_at)},{e3.generation_id},"
        f"{e3.attribution_run_id},{t3.recording.isrc},{t3.recording.title},100.0000,-100,"
        "-5.00000000,training influence\n"
    )
    assert response.content.decode() == expected
    rows = list(csv.DictReader(io.StringIO(expected)))
    content = statement.content
    assert sum(Decimal(r["amount"]) for r in rows) == Decimal(
        content["closing_balance_display"]
    ) - Decimal(content["opening_balance_display"])


def test_statement_pdf_is_a_deterministic_pdf(world):
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    first = client.get(statement_url(world, suffix="pdf/"))
    second = client.get(statement_url(world, suffix="pdf/"))
    assert first.status_code == 200 and first["Content-Type"] == "application/pdf"
    assert first.content.startswith(b"%PDF-") and first.content.rstrip().endswith(b"%%EOF")
    assert first.content == second.content
    assert b"/Title (Royalty statement " in first.content or b"/Title <" in first.content
    assert first["Content-Disposition"].endswith('.pdf"')


def test_another_holders_statement_and_its_downloads_are_404(world):
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    for suffix in ("", "csv/", "pdf/"):
        assert client.get(statement_url(world, world.b, suffix)).status_code == 404, suffix
    assert client.get(f"/ledger/statements/?holder={world.b.pk}").status_code == 404
    assert Statement.objects.filter(rights_holder=world.b).count() == 0  # nothing was frozen
    # A period that is still open, and a currency the holder never had, do not exist either.
    open_period = services.statement_period_create(
        starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=1)
    )
    assert client.get(f"/ledger/statements/{world.a.pk}/{open_period.pk}/USD/").status_code == 404
    assert client.get(statement_url(world).replace("/USD/", "/EUR/")).status_code == 404
    # Finance reads every holder's statement.
    finance = logged_in(user_with_role(FINANCE))
    assert finance.get(statement_url(world, world.b)).status_code == 200


# --- finance pages ---------------------------------------------------------------------------

FINANCE_PAGES = (
    "/ledger/journal/",
    "/ledger/accounts/",
    "/ledger/verify/",
    "/ledger/payouts/",
    "/ledger/periods/",
)


def test_finance_pages_are_403_for_other_roles_and_actions_refused(world):
    batch = services.payout_batch_create(currency="USD", threshold_minor=100)
    line = batch.lines.first()
    ended = services.statement_period_create(
        starts_at=timezone.now() - timedelta(days=400), ends_at=timezone.now() - timedelta(days=300)
    )
    pages = (*FINANCE_PAGES, "/ledger/journal/1/", f"/ledger/payouts/{batch.pk}/")
    actions = (
        (f"/ledger/payouts/{batch.pk}/export/", {"fmt": "csv"}),
        (f"/ledger/payouts/{batch.pk}/mark-paid/", {}),
        (f"/ledger/payouts/lines/{line.pk}/fail/", {"reason": "x"}),
        ("/ledger/payouts/", {"currency": "USD"}),
        ("/ledger/verify/", {}),
        ("/ledger/periods/", {"starts_at": "2020-01-01 00:00", "ends_at": "2020-02-01 00:00"}),
        (f"/ledger/periods/{ended.pk}/close/", {}),
    )
    for role, holders in ((RIGHTS_HOLDER, [world.a]), (CATALOG_ADMIN, [])):
        client = logged_in(user_with_role(role, holders))
        for url in pages:
            assert client.get(url).status_code == 403, (role, url)
        for url, data in actions:
            assert client.post(url, data).status_code == 403, (role, url)
    for url in pages:
        assert Client().get(url).url.startswith("/accounts/login/")
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.DRAFT
    assert PayoutBatch.objects.count() == 1
    assert not AuditEvent.objects.filter(
        action__in=[
            "ledger.payout_batch.export",
            "ledger.verify",
            "ledger.payout_line.fail",
        ]
    ).exists()
    assert not AuditEvent.objects.filter(action__startswith="ledger.period.", actor__isnull=False)
    ended.refresh_from_db()
    assert ended.closed_at is None and StatementPeriod.objects.count() == 2


def test_journal_lists_entries_with_provenance_and_filters(world):
    client = logged_in(user_with_role(FINANCE))
    html = client.get("/ledger/journal/").content.decode()
    for entry in world.entries:
        assert f'href="/ledger/journal/{entry.seq}/"' in html
    assert world.entries[0].checkpoint_sha256[:12] in html
    assert "20.01000000 USD" in html  # entry 1 moves the generation's revenue
    reversals = client.get("/ledger/journal/?kind=reversal").content.decode()
    assert 'href="/ledger/journal/4/"' in reversals
    assert 'href="/ledger/journal/1/"' not in reversals
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    later = client.get(f"/ledger/journal/?date_from={tomorrow}").content.decode()
    assert "No journal entries match the filter" in later
    today = timezone.now().date().isoformat()
    same_day = client.get(f"/ledger/journal/?date_from={today}&date_to={today}&currency=usd")
    assert 'href="/ledger/journal/1/"' in same_day.content.decode()


def test_journal_is_paginated_by_50(world):
    model_version = world.entries[0].generation.model_version
    for _ in range(47):  # 4 + 47 = 51 entries
        settle_known(model_version, heaviest=1, revenue_minor=10)
    client = logged_in(user_with_role(FINANCE))
    first = client.get("/ledger/journal/").content.decode()
    entry_link = re.compile(r'href="/ledger/journal/\d+/"')
    assert len(entry_link.findall(first)) == 50 and "Page 1 of 2" in first
    second = client.get("/ledger/journal/?page=2&kind=").content.decode()
    assert entry_link.findall(second) == ['href="/ledger/journal/1/"']


def test_entry_detail_shows_postings_and_recomputed_provenance(world):
    e1 = world.entries[0]
    html = logged_in(user_with_role(FINANCE)).get(f"/ledger/journal/{e1.seq}/").content.decode()
    settlement = e1.settlement
    for value in (
        settlement.checkpoint_sha256,
        settlement.scores_sha256,
        settlement.provenance_sha256,
        e1.hash,
        e1.prev_hash,
    ):
        assert value in html
    assert html.count('class="badge ok"') == 2  # entry hash and provenance hash recompute
    assert "Reversed by" not in html
    for posting in e1.postings.select_related("account"):
        assert posting.account.key in html
    client = logged_in(user_with_role(FINANCE))
    assert "Reversed by" in client.get("/ledger/journal/3/").content.decode()
    assert client.get("/ledger/journal/99/").status_code == 404


def test_accounts_page_shows_balances_and_a_zero_trial_balance(world):
    html = logged_in(user_with_role(FINANCE)).get("/ledger/accounts/").content.decode()
    assert f"holder_payable:USD:{world.a.pk}" in html
    assert "USD: 0.00000000" in html and "balanced" in html
    assert "10.00500000" in html  # A's payable (a credit)
    filtered = logged_in(user_with_role(FINANCE)).get("/ledger/accounts/?kind=platform_revenue")
    assert f"holder_payable:USD:{world.a.pk}" not in filtered.content.decode()


def test_verify_runs_the_chain_check_and_is_audited(world):
    finance = user_with_role(FINANCE)
    client = logged_in(finance)
    assert client.get("/ledger/verify/").status_code == 200
    html = client.post("/ledger/verify/").content.decode()
    assert "The ledger verifies" in html
    assert re.search(r'data-testid="entries-checked">4<', html)
    head = world.entries[-1]
    assert f"4:{head.hash}" in html
    event = AuditEvent.objects.get(action="ledger.verify")
    assert event.actor == finance and event.after["ok"] and event.after["entries_checked"] == 4
    # An anchor recorded earlier that the chain no longer holds is the first failure.
    html = client.post("/ledger/verify/", {"expect": f"2:{'0' * 64}"}).content.decode()
    assert "The ledger does not verify" in html
    assert "entry #2: hash differs from the recorded anchor" in html
    assert AuditEvent.objects.filter(action="ledger.verify", after__ok=False).count() == 1
    html = client.post("/ledger/verify/", {"expect": "not-an-anchor"}).content.decode()
    assert "is not SEQ:HASH" in html
    assert AuditEvent.objects.filter(action="ledger.verify").count() == 2


def test_verify_page_shows_the_audit_trails_head_and_its_first_break(world):
    client = logged_in(user_with_role(FINANCE))
    html = client.post("/ledger/verify/").content.decode()
    tip = AuditEvent.objects.order_by("-seq").first()  # the run just recorded
    previous = AuditEvent.objects.get(seq=tip.seq - 1)
    assert f'data-testid="audit-head">{previous.seq}:{previous.hash}<' in html
    with connection.cursor() as cursor:  # a superuser's edit, triggers off (tests/conftest.py)
        cursor.execute("SET LOCAL ROLE NONE")
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("UPDATE core_auditevent SET reason = 'edited' WHERE seq = 1")
        cursor.execute("SET LOCAL session_replication_role = origin")
        cursor.execute(f"SET LOCAL ROLE {APP_ROLE}")
    html = client.post("/ledger/verify/").content.decode()
    assert "The ledger does not verify" in html
    assert 'data-testid="audit-first-break">audit event #1: content does not match' in html
    assert 'data-testid="first-break"' not in html  # the journal itself is intact


def test_payout_batch_pages_create_export_pay_and_fail_a_line_all_audited(world):
    finance = user_with_role(FINANCE)
    client = logged_in(finance)
    response = client.post("/ledger/payouts/", {"currency": "usd", "threshold": "1.00"})
    batch = PayoutBatch.objects.get()
    assert response.status_code == 302 and response.url == f"/ledger/payouts/{batch.pk}/"
    assert batch.threshold_minor == 100 and batch.created_by == finance
    lines = {line.rights_holder_id: line for line in batch.lines.all()}
    assert {h: line.amount_minor for h, line in lines.items()} == {
        world.a.pk: 1000,
        world.b.pk: 500,
    }
    review = client.get(response.url).content.decode()
    assert "15.00 USD" in review and world.a.legal_name in review and "Mark paid" in review

    export = client.post(f"/ledger/payouts/{batch.pk}/export/", {"fmt": "csv"})
    assert export["Content-Disposition"] == f'attachment; filename="payout-batch-{batch.pk}.csv"'
    rows = list(csv.DictReader(io.StringIO(export.content.decode())))
    assert [(int(r["rights_holder_id"]), r["amount"]) for r in rows] == [
        (world.a.pk, "10.00"),
        (world.b.pk, "5.00"),
    ]
    xlsx = client.post(f"/ledger/payouts/{batch.pk}/export/", {"fmt": "xlsx"})
    assert xlsx.content.startswith(b"PK")  # a zip container
    assert client.get(f"/ledger/payouts/{batch.pk}/export/").status_code == 405

    paid = confirmed(client, f"/ledger/payouts/{batch.pk}/mark-paid/")
    assert paid.url == f"/ledger/payouts/{batch.pk}/"
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.PAID
    assert selectors.holder_balance(rights_holder=world.a, currency="USD") == 500_000
    again = client.get(f"/ledger/payouts/{batch.pk}/mark-paid/")
    assert "is already paid: there is nothing to mark" in again.content.decode()

    line_b = lines[world.b.pk]
    confirmed(client, f"/ledger/payouts/lines/{line_b.pk}/fail/", {"reason": "IBAN closed"})
    line_b.refresh_from_db()
    assert line_b.status == PayoutLine.Status.FAILED and line_b.failure_reason == "IBAN closed"
    assert selectors.holder_balance(rights_holder=world.b, currency="USD") == 500 * ACCRUAL_SCALE
    page = client.get(f"/ledger/payouts/{batch.pk}/").content.decode()
    assert "IBAN closed" in page and "Payout line failed" in page

    trail = AuditEvent.objects.filter(actor=finance).order_by("id")
    assert [(e.action, e.object_id) for e in trail] == [
        ("ledger.payout_batch.create", str(batch.pk)),
        ("ledger.payout_batch.export", str(batch.pk)),
        ("ledger.payout_batch.export", str(batch.pk)),
        ("ledger.payout_batch.mark_paid", str(batch.pk)),
        ("ledger.payout_line.fail", str(line_b.pk)),
    ]
    assert trail[1].after["format"] == "csv" and trail[2].after["format"] == "xlsx"
    assert selectors.ledger_verify().ok


def test_payout_batch_lines_are_paged_and_the_totals_cover_all_of_them(world, monkeypatch):
    monkeypatch.setattr("ledger.views.PAGE_SIZE", 1)
    client = logged_in(user_with_role(FINANCE))
    client.post("/ledger/payouts/", {"currency": "USD", "threshold": "1.00"})
    batch = PayoutBatch.objects.get()
    first = client.get(f"/ledger/payouts/{batch.pk}/").content.decode()
    second = client.get(f"/ledger/payouts/{batch.pk}/", {"page": 2}).content.decode()
    for page in (first, second):
        assert "15.00 USD" in page and "Page " in page and "of 2 (2 in all)" in page
    lines = [page.split('id="payout-lines"')[1].split("<tfoot>")[0] for page in (first, second)]
    holders = [sum(h.legal_name in part for h in (world.a, world.b)) for part in lines]
    assert holders == [1, 1] and lines[0] != lines[1]


def test_payout_create_form_errors(world):
    client = logged_in(user_with_role(FINANCE))
    finer = client.post("/ledger/payouts/", {"currency": "USD", "threshold": "0.001"})
    assert "finer than the currency" in finer.content.decode()
    too_high = client.post("/ledger/payouts/", {"currency": "USD", "threshold": "1000"})
    assert "No rights holder is owed at least $1,000.00" in too_high.content.decode()
    assert "USD minor units" not in too_high.content.decode()
    bad = client.post("/ledger/payouts/", {"currency": "US"})
    assert "three-letter currency code" in bad.content.decode()
    assert not PayoutBatch.objects.exists()


def test_payout_for_a_period_pays_only_what_was_earned_by_its_end(world):
    model_version = world.entries[0].generation.model_version
    settle_known(model_version, heaviest=0, revenue_minor=4000)  # A earns 20.00 after the period
    client = logged_in(user_with_role(FINANCE))
    client.post(
        "/ledger/payouts/", {"currency": "USD", "threshold": "1", "period": world.period.pk}
    )
    batch = PayoutBatch.objects.get()
    assert batch.period == world.period
    assert dict(batch.lines.values_list("rights_holder_id", "amount_minor")) == {
        world.a.pk: 1000,
        world.b.pk: 500,
    }


def test_finance_actions_need_a_csrf_token(world):
    batch = services.payout_batch_create(currency="USD", threshold_minor=100)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_with_role(FINANCE))
    assert client.post(f"/ledger/payouts/{batch.pk}/mark-paid/").status_code == 403
    assert client.post("/ledger/verify/").status_code == 403
    assert client.post("/ledger/periods/", {"starts_at": "2020-01-01 00:00"}).status_code == 403
    assert client.post(f"/ledger/periods/{world.period.pk}/close/").status_code == 403
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.DRAFT
    assert not JournalEntry.objects.filter(kind=JournalEntry.Kind.PAYOUT).exists()


def test_a_frozen_statement_that_no_longer_matches_is_refused(world):
    """The statement is shown only while the ledger still yields exactly its content."""
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.b]))
    assert client.get(statement_url(world, world.b)).status_code == 200
    # Someone rewrites the prompt of a generation the statement was built from.
    Generation.objects.filter(pk=world.entries[1].generation_id).update(prompt="rewritten")
    response = client.get(statement_url(world, world.b))
    assert response.status_code == 409
    assert "no longer matches the ledger" in response.content.decode()
    assert client.get(statement_url(world, world.b, "csv/")).status_code == 409


# --- finance: statement periods --------------------------------------------------------------


def test_periods_page_lists_periods_and_offers_the_next_one(world):
    client = logged_in(user_with_role(FINANCE))
    page = client.get("/ledger/periods/")
    assert page.status_code == 200
    html = page.content.decode()
    periods = html.split('id="periods"')[1]
    assert f"{world.period.starts_at:%Y-%m-%d %H:%M}" in periods and "Closed" in periods
    assert "Close period" not in periods  # the only period is closed already
    # The form offers the next period from the end of the latest one.
    starts = re.search(r'<input type="datetime-local" name="starts_at" value="([^"]+)"', html)
    assert starts.group(1) == f"{world.period.ends_at:%Y-%m-%dT%H:%M}"
    # Reached from the finance pages and the navigation.
    assert 'href="/ledger/periods/"' in client.get("/ledger/payouts/").content.decode()
    nav = html.split('class="site-nav"')[1].split("</nav>")[0]
    assert 'href="/ledger/periods/" aria-current="page"' in nav


def test_periods_page_creates_and_closes_periods_with_clear_errors_all_audited(world):
    finance = user_with_role(FINANCE)
    client = logged_in(finance)
    january = {"starts_at": "2020-01-01T00:00", "ends_at": "2020-02-01T00:00"}
    created = client.post("/ledger/periods/", january)
    assert created.status_code == 302 and created.url == "/ledger/periods/"
    period = StatementPeriod.objects.get(starts_at__year=2020)
    assert (period.starts_at.isoformat(), period.ends_at.isoformat()) == (
        "2020-01-01T00:00:00+00:00",
        "2020-02-01T00:00:00+00:00",
    )
    page = client.get("/ledger/periods/").content.decode()
    assert "created (open)" in page and f"Close period {period.pk}" in page

    overlap = client.post(
        "/ledger/periods/", {"starts_at": "2020-01-15T00:00", "ends_at": "2020-03-01T00:00"}
    )
    assert overlap.status_code == 200
    assert (
        "The period overlaps the existing period 2020-01-01 00:00 to 2020-02-01 00:00 UTC."
        in overlap.content.decode()
    )
    backwards = client.post(
        "/ledger/periods/", {"starts_at": "2020-03-01T00:00", "ends_at": "2020-02-01T00:00"}
    )
    assert "A period must end after it starts." in backwards.content.decode()
    assert "This field is required." in client.post("/ledger/periods/", {}).content.decode()
    assert StatementPeriod.objects.count() == 2

    # A statement exists once its period is closed.
    holder = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    january_statement = f"/ledger/statements/{world.a.pk}/{period.pk}/USD/"
    assert holder.get(january_statement).status_code == 404
    closed = confirmed(client, f"/ledger/periods/{period.pk}/close/", follow=True)
    period.refresh_from_db()
    assert period.closed_at is not None
    assert "closed: its statements can now be opened" in closed.content.decode()
    again = confirmed(client, f"/ledger/periods/{period.pk}/close/", follow=True)
    assert "is already closed (since" in again.content.decode()
    running = services.statement_period_create(
        starts_at=timezone.now(), ends_at=timezone.now() + timedelta(days=1)
    )
    early = confirmed(client, f"/ledger/periods/{running.pk}/close/", follow=True)
    assert "can only be closed after it has ended" in early.content.decode()
    running.refresh_from_db()
    assert running.closed_at is None
    assert client.post("/ledger/periods/999999/close/").status_code == 404

    assert holder.get(january_statement).status_code == 200
    trail = AuditEvent.objects.filter(actor=finance, action__startswith="ledger.period.")
    assert [(e.action, e.object_id) for e in trail.order_by("id")] == [
        ("ledger.period.create", str(period.pk)),
        ("ledger.period.close", str(period.pk)),
    ]
