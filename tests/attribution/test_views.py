"""The attribution-job pages and the run API for each role, and a generation's audio
(the generations' pages are the ledger's: ``tests/ledger/test_generation_pages.py``)."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.utils.html import escape
from rest_framework.test import APIClient

from attribution import selectors
from attribution.models import AttributionRun
from core.models import AuditEvent
from tests.ledger.generation_world import generation_with_audio, logged_in, settled_world, user


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settled_world()


def test_holder_audio_streams_the_wav_with_byte_ranges(world, client):
    client = logged_in(client, world.holder_user)
    url = f"/attribution/generations/{world.generation.pk}/audio/"
    whole = client.get(url)
    assert whole.status_code == 200
    assert whole["Content-Type"] == "audio/x-wav" or whole["Content-Type"].startswith("audio/")
    assert b"".join(whole.streaming_content) == world.audio
    part = client.get(url, HTTP_RANGE="bytes=4-11")
    assert part.status_code == 206
    assert part.content == world.audio[4:12]
    assert part["Content-Range"] == f"bytes 4-11/{len(world.audio)}"
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert tail.content == world.audio[-10:]
    assert client.get(url, HTTP_RANGE=f"bytes={len(world.audio)}-").status_code == 416


def test_without_a_rule_from_the_ledger_a_holder_sees_only_what_they_recorded(
    world, client, monkeypatch
):
    """Which generations paid a holder is the ledger's rule (``ledger.apps`` registers
    it); attribution alone lets a holder's user see what they recorded, nothing more."""
    url = f"/attribution/generations/{world.generation.pk}/audio/"
    client = logged_in(client, world.holder_user)
    assert client.get(url).status_code == 200
    monkeypatch.setattr(selectors.generations, "_holder_generations", None)
    assert client.get(url).status_code == 404
    assert not selectors.generations_for_user(world.holder_user).exists()


def test_users_without_a_role_get_403(world, client):
    client = logged_in(client, user("no-role", None))
    assert client.get("/attribution/jobs/").status_code == 403
    assert client.get(f"/attribution/generations/{world.generation.pk}/audio/").status_code == 403


@pytest.mark.parametrize("role", ["finance", "rights_holder"])
def test_jobs_page_and_rerun_are_for_catalog_admins(world, client, role):
    account = user(f"not-admin-{role}", role)
    client = logged_in(client, account)
    assert client.get("/attribution/jobs/").status_code == 403
    failed = failed_run(world)
    assert client.post(f"/attribution/runs/{failed.pk}/rerun/").status_code == 403
    assert AttributionRun.objects.filter(generation=failed.generation).count() == 1


def failed_run(world, reason="Model version 'x' is missing: Diagonal Fisher information."):
    generation = generation_with_audio(world.generation.model_version, world.audio)
    return AttributionRun.objects.create(
        generation=generation,
        model_version=generation.model_version,
        status=AttributionRun.Status.FAILED,
        error=reason,
        checkpoint_sha256=generation.model_version.checkpoint_sha256,
        manifest_sha256=generation.model_version.manifest_sha256,
        attempts=1,
    )


def test_jobs_page_shows_live_status_failures_and_reruns_a_failed_run(
    world, client, monkeypatch, django_capture_on_commit_callbacks
):
    from attribution import tasks

    failed = failed_run(world)
    running = AttributionRun.objects.create(
        generation=generation_with_audio(world.generation.model_version, world.audio),
        model_version=world.generation.model_version,
        status=AttributionRun.Status.RUNNING,
        progress_percent=45,
        progress_stage="scoring",
        eta_seconds=125,
        checkpoint_sha256="c" * 64,
        manifest_sha256="m" * 64,
    )
    client = logged_in(client, world.admin)
    page = client.get("/attribution/jobs/").content.decode()
    assert escape(failed.error) in page
    assert "Running: 45 % (scoring), about 2 min 5 s left" in page
    assert 'value="45"' in page  # the progress bar
    assert f'data-rerun="{failed.pk}"' in page
    assert f'data-rerun="{world.run.pk}"' not in page  # succeeded: no re-run
    assert "js/live-status.js" in page or "data-live-status-url" in page
    assert f"ids={running.pk}" in page  # only unfinished runs are polled

    status = client.get(f"/attribution/jobs/status/?ids={running.pk},{failed.pk}").json()
    by_id = {item["id"]: item for item in status["items"]}
    assert by_id[running.pk]["percent"] == 45 and not by_id[running.pk]["done"]
    assert by_id[failed.pk]["detail"] == failed.error and by_id[failed.pk]["done"]
    assert status["done"] is False

    queued = []
    # The service queues the task by name (a signature), which ends in apply_async.
    monkeypatch.setattr(
        tasks.prepare_run, "apply_async", lambda args=(), kwargs=None, **_: queued.append(*args)
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            f"/attribution/runs/{failed.pk}/rerun/", {"reason": "artifacts computed now"}
        )
    assert response.status_code == 302
    rerun = AttributionRun.objects.filter(generation=failed.generation).latest("id")
    assert rerun.pk != failed.pk and rerun.status == "queued"
    assert rerun.requested_by == world.admin
    assert queued == [rerun.pk]
    event = AuditEvent.objects.get(action="attribution_run.rerun", object_id=str(rerun.pk))
    assert event.actor == world.admin and event.reason == "artifacts computed now"

    # Sorted on the server: oldest run first across pages, the status filter kept.
    ids = [
        int(i)
        for i in re.findall(
            r'<tr data-run="(\d+)"',
            client.get("/attribution/jobs/", {"sort": "run"}).content.decode(),
        )
    ]
    assert ids == sorted(AttributionRun.objects.values_list("pk", flat=True))
    newest = client.get("/attribution/jobs/", {"sort": "-run"}).content.decode()
    assert re.findall(r'<tr data-run="(\d+)"', newest)[0] == str(rerun.pk)

    # The old run cannot be re-run again: its generation has a newer run.
    page = client.get("/attribution/jobs/").content.decode()
    assert f'data-rerun="{failed.pk}"' not in page
    again = client.post(f"/attribution/runs/{failed.pk}/rerun/", follow=True)
    assert "still active" in again.content.decode()
    assert AttributionRun.objects.filter(generation=failed.generation).count() == 2


def test_rerun_needs_post(world, client):
    failed = failed_run(world)
    client = logged_in(client, world.admin)
    assert client.get(f"/attribution/runs/{failed.pk}/rerun/").status_code == 405


def test_run_status_api_is_scoped_and_filterable(world):
    failed = failed_run(world)
    api = APIClient()
    api.force_authenticate(world.admin)
    rows = api.get("/attribution/api/runs/", {"status": "failed"}).json()["results"]
    assert [row["id"] for row in rows] == [failed.pk]
    assert rows[0]["label"] == "Failed" and rows[0]["error"] == failed.error
    detail = api.get(f"/attribution/api/runs/{world.run.pk}/").json()
    assert detail["status"] == "succeeded" and detail["label"] == "Succeeded"
    service = user("generator", None)
    service.user_permissions.add(Permission.objects.get(codename="add_generation"))
    api.force_authenticate(service)
    assert api.get("/attribution/api/runs/").json()["count"] == 0
