"""In a real browser: a rights holder follows a statement line to "Explain this payment"
and reads there the numbers the settlement booked; at 390 px the dashboard and the
statement keep every amount in sight and draw their charts for the phone."""

import pytest
from django.core.cache import cache

from core.roles import RIGHTS_HOLDER
from core.services import user_create_or_update
from ledger.models import Posting, Settlement, SettlementHolderLine
from ledger.money import accrual_to_text, minor_to_decimal
from tests.browser.test_holder_flow import PASSWORD, PHONE, fits_the_screen, log_in
from tests.ledger.conftest import world_create


@pytest.fixture(autouse=True)
def fresh_login_counters():
    cache.clear()  # the live server thread shares this process's cache (log-in limits)
    yield
    cache.clear()


def exact(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.dataset.exact)")


def amounts_in_view(page, selector: str) -> list[bool]:
    """For each visible cell matching ``selector``: whether it lies wholly inside the
    viewport's width (a scrolled-away or clipped amount is not)."""
    return page.eval_on_selector_all(
        selector,
        """els => els.filter(e => e.offsetParent !== null).map(e => {
            const box = e.getBoundingClientRect();
            return box.width > 0 && box.left >= 0 && box.right <= window.innerWidth + 0.5;
        })""",
    )


@pytest.mark.django_db(transaction=True)
def test_the_explain_panel_shows_the_settlements_numbers(live_server, page, screenshot):
    world = world_create()
    user = user_create_or_update(username="holder-x", password=PASSWORD, role=RIGHTS_HOLDER)
    world.a.users.add(user)
    log_in(page, live_server, f"/ledger/statements/{world.a.pk}/{world.period.pk}/USD/", "holder-x")

    first_line = page.locator("#statement-lines tbody tr").first
    generation_id = int(first_line.get_attribute("data-generation"))
    first_line.locator("text=Explain").click()
    page.wait_for_selector("#explain")
    settlement = Settlement.objects.get(generation_id=generation_id)
    line = SettlementHolderLine.objects.get(settlement=settlement, rights_holder=world.a)
    posting = Posting.objects.get(
        entry_id=settlement.journal_entry_id, account__rights_holder=world.a
    )
    assert exact(page, "[data-testid=explain-total]") == [accrual_to_text(line.amount, "USD")]
    assert line.amount == -posting.amount
    assert exact(page, "[data-testid=explain-revenue]") == [
        str(minor_to_decimal(settlement.revenue_minor, "USD"))
    ]
    assert exact(page, "[data-testid=explain-pool]") == [accrual_to_text(settlement.pool, "USD")]
    assert exact(page, "[data-testid=track-amount]") == [
        accrual_to_text(t.amount, "USD") for t in settlement.tracks.order_by("position")
    ]
    assert exact(page, "[data-testid=part]") == [accrual_to_text(a, "USD") for _, a in line.tracks]
    weights = page.eval_on_selector_all("[data-testid=weight]", "els => els.map(e => e.innerText)")
    assert weights == [str(t.weight) for t in settlement.tracks.order_by("position")]
    assert page.inner_text("[data-testid=explain-weight-total]") == str(
        sum(t.weight for t in settlement.tracks.all())
    )
    assert "recomputes" in page.inner_text("#explain-check")
    assert page.inner_text("[data-testid=scores-sha256]") == settlement.run_scores_sha256
    assert page.locator("#explain-chart svg.chart:visible").count() == 1
    screenshot("explain")


@pytest.mark.django_db(transaction=True)
def test_at_390_px_amounts_stay_in_sight_and_charts_are_redrawn(live_server, page, screenshot):
    world = world_create()
    user = user_create_or_update(username="holder-p", password=PASSWORD, role=RIGHTS_HOLDER)
    world.a.users.add(user)
    page.set_viewport_size(PHONE)
    log_in(page, live_server, "/ledger/", "holder-p")

    assert fits_the_screen(page)
    wide, narrow = page.locator(".chart-wide svg"), page.locator(".chart-narrow svg")
    assert not wide.first.is_visible() and narrow.first.is_visible()
    # The phone's drawing keeps its axis text at a readable size.
    sizes = narrow.first.evaluate(
        "svg => [...svg.querySelectorAll('text')].map(t => t.getBoundingClientRect().height)"
    )
    assert sizes and min(h for h in sizes if h > 0) >= 8
    assert all(amounts_in_view(page, "[data-testid^=balance-], [data-testid^=earned-]"))
    screenshot("dashboard-390")
    # On a touch screen the exact amount is a tap away (no hover for the title).
    balance = page.locator("[data-testid=balance-USD] .money")
    balance.click()
    assert balance.inner_text() == "10.00500000 USD"
    balance.click()
    assert balance.inner_text() == "$10.01"

    page.goto(f"{live_server.url}/ledger/statements/{world.a.pk}/{world.period.pk}/USD/")
    assert fits_the_screen(page)
    in_view = amounts_in_view(page, "#statement-lines td.amount")
    assert in_view and all(in_view)
    assert all(amounts_in_view(page, "#statement-summary td.amount"))
    screenshot("statement-390")

    page.locator("#statement-lines tbody tr").first.locator("text=Explain").click()
    page.wait_for_selector("#explain")
    assert fits_the_screen(page)
    in_view = amounts_in_view(page, "#explain-tracks td.amount")
    assert in_view and all(in_view)
    screenshot("explain-390")

    # My catalog -> a recording's page: its earnings with a chart drawn for the phone.
    page.goto(f"{live_server.url}/catalog/")
    assert fits_the_screen(page)
    assert page.inner_text(f"[data-testid=ledger-currency-{world.a.pk}]") == "USD"
    page.locator("#my-recordings td.amount a").first.click()
    page.wait_for_selector("[data-testid=lifetime-USD]")
    assert fits_the_screen(page)
    assert page.locator(".chart-narrow svg").first.is_visible()
    assert all(amounts_in_view(page, "#recording-payments td.amount"))
    screenshot("recording-390")
