"""Lists sorted on the server across every page; a rights holder's payments page."""

import re

import pytest
from django.test import Client

from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from ledger import services
from ledger.models import Account
from tests.ledger import factories
from tests.ledger.conftest import user_with_role

pytestmark = pytest.mark.django_db


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def account_keys(html: str) -> list[str]:
    table = html.split('id="accounts"')[1].split("</table>")[0]
    return re.findall(r'<td class="mono">([^<]+)</td>', table)


@pytest.fixture
def many_accounts(db):
    """Payable accounts of 12 holders whose ids gain a digit (99,994 ... 100,005): as
    text, ``:100000`` would sort before ``:99994``."""
    holders = [factories.RightsHolderFactory(pk=99_994 + i) for i in range(12)]
    services.accounts_ensure(
        specs=[(Account.Kind.HOLDER_PAYABLE, "USD", holder.pk) for holder in holders]
    )
    return holders


def test_accounts_sort_holder_ids_as_numbers_across_pages(many_accounts, monkeypatch):
    monkeypatch.setattr("ledger.views.PAGE_SIZE", 5)
    client = logged_in(user_with_role(FINANCE))
    pages = [
        account_keys(client.get("/ledger/accounts/", {"page": n}).content.decode())
        for n in (1, 2, 3)
    ]
    keys = [key for page in pages for key in page]
    ids = [int(key.rsplit(":", 1)[1]) for key in keys]
    assert len(ids) == 12 and ids == sorted(ids)
    descending = [
        account_keys(
            client.get("/ledger/accounts/", {"sort": "-account", "page": n}).content.decode()
        )
        for n in (1, 2, 3)
    ]
    assert [key for page in descending for key in page] == keys[::-1]


def test_accounts_sort_numerically_where_text_would_not(many_accounts):
    ids = sorted(holder.pk for holder in many_accounts)
    text_order = sorted(ids, key=str)
    page = logged_in(user_with_role(FINANCE)).get("/ledger/accounts/").content.decode()
    shown = [int(key.rsplit(":", 1)[1]) for key in account_keys(page)]
    assert shown == ids
    assert shown != text_order


def test_sort_links_keep_the_filter_and_start_again_at_page_one(many_accounts):
    page = (
        logged_in(user_with_role(FINANCE))
        .get("/ledger/accounts/", {"currency": "USD", "page": 1, "sort": "account"})
        .content.decode()
    )
    link = re.search(r'<a class="sort-link" href="\?([^"]+)"[^>]*>Account ▲', page).group(1)
    assert "currency=USD" in link and "sort=-account" in link and "page=" not in link


def test_generations_sort_by_date_across_pages(world, monkeypatch):
    monkeypatch.setattr("ledger.views.PAGE_SIZE", 2)
    client = logged_in(user_with_role(CATALOG_ADMIN))

    def shown(**params) -> list[int]:
        ids = []
        for n in (1, 2):
            html = client.get("/attribution/generations/", params | {"page": n}).content.decode()
            table = html.split('id="generations"')[1].split("</table>")[0]
            ids += [int(i) for i in re.findall(r'<td class="num">(\d+)</td>', table)]
        return ids

    oldest_first = shown(sort="date")
    assert len(oldest_first) == 3
    assert oldest_first == [entry.generation_id for entry in world.entries[:3]]
    assert shown(sort="-date") == oldest_first[::-1]
    assert shown() == oldest_first[::-1]  # newest first by default


def test_generations_filter_by_period(world):
    client = logged_in(user_with_role(CATALOG_ADMIN))
    inside = client.get("/attribution/generations/", {"period": world.period.pk}).content.decode()
    for entry in world.entries[:3]:
        assert f"/attribution/generations/{entry.generation_id}/" in inside
    later = services.statement_period_create(
        starts_at=world.period.ends_at, ends_at=world.period.ends_at.replace(year=2100)
    )
    empty = client.get("/attribution/generations/", {"period": later.pk}).content.decode()
    assert "No generations." in empty


# --- a rights holder's payments ----------------------------------------------------------------


@pytest.fixture
def paid(world):
    batch = services.payout_batch_create(currency="USD", threshold_minor=100)
    services.payout_batch_mark_paid(batch=batch)
    batch.refresh_from_db()
    return batch


def test_holder_sees_their_payments_with_reference_and_no_one_elses(world, paid):
    line_a = paid.lines.get(rights_holder=world.a)
    line_b = paid.lines.get(rights_holder=world.b)
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    page = client.get("/ledger/payments/").content.decode()
    table = page.split('id="holder-payouts"')[1].split("</table>")[0]
    assert line_a.reference in table and "10.00" in table and "Paid" in table
    assert f"{paid.paid_at:%Y-%m-%d %H:%M}" in table
    assert line_b.reference not in page
    assert client.get("/ledger/payments/", {"holder": world.b.pk}).status_code == 404
    assert client.get("/ledger/payments/", {"holder": "x"}).status_code == 404


def test_finance_picks_any_holders_payments(world, paid):
    line_b = paid.lines.get(rights_holder=world.b)
    client = logged_in(user_with_role(FINANCE))
    page = client.get("/ledger/payments/", {"holder": world.b.pk}).content.decode()
    assert line_b.reference in page and world.b.legal_name in page
    assert f'<option value="{world.a.pk}"' in page  # the holder picker lists every holder


def test_a_failed_payment_shows_as_failed_and_a_draft_as_scheduled(world, paid):
    line_a = paid.lines.get(rights_holder=world.a)
    services.payout_line_fail(line=line_a, reason="IBAN closed")
    services.payout_batch_create(currency="USD", threshold_minor=100)
    page = (
        logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
        .get("/ledger/payments/")
        .content.decode()
    )
    assert "Failed" in page and "IBAN closed" in page and "Scheduled" in page
