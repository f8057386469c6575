"""Settling a generation conditioned on catalog recordings: the references' licence shares
come first, over their ownership, the rest of the pool by training attribution; exact
integers, residue booked, once; provenance, evidence, explanation and statements agree."""

import csv
import io
import json
import subprocess
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from attribution.models import GenerationReference
from attribution.services import ReferenceDeclaration, references_resolve
from attribution.services.references import generation_references_create
from catalog.services import opt_out_create, reference_licence_grant, reference_licence_withdraw
from ledger import selectors, services
from ledger.evidence import evidence_recompute
from ledger.models import JournalEntry, Settlement
from ledger.money import allocate, minor_to_accrual
from ledger.selectors.evidence import generation_evidence
from ledger.selectors.explanations import payment_explanation
from ledger.selectors.statement_lines import REFERENCE_USE, TRAINING_INFLUENCE
from ledger.splits import (
    PERCENT_SCALE,
    ReferenceTerms,
    SplitPolicy,
    TrackWeight,
    generation_split,
    revenue_split,
)
from ledger.statement_exports import statement_lines_csv
from tests.ledger import factories
from tests.ledger.conftest import user_with_role

pytestmark = pytest.mark.django_db

POLICY = SplitPolicy(top_k=5, pool_fraction=Decimal("0.333333333"))  # leaves a residue


def licence(holder, share: str, recording=None):
    return reference_licence_grant(
        rights_holder=holder,
        recording=recording,
        pool_share_percent=share,
        valid_from=date(2020, 1, 1),
        actor=None,
    )


def conditioned(model_version, recordings, *, revenue_minor=100_001, noise=2.0):
    """A generation recorded with ``recordings`` as references (licensed beforehand),
    through attribution's own resolution of the declared hashes."""
    generation = factories.generation_create(
        model_version=model_version, revenue_minor=revenue_minor
    )
    resolved = references_resolve(
        declarations=[
            ReferenceDeclaration(audio_sha256=r.audio_sha256, noise_level=noise) for r in recordings
        ],
        day=timezone.localdate(),
    )
    generation_references_create(generation=generation, references=resolved)
    return generation


def settle(generation, seed=3):
    run = factories.run_create(generation=generation, scores=factories.scores_for(12, seed))
    return services.generation_settle(attribution_run=run, policy=POLICY)


@pytest.fixture
def world(small_catalog):
    """The small catalog, plus a reference recording owned 60/40 by a training-set holder
    and an outside holder, licensed for 30 % of the pool by both."""
    model_version, holders = small_catalog
    outsider = factories.RightsHolderFactory()
    reference = factories.recording_create(shares=[(holders[0], "60"), (outsider, "40")])
    licence(holders[0], "30", reference)
    licence(outsider, "30")
    return model_version, holders, outsider, reference


def test_one_reference_takes_its_licence_share_first_split_by_ownership(world):
    model_version, holders, outsider, reference = world
    generation = conditioned(model_version, [reference])
    entry = settle(generation)
    settlement = entry.settlement
    revenue = minor_to_accrual(100_001)
    pool, platform, residue = revenue_split(revenue=revenue, pool_fraction=POLICY.pool_fraction)
    assert (settlement.pool, settlement.platform, settlement.residue) == (pool, platform, residue)
    assert residue == 1 and pool + platform + residue == revenue
    residue_posting = entry.postings.get(account__kind="rounding_residue")
    assert residue_posting.amount == -residue  # the odd unit is booked
    reference_part, training_part = allocate(pool, [30 * PERCENT_SCALE, 70 * PERCENT_SCALE])
    (line,) = settlement.reference_lines
    assert line["paid"] and line["amount"] == reference_part
    assert line["holders"] == [
        [h, part]
        for h, part in zip(
            sorted([holders[0].pk, outsider.pk]),
            allocate(reference_part, [60 * PERCENT_SCALE, 40 * PERCENT_SCALE]),
            strict=True,
        )
    ]
    assert sum(t.amount for t in settlement.tracks.all()) == training_part
    outsider_line = settlement.holders.get(rights_holder=outsider)
    assert outsider_line.tracks == [] and outsider_line.reference_parts == [
        [0, outsider_line.amount]
    ]
    assert sum(settlement.holders.values_list("amount", flat=True)) == pool
    payable = entry.postings.filter(account__kind="holder_payable")
    assert -sum(payable.values_list("amount", flat=True)) == pool
    assert selectors.ledger_verify().ok


@pytest.mark.parametrize("revenue_minor", [0, 1, 7, 99_999])
def test_several_references_each_take_their_own_share_and_the_parts_sum_to_the_pool(
    world, revenue_minor
):
    model_version, holders, _, first = world
    second = factories.recording_create(shares=[(holders[1], "100")])
    licence(holders[1], "12.5", second)
    generation = conditioned(model_version, [first, second], revenue_minor=revenue_minor)
    settlement = settle(generation).settlement
    lines = settlement.reference_lines
    expected = (
        allocate(
            settlement.pool,
            [30 * PERCENT_SCALE, 125_000, 100 * PERCENT_SCALE - 30 * PERCENT_SCALE - 125_000],
        )
        if settlement.pool
        else [0, 0, 0]
    )
    assert [line["amount"] for line in lines] == expected[:2]
    assert sum(t.amount for t in settlement.tracks.all()) == expected[2]
    assert sum(settlement.holders.values_list("amount", flat=True)) == settlement.pool
    assert settlement.pool + settlement.platform + settlement.residue == settlement.revenue


def test_a_repeated_settlement_books_once(world):
    model_version, _, _, reference = world
    generation = conditioned(model_version, [reference])
    run = factories.run_create(generation=generation, scores=factories.scores_for(12, 3))
    first = services.generation_settle(attribution_run=run, policy=POLICY)
    again = services.generation_settle(attribution_run=run, policy=POLICY)
    assert first.seq == again.seq
    assert JournalEntry.objects.filter(generation=generation).count() == 1
    assert Settlement.objects.filter(generation=generation).count() == 1


@pytest.mark.parametrize("how", ["licence withdrawn", "recording opted out"])
def test_a_reference_no_longer_licensed_at_settlement_falls_back_to_training(world, how):
    model_version, _, outsider, reference = world
    generation = conditioned(model_version, [reference])
    if how == "licence withdrawn":
        licence_row = GenerationReference.objects.get(generation=generation).licence
        reference_licence_withdraw(licence=licence_row, actor=None)
        expected_reason = f"licence {licence_row.pk} was withdrawn"
    else:
        opt_out = opt_out_create(
            rights_holder=outsider,
            recording=reference,
            effective_from=timezone.localdate() - timedelta(days=1),
            actor=None,
        )
        expected_reason = f"opt-out {opt_out.pk}"
    settlement = settle(generation).settlement
    (line,) = settlement.reference_lines
    assert not line["paid"] and line["amount"] == 0 and line["holders"] == []
    assert expected_reason in line["reason"]
    assert sum(t.amount for t in settlement.tracks.all()) == settlement.pool
    assert not settlement.holders.filter(rights_holder=outsider).exists()
    assert selectors.ledger_verify().ok


def test_evidence_and_explanation_recompute_both_parts(world, tmp_path):
    model_version, _, outsider, reference = world
    settlement = settle(conditioned(model_version, [reference])).settlement
    finance = user_with_role("finance")
    full = generation_evidence(generation=settlement.generation, user=finance)
    result = evidence_recompute(full)
    assert result.ok, result.checks
    assert any(name.startswith("reference amounts") for name, _, _ in result.checks)
    holder_user = user_with_role("rights_holder", holders=[outsider])
    own = generation_evidence(generation=settlement.generation, user=holder_user)
    assert evidence_recompute(own).ok
    tampered = {**full, "references": [{**full["references"][0], "share_percent": "31.0000"}]}
    assert not evidence_recompute(tampered).ok
    # the command, in a bare interpreter with only the repository's ledger package
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(full))
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(django_settings.BASE_DIR))}
    command = [sys.executable, "-m", "ledger.evidence", str(path)]
    ran = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "ok   reference amounts" in ran.stdout and "reproduced exactly" in ran.stdout

    explanation = payment_explanation(settlement=settlement, holder_ids=None)
    assert explanation.recomputes
    (explained,) = explanation.references
    assert explained.isrc == reference.isrc and explained.amount == sum(
        part.amount for part in explained.owners
    )
    assert explanation.training_pool == settlement.pool - explained.amount
    for_outsider = payment_explanation(settlement=settlement, holder_ids=[outsider.pk])
    assert for_outsider.recomputes and for_outsider.tracks == []
    assert for_outsider.references[0].your_amount == (
        settlement.holders.get(rights_holder=outsider).amount
    )


def test_the_holders_statement_marks_reference_use_and_training_influence(world):
    model_version, holders, outsider, reference = world
    starts = timezone.now() - timedelta(seconds=1)
    settlement = settle(conditioned(model_version, [reference])).settlement
    period = services.statement_period_create(starts_at=starts, ends_at=timezone.now())
    services.statement_period_close(period=period)
    statement = services.statement_generate(rights_holder=holders[0], period=period, currency="USD")
    (line,) = statement.content["lines"]
    (item,) = line["references"]
    own_reference_part = settlement.holders.get(rights_holder=holders[0]).reference_parts[0][1]
    assert (item["basis"], item["isrc"], item["amount"]) == (
        "reference use",
        reference.isrc,
        own_reference_part,
    )
    rows = list(csv.DictReader(io.StringIO(statement_lines_csv(statement=statement).decode())))
    bases = [row["basis"] for row in rows]
    assert bases[0] == REFERENCE_USE and set(bases[1:]) == {TRAINING_INFLUENCE}
    assert rows[0]["isrc"] == reference.isrc and rows[0]["ownership_share_percent"] == "60.0000"
    from ledger.exports import statement_pdf_document, statement_rows
    from ledger.statement_exports import statement_xlsx

    assert statement_rows(content=statement.content)[1]["tracks"].startswith(
        f"reference use {reference.isrc} "
    )
    assert statement_pdf_document(statement=statement).output()[:4] == b"%PDF"
    assert statement_xlsx(statement=statement)[:2] == b"PK"
    outsider_statement = services.statement_generate(
        rights_holder=outsider, period=period, currency="USD"
    )
    assert [
        r["basis"]
        for r in csv.DictReader(
            io.StringIO(statement_lines_csv(statement=outsider_statement).decode())
        )
    ] == [REFERENCE_USE]


@settings(max_examples=300, deadline=None)
@given(
    revenue_minor=st.integers(0, 10**9),
    shares=st.lists(st.integers(0, 40 * PERCENT_SCALE), min_size=1, max_size=4),
    paid=st.lists(st.booleans(), min_size=4, max_size=4),
    weights=st.lists(st.integers(1, 10**12), min_size=1, max_size=6),
)
def test_split_parts_sum_to_the_pool_exactly(revenue_minor, shares, paid, weights):
    references = [
        ReferenceTerms(
            index=i,
            recording_id=100 + i,
            share_percent=Decimal(share) / PERCENT_SCALE,
            paid=paid[i],
            shares=((1, Decimal("33.3333")), (2, Decimal("66.6667"))),
        )
        for i, share in enumerate(shares)
    ]
    split = generation_split(
        revenue_minor=revenue_minor,
        weights=[TrackWeight(position=i, weight=w) for i, w in enumerate(weights)],
        pool_fraction=Decimal("0.5"),
        ownership={i: [(3, Decimal(100))] for i in range(len(weights))},
        references=references,
    )
    assert split.pool + split.platform + split.residue == split.revenue
    assert sum(r.amount for r in split.references) + sum(t.amount for t in split.tracks) == (
        split.pool
    )
    assert sum(amount for _, amount in split.holders) == split.pool
    for reference, terms in zip(split.references, references, strict=True):
        assert sum(part for _, part in reference.holder_amounts) == reference.amount
        assert terms.paid or reference.amount == 0
        # never more than its share of the pool, rounded up by at most one unit
        assert reference.amount * 100 <= split.pool * terms.share_percent + 100


def test_split_refuses_references_over_the_whole_pool():
    terms = [ReferenceTerms(i, i, Decimal("60"), True, ((1, Decimal(100)),)) for i in range(2)]
    with pytest.raises(ValueError, match="at most 100%"):
        generation_split(
            revenue_minor=100,
            weights=[TrackWeight(0, 1)],
            pool_fraction=Decimal("0.5"),
            ownership={0: [(1, Decimal(100))]},
            references=terms,
        )


def test_the_pages_and_per_recording_earnings_show_reference_use(world):
    from django.test import Client

    from ledger.selectors.recordings import recording_earnings_totals

    model_version, _, outsider, reference = world
    starts = timezone.now() - timedelta(seconds=1)
    settlement = settle(conditioned(model_version, [reference])).settlement
    period = services.statement_period_create(starts_at=starts, ends_at=timezone.now())
    services.statement_period_close(period=period)
    outsider_part = settlement.holders.get(rights_holder=outsider).amount

    client = Client()
    client.force_login(user_with_role("rights_holder", holders=[outsider]))
    page = client.get(f"/attribution/generations/{settlement.generation_id}/").content.decode()
    assert 'id="references"' in page and reference.isrc in page
    explain = client.get(f"/attribution/generations/{settlement.generation_id}/explain/")
    html = explain.content.decode()
    assert 'id="explain-references"' in html and "does not recompute" not in html
    statement = client.get(f"/ledger/statements/{outsider.pk}/{period.pk}/USD/").content.decode()
    assert 'data-basis="reference use"' in statement and reference.isrc in statement

    totals = recording_earnings_totals(holder_ids=[outsider.pk], recording_ids=[reference.pk])
    ((total,),) = totals.values()
    assert (total.lifetime, total.generations) == (outsider_part, 1)


def test_an_audit_with_the_same_scores_pays_reference_use_the_same(world):
    from attribution.models import AttributionRun
    from ledger.selectors.audits import generation_audit

    model_version, _, _, reference = world
    settlement = settle(conditioned(model_version, [reference])).settlement
    audit = AttributionRun.objects.get(pk=settlement.attribution_run_id)
    audit.pk, audit.purpose = None, AttributionRun.Purpose.AUDIT  # the same scores, audited
    audit.save(force_insert=True)
    comparison = generation_audit(settlement.generation, settlement)
    assert comparison is not None and comparison.holder_l1 == 0.0
    assert all(row.paid == row.audit for row in comparison.holders)
