"""In a real browser: each role logs in through the real log-in page and lands on its own
start page with its own navigation; wrong passwords are refused and repeated ones lock
the username out; the layout holds at 390 px; sortable tables sort; statements print
without the site's chrome; the API docs render from our own static files only."""

import re
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache

from core.navigation import NAV_ITEMS, dashboard_url_for, nav_links_for
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from core.services import user_create_or_update
from demo.services import DEMO_USERS

PHONE = {"width": 390, "height": 844}

START_PAGE = {
    RIGHTS_HOLDER: "/ledger/",
    CATALOG_ADMIN: "/catalog/import/",
    FINANCE: "/ledger/journal/",
}


@pytest.fixture(autouse=True)
def fresh_login_counters():
    cache.clear()  # the live server thread shares this process's cache
    yield
    cache.clear()


def demo_user(username: str):
    _, password, role, is_staff, is_superuser = next(u for u in DEMO_USERS if u[0] == username)
    user = user_create_or_update(
        username=username,
        password=password,
        role=role,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    return user, password, role


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url  # anonymous users are sent to log in
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def nav_labels(page) -> list[str]:
    return [text.strip() for text in page.locator("nav.site-nav a").all_inner_texts()]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", ["holder", "catalog", "finance"])
def test_each_role_lands_on_its_start_page_with_its_navigation(
    live_server, page, screenshot, username
):
    user, password, role = demo_user(username)
    log_in(page, live_server, username, password)
    assert urlsplit(page.url).path == START_PAGE[role] == dashboard_url_for(user)
    expected = [item.label for item in NAV_ITEMS if item.role == role]
    assert nav_labels(page) == expected
    current = page.locator('nav.site-nav a[aria-current="page"]')
    assert current.get_attribute("href") == START_PAGE[role]
    screenshot("start")
    # Every page in the navigation opens for its role.
    for link in nav_links_for(user):
        response = page.goto(f"{live_server.url}{link.url}")
        assert response.status == 200, link
        assert page.locator('nav.site-nav a[aria-current="page"]').inner_text() == link.label


@pytest.mark.django_db(transaction=True)
def test_superuser_gets_an_overview_of_every_role(live_server, page, screenshot):
    _user, password, _ = demo_user("admin")
    log_in(page, live_server, "admin", password)
    assert urlsplit(page.url).path == "/"
    assert page.inner_text("h1") == "Welcome, admin"
    headings = page.locator("main h2").all_inner_texts()
    assert headings[:3] == ["Catalog admin", "Finance", "Rights holder"]
    assert len(nav_labels(page)) == len(NAV_ITEMS)
    screenshot("overview")


@pytest.mark.django_db(transaction=True)
def test_wrong_passwords_are_refused_then_locked_out(live_server, page, screenshot, settings):
    user_create_or_update(username="someone", password="right-password-123")
    page.goto(f"{live_server.url}/accounts/login/")
    for attempt in range(settings.LOGIN_FAILURE_LIMIT):
        page.fill("input[name=username]", "someone")
        page.fill("input[name=password]", f"wrong-password-{attempt}")
        page.click("button[type=submit]")
        page.wait_for_load_state()
        assert "/accounts/login/" in page.url
    assert "Too many failed log-ins" in page.inner_text("main")
    page.fill("input[name=username]", "someone")
    page.fill("input[name=password]", "right-password-123")
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" in page.url  # even the right password waits out the lockout
    assert "Try again in 15 minutes" in page.inner_text("[role=alert]")
    screenshot("locked-out")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("username", ["holder", "catalog", "finance"])
def test_every_page_of_a_role_fits_a_phone(live_server, chromium_browser, username, request):
    user, password, _role = demo_user(username)
    context = chromium_browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    try:
        phone = context.new_page()
        log_in(phone, live_server, username, password)
        for link in nav_links_for(user):
            phone.goto(f"{live_server.url}{link.url}")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{link.url} is {width}px wide"
            assert phone.locator("nav.site-nav").is_visible()
        phone.screenshot(path=_shot(request, "phone"), full_page=True)
    finally:
        context.close()


def _shot(request, name: str) -> str:
    from tests.browser.conftest import ARTIFACTS_DIR

    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS_DIR / f"{request.node.name}-{name}.png")


SORTABLE_TABLE = """
() => {
  const table = document.createElement("table");
  table.className = "sortable";
  table.id = "t";
  table.innerHTML = `
    <thead><tr><th>Track</th><th class="num">Amount</th><th data-nosort>Note</th></tr></thead>
    <tbody>
      <tr><td>track 10</td><td class="num">1,200.50</td><td>a</td></tr>
      <tr><td>track 2</td><td class="num">9.00</td><td>b</td></tr>
      <tr><td>Track 1</td><td class="num">(3.00)</td><td>c</td></tr>
      <tr><td>track 3</td><td class="num"></td><td>d</td></tr>
    </tbody>`;
  document.querySelector("main").appendChild(table);
  window.sortableTables.enhanceAll(document);
}
"""


def column(page, index: int) -> list[str]:
    return page.eval_on_selector_all(
        "#t tbody tr", f"rows => rows.map(r => r.cells[{index}].textContent.trim())"
    )


@pytest.mark.django_db(transaction=True)
def test_sortable_tables_sort_numbers_as_numbers(live_server, page):
    page.goto(f"{live_server.url}/accounts/login/")  # any page: base.html loads tables.js
    page.evaluate(SORTABLE_TABLE)
    amount = page.locator("#t th").nth(1)
    amount.locator("button.sort").click()
    assert column(page, 1) == ["(3.00)", "9.00", "1,200.50", ""]  # empty cells last
    assert amount.get_attribute("aria-sort") == "ascending"
    amount.locator("button.sort").press("Enter")  # the header is a keyboard-usable button
    assert column(page, 1) == ["1,200.50", "9.00", "(3.00)", ""]
    assert amount.get_attribute("aria-sort") == "descending"
    page.locator("#t th").first.locator("button.sort").click()
    assert column(page, 0) == ["Track 1", "track 2", "track 3", "track 10"]
    assert amount.get_attribute("aria-sort") is None
    assert page.locator("#t th").nth(2).locator("button").count() == 0  # data-nosort


@pytest.mark.django_db(transaction=True)
def test_print_hides_navigation_and_forms(live_server, page):
    _user, password, _ = demo_user("holder")
    log_in(page, live_server, "holder", password)
    assert page.locator("header.site-header").is_visible()
    page.emulate_media(media="print")
    assert not page.locator("header.site-header").is_visible()
    assert page.locator("main h1").is_visible()


@pytest.mark.django_db(transaction=True)
def test_api_docs_render_from_our_own_files(live_server, page):
    _user, password, _ = demo_user("finance")
    log_in(page, live_server, "finance", password)
    foreign, errors = [], []
    host = urlsplit(live_server.url).netloc

    def check(route):
        if urlsplit(route.request.url).netloc != host and not route.request.url.startswith("data:"):
            foreign.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    page.route("**/*", check)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Royalty ledger API" in page.inner_text(".swagger-ui .info .title")
    assert page.locator(".opblock").count() >= 15  # the operations are listed
    assert foreign == []
    assert not [e for e in errors if re.search("Content Security Policy|Refused", e)], errors
