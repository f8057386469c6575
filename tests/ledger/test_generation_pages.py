"""The generations' list and pages, and one generation with what it paid (the API), for
each role: what each generation paid, and whom (``ledger.views``, ``ledger.apis``)."""

import re
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from attribution.charts import HIGHLIGHT_GROUP_ID
from catalog.models import RightsHolder
from ledger.charts import CUTOFF_ID, PAID_GROUP_ID, UNPAID_GROUP_ID
from ledger.models import SettlementHolderLine
from ledger.money import accrual_to_decimal
from ledger.services import generation_settle, journal_entry_reverse
from tests.ledger import factories
from tests.ledger.generation_world import generation_with_audio, logged_in, settled_world, user


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settled_world()


def highlighted_marks(html: str, group_id: str = HIGHLIGHT_GROUP_ID) -> int:
    """How many marks the chart's group ``group_id`` holds (one ``<use>`` per track)."""
    group = html[html.index(f'<g id="{group_id}"') :]
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
    assert f"exactly {accrual_to_decimal(line.amount, 'USD')} USD" in page
    assert 'class="sort-link"' in page  # sorted on the server, across every page
    assert f"/attribution/generations/{world.generation.pk}/evidence.json" in page


def test_holder_generation_page_has_player_chart_and_only_their_tracks(world, client):
    response = logged_in(client, world.holder_user).get(
        f"/attribution/generations/{world.generation.pk}/"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert world.generation.prompt in page
    assert f'src="/attribution/generations/{world.generation.pk}/audio/"' in page
    assert "<audio controls" in page
    # The evidence to recompute the payment is one click away from the payment.
    assert 'id="evidence-link"' in page
    assert f"/attribution/generations/{world.generation.pk}/evidence.json" in page

    # The chart covers the whole training set, marks the holder's paid tracks as paid and
    # the holder's other tracks apart (the cut-off left them unpaid), wide and narrow alike.
    assert 'class="chart"' in page and "<svg" in page
    own = {
        entry.position
        for entry in world.generation.model_version.training_set_entries.filter(
            recording__ownership_shares__rights_holder=world.holders[0]
        )
    }
    assert 0 < len(own) < 12
    line = SettlementHolderLine.objects.get(
        settlement=world.settlement, rights_holder=world.holders[0]
    )
    paid = {position for position, _ in line.tracks}
    for suffix in ("", "-narrow"):
        assert highlighted_marks(page, PAID_GROUP_ID + suffix) == len(paid)
        if own - paid:
            assert highlighted_marks(page, UNPAID_GROUP_ID + suffix) == len(own - paid)
    cut = world.settlement.tracks.count() < world.settlement.score_count
    assert (f'id="{CUTOFF_ID}"' in page) == cut  # drawn only where it cut tracks
    assert "#d55e00" in page.lower()  # core.charts.HIGHLIGHT

    # The table lists exactly the holder's paid parts, with the settlement's amounts.
    table = page[page.index('id="attributed-tracks"') :]
    table = table[: table.index("</table>")]
    rows = table.count("<tr>") - 1  # minus the header row
    assert rows == len(line.tracks)
    for _position, amount in line.tracks:
        assert f"exactly {accrual_to_decimal(amount, 'USD')} USD" in table
    others = RightsHolder.objects.exclude(pk=world.holders[0].pk).values_list(
        "legal_name", flat=True
    )
    assert not any(name in table for name in others)
    assert f"exactly {accrual_to_decimal(line.amount, 'USD')} USD" in page


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
    assert highlighted_marks(page, PAID_GROUP_ID) == world.settlement.tracks.count()
    assert f"exactly {accrual_to_decimal(world.settlement.pool, 'USD')} USD" in page
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
    ):
        assert client.get(url).status_code == 403, url


def test_anonymous_users_are_sent_to_log_in(world, client):
    response = client.get("/attribution/generations/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
