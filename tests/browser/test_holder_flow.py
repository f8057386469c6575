"""In a real browser: a rights holder logs in, reads the dashboard, opens a statement and
downloads it as CSV and PDF; the pages hold at 390 px."""

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from openpyxl import load_workbook

from core.roles import RIGHTS_HOLDER
from core.services import user_create_or_update
from ledger.models import Statement
from ledger.statement_exports import statement_lines_csv
from tests.ledger.conftest import FORMULA_PROMPT, world_create

PASSWORD = "holder-flow-pass-123"
PHONE = {"width": 390, "height": 844}


@pytest.fixture(autouse=True)
def fresh_login_counters():
    cache.clear()  # the live server thread shares this process's cache (log-in limits)
    yield
    cache.clear()


def log_in(page, live_server, path: str, username: str) -> None:
    page.goto(f"{live_server.url}{path}")
    assert "/accounts/login/" in page.url  # anonymous users are sent to log in first
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def fits_the_screen(page) -> bool:
    """No horizontal page scroll: wide tables scroll inside their .table-wrap."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.django_db(transaction=True)
def test_holder_opens_a_statement_and_downloads_it(live_server, page, screenshot):
    world = world_create()
    user = user_create_or_update(username="holder-a", password=PASSWORD, role=RIGHTS_HOLDER)
    world.a.users.add(user)

    log_in(page, live_server, "/ledger/", "holder-a")
    assert page.url == f"{live_server.url}/ledger/"
    assert page.inner_text("h1") == world.a.legal_name
    assert page.inner_text("[data-testid=balance-USD]") == "$10.01"
    assert page.get_attribute("[data-testid=balance-USD]", "data-exact") == "10.00500000"
    assert page.locator("svg.chart:visible").count() == 1  # the wide drawing; the phone's hidden
    screenshot("dashboard")

    page.click("text=Statements")
    page.click(f"a[href='/ledger/statements/{world.a.pk}/{world.period.pk}/USD/']")
    assert page.inner_text("[data-testid=closing]") == "$10.01"
    assert FORMULA_PROMPT in page.inner_text("#statement-lines")
    assert "Reversal of #3: duplicate generation" in page.inner_text("main")
    screenshot("statement")

    with page.expect_download() as info:
        page.click("text=Download CSV")
    download = info.value
    content = Path(download.path()).read_bytes()
    statement = Statement.objects.get(rights_holder=world.a)
    assert download.suggested_filename == (
        f"statement-{world.a.pk}-{world.period.starts_at:%Y-%m-%d}-USD.csv"
    )
    assert content == statement_lines_csv(statement=statement)
    # One row per generation and track, the reversal as its negative: summed as finance
    # would, the rows give the statement's movement from opening to closing balance.
    rows = list(csv.DictReader(io.StringIO(content.decode())))
    assert [r["kind"] for r in rows] == ["earning", "earning", "reversal"]
    assert all(len(r["isrc"]) == 12 for r in rows)
    opening = Decimal(page.get_attribute("[data-testid=opening]", "data-exact"))
    closing = Decimal(page.get_attribute("[data-testid=closing]", "data-exact"))
    assert sum(Decimal(r["amount"]) for r in rows) == closing - opening == Decimal("10.005")

    with page.expect_download() as info:
        page.click("text=Download XLSX")
    sheet = load_workbook(io.BytesIO(Path(info.value.path()).read_bytes()))["Lines"]
    header = [cell.value for cell in next(sheet.iter_rows(max_row=1))]
    amount_column = header.index("amount")
    amounts = [row[amount_column] for row in sheet.iter_rows(min_row=2)]
    assert [cell.data_type for cell in amounts] == ["n", "n", "n"]
    assert all(cell.number_format == "#,##0.00" for cell in amounts)

    with page.expect_download() as info:
        page.click("text=Download PDF")
    pdf = Path(info.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-") and len(pdf) > 5_000

    page.set_viewport_size(PHONE)
    page.reload()
    assert fits_the_screen(page)
    screenshot("statement-phone")
    page.goto(f"{live_server.url}/ledger/")
    assert fits_the_screen(page)
    screenshot("dashboard-phone")


@pytest.mark.django_db(transaction=True)
def test_holder_cannot_open_another_holders_statement(live_server, page):
    world = world_create()
    user = user_create_or_update(username="holder-a2", password=PASSWORD, role=RIGHTS_HOLDER)
    world.a.users.add(user)
    log_in(page, live_server, "/ledger/statements/", "holder-a2")
    other = f"{live_server.url}/ledger/statements/{world.b.pk}/{world.period.pk}/USD/"
    assert page.goto(other).status == 404
    assert page.goto(f"{other}csv/").status == 404
    assert not Statement.objects.filter(rights_holder=world.b).exists()
