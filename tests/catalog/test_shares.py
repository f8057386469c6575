"""Ownership shares sum to exactly 100: in the service (hypothesis) and in the database."""

import itertools
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog.models import OwnershipShare, Recording
from catalog.selectors import ownership_shares_for_recordings
from catalog.services import ShareSpec, recording_shares_set, shares_problems
from core.exceptions import ApplicationError
from core.models import AuditEvent
from tests.catalog.factories import RecordingFactory, RightsHolderFactory

UNIT = Decimal("0.0001")
TOTAL_UNITS = 1_000_000  # 100.0000 percent in units of 0.0001


@st.composite
def partitions_of_100(draw, max_parts=8):
    """Shares (4 decimals, each > 0) that sum to exactly 100."""
    parts = draw(st.integers(min_value=1, max_value=max_parts))
    cuts = sorted(
        draw(
            st.lists(
                st.integers(min_value=1, max_value=TOTAL_UNITS - 1),
                min_size=parts - 1,
                max_size=parts - 1,
                unique=True,
            )
        )
    )
    bounds = [0, *cuts, TOTAL_UNITS]
    return [Decimal(b - a) * UNIT for a, b in itertools.pairwise(bounds)]


@given(partitions_of_100())
def test_any_partition_of_100_is_accepted(percents):
    assert shares_problems(percents) == []


@given(partitions_of_100(), st.integers(min_value=-50_000, max_value=50_000).filter(bool))
def test_any_other_total_is_refused(percents, delta_units):
    changed = [*percents[:-1], percents[-1] + Decimal(delta_units) * UNIT]
    problems = shares_problems(changed)
    assert problems
    if changed[-1] > 0 and changed[-1] <= 100:
        assert any("sum to" in problem for problem in problems)


def test_shares_problems_edge_cases():
    assert shares_problems([]) == ["a recording needs at least one ownership share"]
    assert shares_problems([Decimal("100")]) == []
    assert shares_problems([Decimal("100.00001")])
    assert shares_problems([Decimal("50"), Decimal("50.00001"), Decimal("-0.00001")])
    assert shares_problems([Decimal("0"), Decimal("100")]) == ["share 0 must be greater than 0"]
    assert shares_problems([33.3333, 66.6667]) != []  # floats are refused


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(percents=partitions_of_100(max_parts=5))
def test_service_stores_shares_that_sum_to_exactly_100(media_root, percents):
    with transaction.atomic():
        recording = RecordingFactory()
        holders = [RightsHolderFactory() for _ in percents]
        recording_shares_set(
            recording=recording,
            shares=[ShareSpec(h, p) for h, p in zip(holders, percents, strict=True)],
            actor=None,
        )
        stored = ownership_shares_for_recordings([recording.pk])[recording.pk]
        assert sum(percent for _, percent in stored) == Decimal("100")
        assert sorted(p for _, p in stored) == sorted(percents)
        transaction.set_rollback(True)


@pytest.mark.django_db
def test_service_refuses_bad_shares_and_keeps_the_old_ones():
    recording = RecordingFactory()
    a, b = RightsHolderFactory(), RightsHolderFactory()
    with pytest.raises(ApplicationError, match=r"sum to 99\.9999"):
        recording_shares_set(
            recording=recording,
            shares=[ShareSpec(a, Decimal("50")), ShareSpec(b, Decimal("49.9999"))],
            actor=None,
        )
    with pytest.raises(ApplicationError, match="appears twice"):
        recording_shares_set(
            recording=recording,
            shares=[ShareSpec(a, Decimal("50")), ShareSpec(a, Decimal("50"))],
            actor=None,
        )
    assert list(recording.ownership_shares.values_list("percent", flat=True)) == [Decimal(100)]
    assert not AuditEvent.objects.filter(action="recording.shares_set").exists()


@pytest.mark.django_db
def test_shares_change_is_audited_with_before_and_after():
    recording = RecordingFactory()
    old_holder = recording.ownership_shares.get().rights_holder
    a, b = RightsHolderFactory(), RightsHolderFactory()
    recording_shares_set(
        recording=recording,
        shares=[ShareSpec(a, Decimal("12.5")), ShareSpec(b, Decimal("87.5"))],
        actor=None,
        reason="rights transfer",
    )
    event = AuditEvent.objects.get(action="recording.shares_set")
    assert event.before == {
        "ownership_shares": [{"rights_holder": old_holder.pk, "percent": "100.0000"}]
    }
    assert {s["percent"] for s in event.after["ownership_shares"]} == {"12.5000", "87.5000"}
    assert event.reason == "rights transfer"


@pytest.mark.django_db(transaction=True)
class TestDatabaseRefusesSharesNotSummingTo100:
    """The deferred constraint trigger of migration 0002, checked at real commits."""

    def test_commit_with_shares_under_100_fails(self):
        holder = RightsHolderFactory()
        with pytest.raises(IntegrityError, match="sum to 90"), transaction.atomic():
            RecordingFactory(shares=[(holder, Decimal("90"))])
        assert not Recording.objects.exists()

    def test_commit_of_a_recording_without_shares_fails(self):
        with pytest.raises(IntegrityError, match="sum to 0"), transaction.atomic():
            RecordingFactory(shares=[])
        assert not Recording.objects.exists()

    def test_removing_a_share_fails_but_replacing_within_a_transaction_works(self):
        a, b = RightsHolderFactory(), RightsHolderFactory()
        recording = RecordingFactory(shares=[(a, Decimal("50")), (b, Decimal("50"))])
        with pytest.raises(IntegrityError), transaction.atomic():
            OwnershipShare.objects.filter(recording=recording, rights_holder=b).delete()
        assert recording.ownership_shares.count() == 2
        with transaction.atomic():  # intermediate states are fine, the commit is checked
            OwnershipShare.objects.filter(recording=recording).delete()
            OwnershipShare.of(recording, rights_holder=a, percent=100).save()
        assert list(recording.ownership_shares.values_list("percent", flat=True)) == [100]

    def test_changing_a_percent_fails(self):
        recording = RecordingFactory()
        with pytest.raises(IntegrityError), transaction.atomic():
            OwnershipShare.objects.filter(recording=recording).update(percent=Decimal("99.9999"))

    def test_deleting_a_recording_with_its_shares_works(self):
        recording = RecordingFactory()
        recording.delete()
        assert not OwnershipShare.objects.exists()
