"""What each attribution method would have paid, beside what was paid (``ledger.selectors
.opinions``): each column is exactly what settling that run's scores books, a holder sees only
their own row (page and API), and the page shows every succeeded run's method."""

import re
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from attribution.models import AttributionRun
from ledger.models import Settlement, SettlementHolderLine
from ledger.money import accrual_to_decimal
from ledger.selectors import generation_detail
from ledger.selectors.audits import ownership_at
from ledger.selectors.opinions import method_payments
from ledger.services import generation_settle
from ledger.splits import SplitPolicy, generation_split, track_weights
from tests.ledger import factories
from tests.ledger.generation_world import logged_in, settled_world, user

SECOND_OPINIONS = {"audio_similarity": 7, "activation_similarity": 8, "unlearning": 9}
"""Method -> seed of its scores (another ranking of the same twelve tracks)."""


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LEDGER_TOP_K = 4  # few tracks paid, so the methods pay different holders
    world = settled_world()
    for method, seed in SECOND_OPINIONS.items():
        factories.run_create(
            generation=world.generation,
            scores=factories.scores_for(12, seed),
            method=method,
            purpose=AttributionRun.Purpose.AUDIT,
        )
    return world


def section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</section>", start)]


def booked(settlement: Settlement) -> dict[int, int]:
    return dict(
        SettlementHolderLine.objects.filter(settlement=settlement).values_list(
            "rights_holder_id", "amount"
        )
    )


def test_each_column_is_what_settling_that_runs_scores_books(world):
    panel = method_payments(settlement=world.settlement, holder_ids=None)
    assert [c.run.method for c in panel.columns] == ["unlearning", *SECOND_OPINIONS]
    assert [c.paying for c in panel.columns] == [True, False, False, False]
    paid = booked(world.settlement)
    assert {row.rights_holder_id: row.paid_accrual for row in panel.rows if row.paid_accrual} == (
        paid
    )
    policy = SplitPolicy.from_dict(world.settlement.policy)
    for index, column in enumerate(panel.columns):
        shown = {row.rights_holder_id: row.amounts[index].amount_accrual for row in panel.rows}
        assert all(isinstance(amount, int) for amount in shown.values())
        assert sum(shown.values()) == world.settlement.pool == column.total_accrual
        # the split run directly on the run's scores, with the settlement's policy
        weights = track_weights(column.run.scores, policy)
        ownership = ownership_at(world.settlement, [w.position for w in weights])
        direct = generation_split(
            revenue_minor=world.settlement.revenue_minor,
            weights=weights,
            pool_fraction=policy.pool_fraction,
            ownership={p: [(h, Decimal(x)) for h, x in v] for p, v in ownership.items()},
        )
        assert {h: a for h, a in shown.items() if a} == dict(direct.holders)
        # and what a settlement of those scores actually books
        twin = factories.generation_create(
            model_version=world.generation.model_version, revenue_minor=1999
        )
        entry = generation_settle(
            attribution_run=factories.run_create(generation=twin, scores=column.run.scores)
        )
        assert {h: a for h, a in shown.items() if a} == booked(entry.settlement)
        if column.paying:
            assert {h: a for h, a in shown.items() if a} == paid
    differs = [c for c in panel.columns if not c.paying and c.holder_l1 > 0]
    assert differs, "the scores rank the tracks differently, so some split differs"
    for column in panel.columns[1:]:
        assert -1.0 <= column.spearman <= 1.0 and 0 <= column.top10_overlap <= 10


def test_the_holders_concerned_are_the_owners_of_paid_or_top_scored_tracks(world):
    panel = method_payments(settlement=world.settlement, holder_ids=None)
    assert {row.rights_holder_id for row in panel.rows} == {h.pk for h in world.holders}
    outsider = world.outsider.rights_holders.get()
    assert method_payments(settlement=world.settlement, holder_ids=[outsider.pk]).rows == []


def test_an_owner_of_a_top_k_track_that_no_method_pays_is_concerned(db, settings):
    settings.LEDGER_TOP_K = 2
    settings.LEDGER_MIN_SHARE = "0.9"  # only the heaviest track is paid
    model_version, holders = factories.catalog_create(tracks=6, holders=3, co_owned_every=0)
    generation = factories.generation_create(model_version=model_version)
    paying = [-0.01] * 6
    paying[0], paying[3] = 0.02, 0.019  # both holders[0]'s: it alone is paid and in the top K
    entry = generation_settle(
        attribution_run=factories.run_create(generation=generation, scores=paying)
    )
    second = [-0.01] * 6
    second[1], second[2] = 0.02, 0.019  # holders[1]'s is paid, holders[2]'s is in the top K
    factories.run_create(
        generation=generation, scores=second, method="audio_similarity", purpose="audit"
    )
    panel = method_payments(settlement=entry.settlement, holder_ids=None)
    rows = {row.rights_holder_id: row for row in panel.rows}
    assert set(rows) == {h.pk for h in holders}
    cut = rows[holders[2].pk]
    assert cut.paid_accrual == 0 and [c.amount_accrual for c in cut.amounts] == [0, 0]
    assert [c.amount_accrual for c in rows[holders[1].pk].amounts] == [0, entry.settlement.pool]


def test_a_holder_sees_only_their_own_row_on_the_page_and_in_the_api(world, client):
    paid = booked(world.settlement)  # a holder's page exists once the generation paid them
    mine = next(h for h in world.holders if paid.get(h.pk))
    others = [h for h in world.holders if h.pk != mine.pk]
    account = user("holder-mine", "rights_holder", mine)
    admin = generation_detail(generation=world.generation, user=world.finance).methods
    their_amounts = {
        str(cell.amount)
        for row in admin.rows
        if row.rights_holder_id != mine.pk
        for cell in row.amounts
        if cell.amount_accrual
    }
    html = (
        logged_in(client, account)
        .get(f"/attribution/generations/{world.generation.pk}/")
        .content.decode()
    )
    panel = section(html, "methods")
    assert re.findall(r'data-holder="(\d+)"', panel) == [str(mine.pk)]
    for holder in others:
        assert holder.legal_name not in panel
    shown = set(re.findall(r'data-exact="([^"]+)"', panel))
    own_row = next(row for row in admin.rows if row.rights_holder_id == mine.pk)
    own = {str(own_row.paid)} | {str(cell.amount) for cell in own_row.amounts}
    assert shown <= own  # the totals too are the holder's own amounts, not the pool
    assert their_amounts - own, "other holders are paid amounts the holder must not see"
    assert 'id="second-opinion"' not in html  # holders cannot ask for runs

    api = APIClient()
    api.force_authenticate(account)
    data = api.get(f"/attribution/api/generations/{world.generation.pk}/").json()
    payments = data["method_payments"]
    assert [row["rights_holder_id"] for row in payments["holders"]] == [mine.pk]
    assert [run["total_accrual"] for run in payments["runs"]] == [
        cell.amount_accrual for cell in own_row.amounts
    ]
    assert payments["paid_total_accrual"] == own_row.paid_accrual
    assert others[0].legal_name not in str(data) and others[1].legal_name not in str(data)


def test_the_page_and_api_show_every_method_beside_what_was_paid(world, client):
    html = (
        logged_in(client, world.finance)
        .get(f"/attribution/generations/{world.generation.pk}/")
        .content.decode()
    )
    panel = section(html, "methods")
    runs = list(AttributionRun.objects.filter(generation=world.generation).order_by("id"))
    for run in runs:
        assert f'id="method-column-{run.pk}"' in panel
    for run in runs[1:]:
        assert f'id="method-spearman-{run.pk}"' in panel and f'id="method-l1-{run.pk}"' in panel
    assert "audio similarity (MFCC and chroma)" in panel and "exact unlearning" in panel
    assert len(re.findall(r'data-holder="\d+"', panel)) == 3
    pool = str(accrual_to_decimal(world.settlement.pool, "USD"))
    assert panel.count(f'data-exact="{pool}"') == 1 + len(runs)  # paid and every column's total
    assert 'name="method"' in html and 'value="gradient_similarity"' in html

    api = APIClient()
    api.force_authenticate(world.admin)
    payments = api.get(f"/attribution/api/generations/{world.generation.pk}/").json()[
        "method_payments"
    ]
    assert [r["run"] for r in payments["runs"]] == [r.pk for r in runs]
    assert payments["runs"][0]["paying"] and payments["runs"][0]["spearman"] is None
    for index in range(len(runs)):
        assert sum(h["amounts"][index]["amount_accrual"] for h in payments["holders"]) == (
            world.settlement.pool
        )
