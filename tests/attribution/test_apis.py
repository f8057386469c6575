"""The generations API: idempotent recording, clear errors, scoping, admin re-runs."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from attribution.models import AttributionRun, Generation
from core.services import user_create_or_update
from tests.attribution.conftest import tone, wav_bytes

URL = "/attribution/api/generations/"


@pytest.fixture
def service_client(db):
    user = get_user_model().objects.create_user("generator-svc", password="x" * 12)
    user.user_permissions.add(Permission.objects.get(codename="add_generation"))
    client = APIClient()
    client.force_authenticate(user)
    return client


def payload(model_version, key="api-1", audio=None, **overrides):
    data = {
        "model_version": model_version.name,
        "prompt": "a bright tone",
        "audio": SimpleUploadedFile("gen.wav", audio or wav_bytes(tone(11, 0.4)), "audio/wav"),
        "revenue_minor": 300,
        "currency": "EUR",
        "idempotency_key": key,
    }
    data.update(overrides)
    return data


def test_recording_is_idempotent_by_key(tiny_model_version, service_client, monkeypatch):
    from attribution import tasks

    queued = []
    monkeypatch.setattr(tasks.prepare_run, "delay", queued.append)
    first = service_client.post(URL, payload(tiny_model_version), format="multipart")
    assert first.status_code == 201, first.content
    again = service_client.post(URL, payload(tiny_model_version), format="multipart")
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert first.json()["latest_run"]["status"] == "queued"
    assert Generation.objects.count() == 1


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"model_version": "no-such-model"}, "model_version"),
        ({"audio": wav_bytes(tone(1, 0.0) + 0)}, "audio"),
        ({"currency": "E1R"}, "currency"),
    ],
)
def test_bad_requests_get_a_400_with_the_problem(
    tiny_model_version, service_client, overrides, field
):
    data = payload(tiny_model_version)
    if "audio" in overrides:
        data["audio"] = SimpleUploadedFile("gen.wav", overrides.pop("audio"), "audio/wav")
    data.update(overrides)
    response = service_client.post(URL, data, format="multipart")
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert not Generation.objects.exists()


def test_users_without_the_permission_cannot_record(tiny_model_version, db):
    holder = user_create_or_update(username="holder1", password="x" * 12, role="rights_holder")
    client = APIClient()
    assert client.post(URL, payload(tiny_model_version), format="multipart").status_code in (
        401,
        403,
    )
    client.force_authenticate(holder)
    assert client.post(URL, payload(tiny_model_version), format="multipart").status_code == 403


def test_listing_is_scoped_and_reruns_are_for_catalog_admins(
    tiny_model_version, service_client, monkeypatch
):
    from attribution import tasks

    monkeypatch.setattr(tasks.prepare_run, "delay", lambda run_id: None)
    created = service_client.post(URL, payload(tiny_model_version), format="multipart").json()
    other = user_create_or_update(username="other", password="x" * 12, role="rights_holder")
    admin = user_create_or_update(username="cat", password="x" * 12, role="catalog_admin")
    other_client, admin_client = APIClient(), APIClient()
    other_client.force_authenticate(other)
    admin_client.force_authenticate(admin)
    assert other_client.get(URL).json()["count"] == 0
    assert other_client.get(f"{URL}{created['id']}/").status_code == 404
    assert admin_client.get(URL).json()["count"] == 1

    run = AttributionRun.objects.get(pk=created["latest_run"]["id"])
    rerun_url = f"/attribution/api/runs/{run.pk}/rerun/"
    assert other_client.post(rerun_url).status_code == 403
    refused = admin_client.post(rerun_url)  # still queued: not failed
    assert refused.status_code == 400 and "Only a failed" in refused.json()["message"]
    AttributionRun.objects.filter(pk=run.pk).update(status="failed", error="boom")
    rerun = admin_client.post(rerun_url, {"reason": "try again"})
    assert rerun.status_code == 201
    assert rerun.json()["status"] == "queued"
