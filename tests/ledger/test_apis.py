import pytest
from django.contrib.auth.models import Group
from rest_framework.test import APIClient

from core.roles import FINANCE, RIGHTS_HOLDER
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
