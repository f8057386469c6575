"""In a real browser: finance creates a payout batch, exports it, marks it paid and
verifies the ledger; every step is audited and screenshotted."""

import csv
import io
from pathlib import Path

import pytest
from django.core.cache import cache
from openpyxl import load_workbook

from core.models import AuditEvent
from core.roles import FINANCE
from core.services import user_create_or_update
from ledger import selectors
from ledger.models import JournalEntry, PayoutBatch
from tests.ledger.conftest import world_create

PASSWORD = "finance-flow-pass-123"


@pytest.fixture(autouse=True)
def fresh_login_counters():
    cache.clear()  # the live server thread shares this process's cache (log-in limits)
    yield
    cache.clear()


@pytest.mark.django_db(transaction=True)
def test_finance_creates_exports_and_pays_a_batch(live_server, page, screenshot):
    world = world_create()
    finance = user_create_or_update(username="fin-flow", password=PASSWORD, role=FINANCE)

    page.goto(f"{live_server.url}/ledger/payouts/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "fin-flow")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert page.url == f"{live_server.url}/ledger/payouts/"
    screenshot("payouts")

    # 1. Create a draft batch with a 1.00 USD minimum.
    page.fill("input[name=threshold]", "1.00")
    page.click("#payout-create button[type=submit]")
    page.wait_for_load_state()
    batch = PayoutBatch.objects.get()
    assert page.url == f"{live_server.url}/ledger/payouts/{batch.pk}/"
    assert page.inner_text("[data-testid=batch-status]") == "Draft"
    assert page.inner_text("[data-testid=batch-total]") == "$15.00"
    assert world.a.legal_name in page.inner_text("#payout-lines")
    screenshot("1-created")

    # 2. Export the payment file.
    with page.expect_download() as info:
        page.click("text=Export CSV")
    download = info.value
    assert download.suggested_filename == f"payout-batch-{batch.pk}.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert [(int(r["rights_holder_id"]), r["amount"], r["status"]) for r in rows] == [
        (world.a.pk, "10.00", "pending"),
        (world.b.pk, "5.00", "pending"),
    ]
    screenshot("2-exported")

    with page.expect_download() as info:
        page.click("text=Export XLSX")
    sheet = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes())).active
    header = [cell.value for cell in sheet[1]]
    amounts = [row[header.index("amount")] for row in sheet.iter_rows(min_row=2)]
    assert [(cell.data_type, cell.value) for cell in amounts] == [("n", 10), ("n", 5)]
    assert all(row[header.index("payout_reference")].value for row in sheet.iter_rows(min_row=2))

    # 3. Mark it paid, after a confirmation that says what will be booked: one journal
    # entry moves the money out of the payables.
    page.click("text=Mark paid")
    page.wait_for_load_state()
    assert page.url == f"{live_server.url}/ledger/payouts/{batch.pk}/mark-paid/"
    what = page.inner_text("#confirm-what")
    assert f"payout batch {batch.pk}" in what and "2 lines" in what
    assert page.inner_text("[data-testid=confirm-total]") == "$15.00"
    assert "cannot be undone" in what
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.DRAFT  # nothing booked by the first click
    screenshot("3-confirm")
    page.click("#confirm-form button")
    page.wait_for_load_state()
    assert page.inner_text("[data-testid=batch-status]") == "Paid"
    entry = JournalEntry.objects.get(kind=JournalEntry.Kind.PAYOUT)
    assert f"journal entry #{entry.seq}" in page.inner_text(".messages")
    assert page.locator("text=Mark paid").count() == 0
    screenshot("3-paid")
    assert selectors.holder_balance(rights_holder=world.b, currency="USD") == 0

    # 4. The ledger still verifies.
    page.goto(f"{live_server.url}/ledger/verify/")
    page.click("text=Verify now")
    page.wait_for_load_state()
    assert "The ledger verifies" in page.inner_text("#verify-result")
    assert page.inner_text("[data-testid=entries-checked]") == str(entry.seq)
    screenshot("4-verified")

    # 5. The journal traces the first settlement to its generation, run and checkpoint.
    page.click("nav.site-nav >> text=Ledger")
    page.click("a[href='/ledger/journal/1/']")
    first = world.entries[0]
    assert first.settlement.checkpoint_sha256 in page.inner_text("main")
    assert page.locator(".badge.ok").count() == 2  # entry and provenance hashes recompute
    screenshot("5-entry")

    actions = list(
        AuditEvent.objects.filter(actor=finance).order_by("id").values_list("action", flat=True)
    )
    assert actions == [
        "ledger.payout_batch.create",
        "ledger.payout_batch.export",
        "ledger.payout_batch.export",
        "ledger.payout_batch.mark_paid",
        "ledger.verify",
    ]


@pytest.mark.django_db(transaction=True)
def test_closing_a_period_asks_first_and_works_without_javascript(live_server, chromium_browser):
    """The confirmation is plain HTML: with JavaScript off, Cancel leaves the period open
    and the confirming button closes it."""
    from datetime import timedelta

    from django.utils import timezone

    from ledger import services
    from ledger.models import StatementPeriod

    world = world_create()
    ended = services.statement_period_create(
        starts_at=world.period.ends_at, ends_at=timezone.now() + timedelta(seconds=2)
    )
    user_create_or_update(username="fin-close", password=PASSWORD, role=FINANCE)
    context = chromium_browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{live_server.url}/ledger/periods/")
        page.fill("input[name=username]", "fin-close")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_load_state()
        page.wait_for_timeout(2_500)  # the period has ended now
        page.reload()
        page.click(f"text=Close period {ended.pk}")
        page.wait_for_load_state()
        what = page.inner_text("#confirm-what")
        assert f"{ended.starts_at:%Y-%m-%d %H:%M}" in what and "cannot be undone" in what
        page.click("a.button:has-text('Cancel')")
        page.wait_for_load_state()
        assert page.url == f"{live_server.url}/ledger/periods/"
        assert StatementPeriod.objects.get(pk=ended.pk).closed_at is None
        page.click(f"text=Close period {ended.pk}")
        page.click("#confirm-form button")
        page.wait_for_load_state()
        assert "closed: its statements can now be opened" in page.inner_text(".messages")
        assert StatementPeriod.objects.get(pk=ended.pk).closed_at is not None
    finally:
        context.close()
