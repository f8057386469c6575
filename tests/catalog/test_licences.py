"""Reference licences: which recordings may condition a generation, on what share of the
pool; granted and withdrawn by a holder's users or catalog admins, audited."""

from datetime import date
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from catalog.models import ReferenceLicence
from catalog.selectors import reference_licence_check, reference_share_default
from catalog.services import opt_out_create, reference_licence_grant, reference_licence_withdraw
from core.exceptions import ApplicationError
from core.models import AuditEvent
from core.roles import RIGHTS_HOLDER
from tests.catalog.factories import RecordingFactory, RightsHolderFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = date(2026, 6, 1)


def grant(holder, share="20", recording=None, **kwargs):
    kwargs.setdefault("valid_from", date(2026, 1, 1))
    return reference_licence_grant(
        rights_holder=holder, recording=recording, pool_share_percent=share, actor=None, **kwargs
    )


@pytest.fixture
def owned():
    holder = RightsHolderFactory()
    return holder, RecordingFactory(shares=[(holder, Decimal(100))])


def test_a_licence_in_force_permits_reference_use_at_its_share(owned):
    holder, recording = owned
    licence = grant(holder, "12.5", recording=recording)
    check = reference_licence_check(recording=recording, day=DAY)
    assert check.permitted and check.reason == ""
    assert (check.licence_id, check.pool_share_percent) == (licence.pk, Decimal("12.5"))
    event = AuditEvent.objects.get(action="reference_licence.grant")
    assert Decimal(event.after["pool_share_percent"]) == Decimal("12.5")


def test_without_a_licence_reference_use_is_refused(owned):
    holder, recording = owned
    check = reference_licence_check(recording=recording, day=DAY)
    assert not check.permitted
    assert f"{holder} has no reference licence in force for {recording.isrc}" in check.reason


def test_a_whole_catalog_licence_covers_every_recording_of_the_holder(owned):
    holder, recording = owned
    grant(holder, "30")
    assert reference_licence_check(recording=recording, day=DAY).pool_share_percent == 30


def test_a_recording_licence_overrides_the_catalog_terms(owned):
    holder, recording = owned
    grant(holder, "30")
    denial = grant(holder, "0", recording=recording, permits_reference_use=False)
    check = reference_licence_check(recording=recording, day=DAY)
    assert not check.permitted and f"licence {denial.pk}" in check.reason
    assert "refuses reference use" in check.reason


def test_an_expired_or_future_licence_is_not_in_force(owned):
    holder, recording = owned
    grant(holder, "20", valid_from=date(2026, 1, 1), valid_until=date(2026, 5, 31))
    grant(holder, "20", valid_from=date(2026, 6, 2))
    assert not reference_licence_check(recording=recording, day=DAY).permitted
    assert reference_licence_check(recording=recording, day=date(2026, 5, 31)).permitted
    assert reference_licence_check(recording=recording, day=date(2026, 6, 2)).permitted


def test_a_withdrawn_licence_is_not_in_force_and_withdrawal_is_audited(owned):
    holder, recording = owned
    licence = grant(holder, "20", recording=recording)
    reference_licence_withdraw(licence=licence, actor=None, reason="terms renegotiated")
    reference_licence_withdraw(licence=licence, actor=None)  # again: nothing more
    assert not reference_licence_check(recording=recording, day=DAY).permitted
    events = AuditEvent.objects.filter(action="reference_licence.withdraw")
    assert events.count() == 1 and events.get().reason == "terms renegotiated"


def test_an_opt_out_withdraws_reference_use(owned):
    holder, recording = owned
    grant(holder, "20", recording=recording)
    opt_out = opt_out_create(
        rights_holder=holder, recording=None, effective_from=date(2026, 5, 1), actor=None
    )
    check = reference_licence_check(recording=recording, day=DAY)
    assert not check.permitted and f"opt-out {opt_out.pk}" in check.reason
    # before the opt-out takes effect the licence still applies
    assert reference_licence_check(recording=recording, day=date(2026, 4, 30)).permitted


def test_every_co_owner_must_license_and_the_smallest_share_applies():
    first, second = RightsHolderFactory(), RightsHolderFactory()
    recording = RecordingFactory(shares=[(first, Decimal(60)), (second, Decimal(40))])
    grant(first, "25")
    check = reference_licence_check(recording=recording, day=DAY)
    assert not check.permitted and str(second) in check.reason
    smaller = grant(second, "10", recording=recording)
    check = reference_licence_check(recording=recording, day=DAY)
    assert check.permitted and (check.licence_id, check.pool_share_percent) == (smaller.pk, 10)
    assert [holder for _, holder, _ in check.licences] == sorted([first.pk, second.pk])


@pytest.mark.parametrize(
    ("share", "message"),
    [("100.5", "between 0 and 100"), ("-1", "between 0 and 100"), ("1.00001", "4 decimal")],
)
def test_grant_refuses_a_bad_share(owned, share, message):
    holder, recording = owned
    with pytest.raises(ApplicationError, match=message):
        grant(holder, share, recording=recording)
    assert not ReferenceLicence.objects.exists()


def test_grant_refuses_a_recording_the_holder_does_not_own_and_reversed_dates(owned):
    holder, _ = owned
    with pytest.raises(ApplicationError, match="holds no share"):
        grant(holder, "10", recording=RecordingFactory())
    with pytest.raises(ApplicationError, match="cannot end before it starts"):
        grant(holder, "10", valid_from=date(2026, 2, 1), valid_until=date(2026, 1, 1))


def test_holder_users_grant_and_withdraw_through_the_api_only_for_themselves(owned):
    holder, recording = owned
    other = RightsHolderFactory()
    user = UserFactory(role=RIGHTS_HOLDER)
    holder.users.add(user)
    client = APIClient()
    client.force_authenticate(user)
    api = "/catalog/api/reference-licences/"
    response = client.post(
        api,
        {"rights_holder": holder.pk, "recording": recording.pk, "pool_share_percent": "15"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["scope"], body["pool_share_percent"]) == ("recording", "15.0000")
    assert client.post(api, {"rights_holder": other.pk, "pool_share_percent": "5"}).status_code == (
        403
    )
    grant(other, "5")
    assert [row["id"] for row in client.get(api).json()["results"]] == [body["id"]]
    withdrawn = client.post(f"{api}{body['id']}/withdraw/")
    assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_at"]


def test_holder_users_grant_and_withdraw_on_the_licences_page(owned):
    from django.test import Client

    holder, recording = owned
    other = RightsHolderFactory(legal_name="Someone Else")
    grant(other, "5")
    user = UserFactory(role=RIGHTS_HOLDER)
    holder.users.add(user)
    client = Client()
    client.force_login(user)
    page = client.get("/catalog/reference-licences/")
    assert page.status_code == 200 and "No reference licences yet." in page.content.decode()
    response = client.post(
        "/catalog/reference-licences/",
        {
            "rights_holder": holder.pk,
            "recording": recording.isrc,
            "permits_reference_use": "on",
            "pool_share_percent": "17.5",
            "valid_from": "2026-01-01",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    licence = ReferenceLicence.objects.get(rights_holder=holder)
    assert (licence.recording, licence.pool_share_percent) == (recording, Decimal("17.5"))
    html = client.get("/catalog/reference-licences/").content.decode()
    assert recording.isrc in html and "Someone Else" not in html
    client.post(f"/catalog/reference-licences/{licence.pk}/withdraw/")
    licence.refresh_from_db()
    assert licence.withdrawn_at is not None
    theirs = ReferenceLicence.objects.get(rights_holder=other)
    assert client.post(f"/catalog/reference-licences/{theirs.pk}/withdraw/").status_code == 404
    outsider = Client()
    outsider.force_login(UserFactory())
    assert outsider.get("/catalog/reference-licences/").status_code == 403


def test_catalog_admins_grant_and_withdraw_through_the_admin(owned, admin_client):
    holder, recording = owned
    response = admin_client.post(
        "/admin/catalog/referencelicence/add/",
        {
            "rights_holder": holder.pk,
            "recording": recording.pk,
            "permits_reference_use": "on",
            "pool_share_percent": "40",
            "valid_from": "2026-02-01",
            "valid_until": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    licence = ReferenceLicence.objects.get()
    assert licence.pool_share_percent == 40 and licence.recording == recording
    assert AuditEvent.objects.filter(action="reference_licence.grant").count() == 1
    admin_client.post(
        "/admin/catalog/referencelicence/",
        {"action": "withdraw", "_selected_action": [licence.pk]},
    )
    licence.refresh_from_db()
    assert licence.withdrawn_at is not None
    assert AuditEvent.objects.filter(action="reference_licence.withdraw").count() == 1


def test_a_licence_granted_without_a_share_takes_the_configured_default(owned, settings):
    from django.test import Client

    holder, recording = owned
    settings.CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT = "12.5"
    user = UserFactory(role=RIGHTS_HOLDER)
    holder.users.add(user)
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(
        "/catalog/api/reference-licences/",
        {"rights_holder": holder.pk, "recording": recording.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["pool_share_percent"] == "12.5000"
    explicit_zero = api.post(
        "/catalog/api/reference-licences/",
        {"rights_holder": holder.pk, "pool_share_percent": "0"},
        format="json",
    )
    assert explicit_zero.json()["pool_share_percent"] == "0.0000"  # a stated 0 stays 0
    page = Client()
    page.force_login(user)
    html = page.get("/catalog/reference-licences/").content.decode()
    assert 'name="pool_share_percent" value="12.5"' in html
    settings.CATALOG_REFERENCE_DEFAULT_SHARE_PERCENT = "150"
    with pytest.raises(ValueError, match="from 0 to 100"):
        reference_share_default()
