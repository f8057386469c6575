import pytest
from django.contrib.auth.models import Group

from core.roles import FINANCE
from ledger import services
from tests.ledger import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance_client(client):
    user = factories.UserFactory(is_staff=True)
    user.groups.add(Group.objects.get_or_create(name=FINANCE)[0])
    client.force_login(user)
    return client


def test_finance_reads_the_ledger_in_the_admin_but_cannot_change_it(finance_client, settled_run):
    entry = services.generation_settle(attribution_run=settled_run)
    page = finance_client.get(f"/admin/ledger/journalentry/{entry.seq}/change/")
    assert page.status_code == 200
    assert entry.hash in page.content.decode()
    assert finance_client.get("/admin/ledger/journalentry/add/").status_code == 403
    response = finance_client.post(
        f"/admin/ledger/journalentry/{entry.seq}/delete/", {"post": "yes"}
    )
    assert response.status_code == 403
    for model in ("account", "settlement", "payoutbatch", "statement", "statementperiod"):
        assert finance_client.get(f"/admin/ledger/{model}/").status_code == 200


def test_other_staff_do_not_see_the_ledger(client, settled_run):
    client.force_login(factories.UserFactory(is_staff=True))
    assert client.get("/admin/ledger/journalentry/").status_code == 403
