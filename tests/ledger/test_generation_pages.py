"""The generation and attribution-job pages, and the API beside them, for each role.

The world is built from rows, not from the engine: a model version trained on 12
recordings owned by three holders, one generation with real WAV audio, a succeeded run
with scores, settled on the real ledger (``generation_settle``).
"""

import re
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.utils.html import escape
from rest_framework.test import APIClient

from attribution.charts import HIGHLIGHT_GROUP_ID
from attribution.models import AttributionRun, Generation
from catalog.models import RightsHolder
from core.models import AuditEvent
from core.services import user_create_or_update
from ledger.models import Settlement, SettlementHolderLine
from ledger.money import accrual_to_decimal
from ledger.services import generation_settle, journal_entry_reverse
from tests.attribution.conftest import tone, wav_bytes
from tests.ledger import factories

PASSWORD = "a-long-test-password"


@dataclass
class World:
    holders: list[RightsHolder]
    generation: Generation
    run: AttributionRun
    settlement: Settlement
    holder_user: object  # acts for holders[0]
    outsider: object  # a rights holder's user whose holder nothing paid
    admin: object
    finance: object
    audio: bytes


def user(username: str, role: str | None, holder: RightsHolder | None = None):
    account = user_create_or_update(username=username, password=PASSWORD, role=role)
    if holder is not None:
        holder.users.add(account)
    return account


def generation_with_audio(model_version, audio: bytes, **fields) -> Generation:
    generation = factories.generation_create(model_version=model_version, **fields)
    generation.audio.save(f"gen-{generation.pk}.wav", ContentFile(audio), save=True)
    return generation


def settled_world(*, tracks: int = 12, seed: int = 1) -> World:
    """One generation attributed to ``tracks`` recordings of three holders and settled."""
    model_version, holders = factories.catalog_create(tracks=tracks, holders=3)
    audio = wav_bytes(tone(3, 0.4))
    generation = generation_with_audio(model_version, audio, revenue_minor=1999)
    run = factories.run_create(generation=generation, scores=factories.scores_for(tracks, seed))
    entry = generation_settle(attribution_run=run)
    outsider_holder = factories.RightsHolderFactory()
    return World(
        holders=holders,
        generation=generation,
        run=run,
        settlement=Settlement.objects.get(journal_entry=entry),
        holder_user=user("holder-a", "rights_holder", holders[0]),
        outsider=user("holder-z", "rights_holder", outsider_holder),
        admin=user("catalog-a", "catalog_admin"),
        finance=user("finance-a", "finance"),
        audio=audio,
    )


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settled_world()


def logged_in(client, account):
    client.force_login(account)
    return client


def highlighted_marks(html: str) -> int:
    """How many marks the chart's highlighted group holds (one ``<use>`` per track)."""
    group = html[html.index(f'<g id="{HIGHLIGHT_GROUP_ID}"') :]
    depth, marks = 0, 0
    for match in re.finditer(r"<(/?)g\b[^>]*>|<use\b", group):
        if match.group(0).startswith("<use"):
            marks += 1
        elif match.group(1):
            depth -= 1
            if depth == 0:
                return marks
        else:
            depth += 1
    raise AssertionError("the highlighted group is not closed")


# --- rights holders ---------------------------------------------------------------------------


def test_holder_lists_the_generations_that_paid_them_with_their_amount(world, client):
    other_model, _ = factories.catalog_create(tracks=4, holders=3)
    unpaid = generation_with_audio(other_model, world.audio)  # pays other holders only
    factories.run_create(generation=unpaid, scores=factories.scores_for(4, 2))
    generation_settle(attribution_run=unpaid.attribution_runs.get())

    response = logged_in(client, world.holder_user).get("/attribution/generations/")
    assert response.status_code == 200
    page = response.content.decode()
    assert f"/attribution/generations/{world.generation.pk}/" in page
    assert f"/attribution/generations/{unpaid.pk}/" not in page
    line = SettlementHolderLine.objects.get(
        settlement=world.settlement, rights_holder=world.holders[0]
    )
    assert f"{accrual_to_decimal(line.amount, 'USD')} USD" in page
    assert '<table class="sortable"' in page


def test_holder_generation_page_has_player_chart_and_only_their_tracks(world, client):
    response = logged_in(client, world.holder_user).get(
        f"/attribution/generations/{world.generation.pk}/"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert world.generation.prompt in page
    assert f'src="/attribution/generations/{world.generation.pk}/audio/"' in page
    assert "<audio controls" in page

    # The chart covers the whole training set and marks every track the holder owns.
    assert 'class="chart"' in page and "<svg" in page
    own = {
        entry.position
        for entry in world.generation.model_version.training_set_entries.filter(
            recording__ownership_shares__rights_holder=world.holders[0]
        )
    }
    assert 0 < len(own) < 12
    assert highlighted_marks(page) == len(own)
    assert "#d55e00" in page.lower()  # core.charts.HIGHLIGHT

    # The table lists exactly the holder's paid parts, with the settlement's amounts.
    line = SettlementHolderLine.objects.get(
        settlement=world.settlement, rights_holder=world.holders[0]
    )
    table = page[page.index('id="attributed-tracks"') :]
    table = table[: table.index("</table>")]
    rows = table.count("<tr>") - 1  # minus the header row
    assert rows == len(line.tracks)
    for _position, amount in line.tracks:
        assert str(accrual_to_decimal(amount, "USD")) in table
    others = RightsHolder.objects.exclude(pk=world.holders[0].pk).values_list(
        "legal_name", flat=True
    )
    assert not any(name in table for name in others)
    assert f"{accrual_to_decimal(line.amount, 'USD')} USD" in page


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


def test_another_holders_generation_and_audio_are_404(world, client):
    client = logged_in(client, world.outsider)
    assert client.get("/attribution/generations/").status_code == 200
    assert world.generation.prompt not in client.get("/attribution/generations/").content.decode()
    for url in (
        f"/attribution/generations/{world.generation.pk}/",
        f"/attribution/generations/{world.generation.pk}/audio/",
    ):
        assert client.get(url).status_code == 404, url
    api = APIClient()
    api.force_authenticate(world.outsider)
    base = f"/attribution/api/generations/{world.generation.pk}/"
    assert api.get(base).status_code == 404
    assert api.get(f"{base}audio/").status_code == 404
    assert api.get(f"/attribution/api/runs/{world.run.pk}/").status_code == 404
    assert api.get("/attribution/api/generations/").json()["count"] == 0


def test_a_reversed_settlement_no_longer_shows_as_paying(world, client):
    journal_entry_reverse(entry=world.settlement.journal_entry, reason="wrong split")
    client = logged_in(client, world.holder_user)
    assert client.get(f"/attribution/generations/{world.generation.pk}/").status_code == 404
    assert world.generation.prompt not in client.get("/attribution/generations/").content.decode()


def test_holder_api_detail_lists_only_their_tracks_and_shares(world):
    api = APIClient()
    api.force_authenticate(world.holder_user)
    listed = api.get("/attribution/api/generations/").json()
    assert [g["id"] for g in listed["results"]] == [world.generation.pk]
    assert listed["results"][0]["top_tracks"] == []  # other holders' tracks stay hidden
    detail = api.get(f"/attribution/api/generations/{world.generation.pk}/").json()
    line = SettlementHolderLine.objects.get(
        settlement=world.settlement, rights_holder=world.holders[0]
    )
    assert sorted((t["position"], t["amount_accrual"]) for t in detail["attributed_tracks"]) == (
        sorted((p, a) for p, a in line.tracks)
    )
    assert {t["rights_holder"] for t in detail["attributed_tracks"]} == {
        world.holders[0].legal_name
    }
    snapshot = world.settlement.ownership_snapshot
    for track in detail["attributed_tracks"]:
        expected = next(p for h, p in snapshot[str(track["position"])] if h == world.holders[0].pk)
        assert Decimal(track["ownership_percent"]) == Decimal(expected)
    assert Decimal(detail["attributed_total"]) == accrual_to_decimal(line.amount, "USD")
    audio = api.get(f"/attribution/api/generations/{world.generation.pk}/audio/")
    assert audio.status_code == 200
    assert b"".join(audio.streaming_content) == world.audio


# --- admins and finance -----------------------------------------------------------------------


def test_admin_generation_page_shows_every_paid_track_and_the_pool(world, client):
    response = logged_in(client, world.admin).get(
        f"/attribution/generations/{world.generation.pk}/"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert highlighted_marks(page) == world.settlement.tracks.count()
    assert f"{accrual_to_decimal(world.settlement.pool, 'USD')} USD" in page
    api = APIClient()
    api.force_authenticate(world.finance)
    detail = api.get(f"/attribution/api/generations/{world.generation.pk}/").json()
    assert len(detail["attributed_tracks"]) == world.settlement.tracks.count()
    assert len(detail["top_tracks"]) == 5


@pytest.mark.parametrize("role", ["catalog_admin", "finance"])
def test_admins_and_finance_list_every_generation(world, client, role):
    account = user(f"someone-{role}", role)
    page = logged_in(client, account).get("/attribution/generations/").content.decode()
    assert f"/attribution/generations/{world.generation.pk}/" in page


def test_users_without_a_role_get_403(world, client):
    account = user("no-role", None)
    client = logged_in(client, account)
    for url in (
        "/attribution/generations/",
        f"/attribution/generations/{world.generation.pk}/",
        "/attribution/jobs/",
    ):
        assert client.get(url).status_code == 403, url


def test_anonymous_users_are_sent_to_log_in(world, client):
    response = client.get("/attribution/generations/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


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
    monkeypatch.setattr(tasks.prepare_run, "delay", queued.append)
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
