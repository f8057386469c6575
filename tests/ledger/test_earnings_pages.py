"""The pages that explain earnings (``ledger.earnings_views``), the statement page's
summary and by-recording table, and My catalog's earnings: what each caller may see, and
that nothing of one holder reaches another."""

import re

import pytest
from django.test import Client

from catalog.models import Recording
from core.roles import CATALOG_ADMIN, FINANCE, RIGHTS_HOLDER
from ledger.models import Settlement, SettlementHolderLine, Statement
from ledger.money import accrual_to_text
from ledger.selectors.recordings import recording_earnings, recording_earnings_totals
from ledger.selectors.statement_summaries import statement_by_recording, statement_summary
from ledger.services import generation_settle
from tests.ledger import factories
from tests.ledger.conftest import user_with_role


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def explain_url(entry) -> str:
    return f"/attribution/generations/{entry.generation_id}/explain/?entry={entry.seq}"


def statement_url(world) -> str:
    return f"/ledger/statements/{world.a.pk}/{world.period.pk}/USD/"


def exact_values(html: str, testid: str) -> list[str]:
    return re.findall(rf'data-testid="{testid}"[^>]*data-exact="([^"]+)"', html)


# --- explain this payment ------------------------------------------------------------------


def test_the_explanation_page_shows_the_booked_numbers(world):
    entry = world.entries[0]  # pays A 10.005 USD: the whole pool of 20.01 USD revenue
    html = logged_in(user_with_role(RIGHTS_HOLDER, [world.a])).get(explain_url(entry))
    assert html.status_code == 200
    page = html.content.decode()
    settlement = Settlement.objects.get(journal_entry=entry)
    assert exact_values(page, "explain-total") == ["10.00500000"]
    assert exact_values(page, "explain-revenue") == ["20.01"]
    assert exact_values(page, "explain-pool") == [accrual_to_text(settlement.pool, "USD")]
    assert exact_values(page, "part") == ["10.00500000"]
    assert 'data-testid="explain-top-k">1<' in page  # the settlement's own policy (top-K 1)
    assert "recomputes" in page and "does not recompute" not in page
    assert settlement.run_scores_sha256 in page and settlement.checkpoint_sha256 in page
    assert "e-0" not in page and "e-1" not in page  # no scientific notation


def test_a_statement_line_of_a_reversed_settlement_is_explained_as_reversed(world):
    reversed_entry = world.entries[2]  # paid A, then reversed
    page = logged_in(user_with_role(RIGHTS_HOLDER, [world.a])).get(explain_url(reversed_entry))
    assert page.status_code == 200
    assert 'id="explain-reversed"' in page.content.decode()


@pytest.mark.parametrize("entry_index", [0, 2])
def test_another_holder_cannot_open_the_explanation(world, entry_index):
    entry = world.entries[entry_index]  # A's settlements
    b_user = user_with_role(RIGHTS_HOLDER, [world.b])
    response = logged_in(b_user).get(explain_url(entry))
    assert response.status_code == 404
    assert world.a.legal_name not in response.content.decode()
    # nor by naming B's own settlement's entry under A's generation
    b_entry = world.entries[1]
    mixed = f"/attribution/generations/{entry.generation_id}/explain/?entry={b_entry.seq}"
    assert logged_in(b_user).get(mixed).status_code == 404


def test_a_co_paid_generation_shows_each_holder_only_their_part(small_catalog):
    model_version, holders = small_catalog

    generation = factories.generation_create(model_version=model_version, revenue_minor=1999)
    run = factories.run_create(generation=generation, scores=factories.scores_for(12, seed=1))
    entry = generation_settle(attribution_run=run)
    for holder in holders:
        others = [h.legal_name for h in holders if h != holder]
        page = logged_in(user_with_role(RIGHTS_HOLDER, [holder])).get(explain_url(entry))
        assert page.status_code == 200
        html = page.content.decode()
        assert not any(name in html for name in others)
        line = SettlementHolderLine.objects.get(
            settlement__journal_entry=entry, rights_holder=holder
        )
        assert exact_values(html, "explain-total") == [accrual_to_text(line.amount, "USD")]
        parts = exact_values(html, "part")
        assert sorted(parts) == sorted(accrual_to_text(a, "USD") for _, a in line.tracks)


@pytest.mark.parametrize("role", [FINANCE, CATALOG_ADMIN])
def test_finance_and_catalog_admins_see_the_whole_pool(world, role):
    entry = world.entries[1]
    settlement = Settlement.objects.get(journal_entry=entry)
    page = logged_in(user_with_role(role)).get(explain_url(entry)).content.decode()
    assert exact_values(page, "explain-total") == [accrual_to_text(settlement.pool, "USD")]


def test_a_bad_entry_is_not_found(world):
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    base = f"/attribution/generations/{world.entries[0].generation_id}/explain/"
    assert client.get(base + "?entry=x").status_code == 404
    assert client.get(base + "?entry=999999").status_code == 404


# --- per-recording earnings ----------------------------------------------------------------


def test_a_recordings_earnings_net_out_a_reversal(world):
    # Track 0 is A's: entry 1 paid it 10.005; track 2 (A's) was paid 5.00, then reversed.
    first = Settlement.objects.get(journal_entry=world.entries[0]).tracks.get()
    reversed_track = Settlement.objects.get(journal_entry=world.entries[2]).tracks.get()
    earned = recording_earnings(recording=first.recording, holder_ids=[world.a.pk])
    (usd,) = earned.currencies
    assert (usd.lifetime, usd.generations) == (1_000_500_000, 1)  # 10.005 USD
    assert sum(row.amount for row in usd.periods) == usd.lifetime
    taken_back = recording_earnings(recording=reversed_track.recording, holder_ids=[world.a.pk])
    (usd,) = taken_back.currencies
    assert (usd.lifetime, usd.generations) == (0, 0)
    assert sum(row.amount for row in usd.periods) == 0  # booked and reversed in the period
    assert len(taken_back.payments) == 1 and taken_back.payments[0].reversed_at is not None
    totals = recording_earnings_totals(holder_ids=[world.a.pk])
    assert (world.a.pk, reversed_track.recording_id) not in totals


def test_the_recording_page_is_its_owners_only(world):
    recording = Settlement.objects.get(journal_entry=world.entries[0]).tracks.get().recording
    a_page = logged_in(user_with_role(RIGHTS_HOLDER, [world.a])).get(
        f"/catalog/recordings/{recording.pk}/"
    )
    assert a_page.status_code == 200
    html = a_page.content.decode()
    assert exact_values(html, "lifetime-USD") == ["10.00500000"]
    assert 'data-testid="generations-USD">1<' in html
    assert f"?entry={world.entries[0].seq}" in html  # each payment is explained
    b_page = logged_in(user_with_role(RIGHTS_HOLDER, [world.b])).get(
        f"/catalog/recordings/{recording.pk}/"
    )
    assert b_page.status_code == 404
    assert recording.title not in b_page.content.decode()
    finance = logged_in(user_with_role(FINANCE)).get(f"/catalog/recordings/{recording.pk}/")
    assert finance.status_code == 200


def test_my_catalog_shows_each_recordings_earnings_in_the_ledgers_currency(world):
    world.a.payout_currency = "EUR"
    world.a.save(update_fields=["payout_currency"])
    html = logged_in(user_with_role(RIGHTS_HOLDER, [world.a])).get("/catalog/").content.decode()
    assert f'data-testid="ledger-currency-{world.a.pk}">USD<' in html
    assert "paid in EUR" not in html and "not used, the ledger does not convert" in html
    first = Settlement.objects.get(journal_entry=world.entries[0]).tracks.get().recording
    assert f"/catalog/recordings/{first.pk}/" in html
    assert 'title="exactly 10.00500000 USD"' in html
    b_recordings = Recording.objects.filter(ownership_shares__rights_holder=world.b)
    assert not any(f"/catalog/recordings/{r.pk}/" in html for r in b_recordings)


# --- the statement page ----------------------------------------------------------------------


def test_the_statement_page_has_the_summary_and_links_every_line(world):
    client = logged_in(user_with_role(RIGHTS_HOLDER, [world.a]))
    html = client.get(statement_url(world)).content.decode()
    content = Statement.objects.get(rights_holder=world.a).content
    summary = statement_summary(content=content)
    assert summary.adds_up
    assert exact_values(html, "summary-earned") == [accrual_to_text(summary.earned, "USD")]
    assert exact_values(html, "summary-reversed") == ["-5.00000000"]
    assert exact_values(html, "summary-closing") == ["10.00500000"]
    for line in content["lines"]:
        assert (
            f"/attribution/generations/{line['generation']}/explain/?entry={line['entry']}" in html
        )
    by_recording = statement_by_recording(content=content)
    assert sum(row.amount for row in by_recording) == summary.earned
    assert 'id="statement-by-recording"' in html


# --- one scores hash, one checkpoint hash ------------------------------------------------------


def labelled(html: str, label: str) -> set[str]:
    """Every value shown under ``label``: in a fact list, or in a one-line report."""
    listed = re.findall(rf"<dt>{label}</dt><dd[^>]*>([0-9a-f]+)<", html)
    inline = re.findall(rf'title="([0-9a-f]+)">{label} ([0-9a-f]+)…<', html)
    assert all(full.startswith(short) for full, short in inline)
    return set(listed) | {full for full, _ in inline}


def test_the_pages_show_one_scores_hash_and_one_checkpoint_hash(world):
    entry = world.entries[0]
    settlement = Settlement.objects.get(journal_entry=entry)
    run = settlement.attribution_run
    client = logged_in(user_with_role(FINANCE))
    pages = [
        client.get(f"/ledger/journal/{entry.seq}/").content.decode(),
        client.get(f"/attribution/generations/{entry.generation_id}/").content.decode(),
        client.get(explain_url(entry)).content.decode(),
    ]
    for html in pages:
        assert labelled(html, "Scores SHA-256") == {run.scores_sha256}
        assert labelled(html, "Checkpoint SHA-256") == {run.checkpoint_sha256}
    # The ledger hashed the scores it read with the engine's digest: one value, not two.
    assert settlement.scores_sha256 == run.scores_sha256
    assert "canonical JSON" not in pages[0]
