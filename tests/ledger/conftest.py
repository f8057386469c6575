from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from attribution.models import Generation
from catalog.models import RightsHolder
from ledger import services
from ledger.models import JournalEntry, StatementPeriod
from ledger.splits import SplitPolicy
from tests.ledger import factories


@pytest.fixture
def small_catalog(db):
    """A model version with 12 tracks owned by 3 holders (every 3rd track co-owned)."""
    return factories.catalog_create(tracks=12, holders=3)


@pytest.fixture
def settled_run(small_catalog):
    model_version, _ = small_catalog
    generation = factories.generation_create(model_version=model_version, revenue_minor=1999)
    return factories.run_create(generation=generation, scores=factories.scores_for(12, seed=1))


# --- a small world with known amounts, for the pages and the API -----------------------------

ONE_TRACK = SplitPolicy(top_k=1)
"""The heaviest track takes the whole pool (half the revenue), so every amount is known."""

FORMULA_PROMPT = '=HYPERLINK("http://evil","x")'


def user_with_role(role: str, holders=()):
    user = factories.UserFactory()
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    for holder in holders:
        holder.users.add(user)
    return user


def settle_known(model_version, *, heaviest: int, revenue_minor: int, prompt: str | None = None):
    """Settle one generation whose whole pool goes to the track at ``heaviest``."""
    generation = factories.generation_create(
        model_version=model_version, revenue_minor=revenue_minor
    )
    if prompt is not None:
        Generation.objects.filter(pk=generation.pk).update(prompt=prompt)
        generation.refresh_from_db()
    scores = [1.0 if i == heaviest else 0.0 for i in range(4)]
    run = factories.run_create(generation=generation, scores=scores)
    return services.generation_settle(attribution_run=run, policy=ONE_TRACK)


@dataclass
class World:
    a: RightsHolder  # owns tracks 0 and 2
    b: RightsHolder  # owns tracks 1 and 3
    period: StatementPeriod  # closed; holds entries 1-4
    entries: list[JournalEntry]  # 1: A 10.005, 2: B 5.00, 3: A 5.00, 4: reversal of 3


def world_create() -> World:
    """Two holders, four tracks, one closed period: generation 1 (revenue 20.01 USD, a
    spreadsheet formula as its prompt) pays A 10.00500000; generation 2 (10.00) pays B
    5.00000000; generation 3 (10.00) pays A 5.00000000 and is then reversed."""
    model_version, (a, b) = factories.catalog_create(tracks=4, holders=2, co_owned_every=0)
    starts = timezone.now() - timedelta(seconds=1)
    e1 = settle_known(model_version, heaviest=0, revenue_minor=2001, prompt=FORMULA_PROMPT)
    e2 = settle_known(model_version, heaviest=1, revenue_minor=1000)
    e3 = settle_known(model_version, heaviest=2, revenue_minor=1000)
    e4 = services.journal_entry_reverse(entry=e3, reason="duplicate generation")
    ends = timezone.now()
    period = services.statement_period_create(starts_at=starts, ends_at=ends)
    services.statement_period_close(period=period)
    return World(a=a, b=b, period=period, entries=[e1, e2, e3, e4])


@pytest.fixture
def world(db) -> World:
    return world_create()
