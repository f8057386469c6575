import csv
import io
from decimal import Decimal

import pandas as pd
import pytest

from core.exceptions import ApplicationError
from ledger import selectors, services
from ledger.exports import payout_batch_export
from ledger.models import Account, JournalEntry, PayoutBatch, PayoutLine
from ledger.money import ACCRUAL_SCALE
from ledger.splits import SplitPolicy
from tests.ledger import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def earnings(db):
    """Three holders with very different balances (the scores favour holder 0's tracks)."""
    model_version, holders = factories.catalog_create(tracks=6, holders=3, co_owned_every=0)
    holders[0].legal_name = '=HYPERLINK("http://evil","x")'
    holders[0].save(update_fields=["legal_name"])
    scores = [10.0, 0.0, -10.0, 10.0, 0.0, -10.0]  # positions 0,3 -> holder 0; 2,5 -> holder 2
    policy = SplitPolicy(temperature=Decimal(1), top_k=None, min_share=Decimal(0))
    for _ in range(3):
        generation = factories.generation_create(model_version=model_version, revenue_minor=2001)
        run = factories.run_create(generation=generation, scores=scores)
        services.generation_settle(attribution_run=run, policy=policy)
    return holders


def balances(holders):
    return [selectors.holder_balance(rights_holder=h, currency="USD") for h in holders]


def test_batch_pays_holders_above_threshold_and_carries_the_rest(earnings):
    holders = earnings
    before = balances(holders)
    threshold = 300
    assert before[0] >= threshold * ACCRUAL_SCALE > before[2]
    batch = services.payout_batch_create(currency="USD", threshold_minor=threshold)
    lines = {line.rights_holder_id: line for line in batch.lines.all()}
    assert holders[2].pk not in lines  # below the minimum: carries forward
    for holder, balance in zip(holders, before, strict=True):
        if holder.pk in lines:
            assert lines[holder.pk].amount_minor == balance // ACCRUAL_SCALE
    # Nothing is booked until the batch is marked paid.
    assert balances(holders) == before
    entry = services.payout_batch_mark_paid(batch=batch)
    assert entry.kind == JournalEntry.Kind.PAYOUT
    after = balances(holders)
    for holder, b0, b1 in zip(holders, before, after, strict=True):
        paid = lines[holder.pk].amount_minor * ACCRUAL_SCALE if holder.pk in lines else 0
        assert b1 == b0 - paid
        assert 0 <= b1 < (ACCRUAL_SCALE if holder.pk in lines else b0 + 1)
    clearing = Account.objects.get(key="payouts_clearing:USD")
    total = sum(line.amount_minor for line in lines.values()) * ACCRUAL_SCALE
    assert selectors.account_balance(account=clearing) == -total
    batch.refresh_from_db()
    assert batch.status == PayoutBatch.Status.PAID
    assert set(batch.lines.values_list("status", flat=True)) == {PayoutLine.Status.PAID}
    with pytest.raises(ApplicationError, match="already paid"):
        services.payout_batch_mark_paid(batch=batch)
    assert selectors.ledger_verify().ok


def test_failed_line_is_reversed_and_carried_forward(earnings):
    holders = earnings
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    paid_entry = services.payout_batch_mark_paid(batch=batch)
    line = batch.lines.get(rights_holder=holders[0])
    before = selectors.holder_balance(rights_holder=holders[0], currency="USD")
    failure = services.payout_line_fail(line=line, reason="IBAN closed")
    assert failure.reverses_id == paid_entry.seq and failure.payout_line_id == line.pk
    after = selectors.holder_balance(rights_holder=holders[0], currency="USD")
    assert after == before + line.amount_minor * ACCRUAL_SCALE
    line.refresh_from_db()
    assert line.status == PayoutLine.Status.FAILED and line.failure_reason == "IBAN closed"
    with pytest.raises(ApplicationError, match="already failed"):
        services.payout_line_fail(line=line, reason="again")
    with pytest.raises(ApplicationError, match="line by line"):
        services.journal_entry_reverse(entry=paid_entry, reason="whole batch bounced")
    # The next batch pays the carried-forward amount.
    next_batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    assert next_batch.lines.get(rights_holder=holders[0]).amount_minor == line.amount_minor
    assert selectors.ledger_verify().ok


def test_draft_batches_reserve_their_amounts(earnings):
    services.payout_batch_create(currency="USD", threshold_minor=1)
    with pytest.raises(ApplicationError, match="No rights holder"):
        services.payout_batch_create(currency="USD", threshold_minor=1)


def test_failing_a_draft_line_books_nothing(earnings):
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    line = batch.lines.first()
    entries = JournalEntry.objects.count()
    assert services.payout_line_fail(line=line, reason="holder asked to wait") is None
    services.payout_batch_mark_paid(batch=batch)
    assert JournalEntry.objects.count() == entries + 1
    line.refresh_from_db()
    assert line.status == PayoutLine.Status.FAILED
    assert selectors.ledger_verify().ok


def test_exports_are_exact_and_formula_safe(earnings):
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    lines = list(batch.lines.order_by("rights_holder_id"))
    rows = list(csv.DictReader(io.StringIO(payout_batch_export(batch=batch, fmt="csv").decode())))
    assert [int(r["amount_minor"]) for r in rows] == [line.amount_minor for line in lines]
    assert [Decimal(r["amount"]) for r in rows] == [
        Decimal(line.amount_minor) / 100 for line in lines
    ]
    assert rows[0]["legal_name"] == '\'=HYPERLINK("http://evil","x")'
    frame = pd.read_excel(io.BytesIO(payout_batch_export(batch=batch, fmt="xlsx")), dtype=str)
    assert frame["legal_name"].iloc[0].startswith("'=")
    assert list(frame["amount_minor"].astype(int)) == [line.amount_minor for line in lines]
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(payout_batch_export(batch=batch, fmt="xlsx"))).active
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_payout_files_carry_numeric_amounts_details_and_references(earnings):
    from openpyxl import load_workbook

    earnings[1].payout_details = "IBAN DE00 0000 0000 0000 0000 00"
    earnings[1].save(update_fields=["payout_details"])
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    lines = {line.rights_holder_id: line for line in batch.lines.all()}
    rows = list(csv.DictReader(io.StringIO(payout_batch_export(batch=batch, fmt="csv").decode())))
    by_holder = {int(row["rights_holder_id"]): row for row in rows}
    assert by_holder[earnings[1].pk]["payout_details"] == "IBAN DE00 0000 0000 0000 0000 00"
    for holder_id, row in by_holder.items():
        assert (
            row["payout_reference"]
            == lines[holder_id].reference
            == (f"RL-{batch.pk}-{lines[holder_id].pk}")
        )
    data = payout_batch_export(batch=batch, fmt="xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    header = [cell.value for cell in sheet[1]]
    amounts = [row[header.index("amount")] for row in sheet.iter_rows(min_row=2)]
    assert [cell.data_type for cell in amounts] == ["n"] * len(lines)
    assert all(cell.number_format == "#,##0.00" for cell in amounts)
    # The cells hold the exact amounts: they sum (as decimals) to the batch total.
    total = sum(line.amount_minor for line in lines.values())
    assert sum(Decimal(str(cell.value)) for cell in amounts) == Decimal(total) / 100


def test_payout_command_round_trip(earnings, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    out = io.StringIO()
    call_command(
        "ledger_payouts", "create", "--currency", "usd", "--threshold-minor", "1", stdout=out
    )
    batch = PayoutBatch.objects.get()
    assert out.getvalue().startswith(f"batch {batch.pk}:")
    target = tmp_path / "batch.xlsx"
    call_command(
        "ledger_payouts", "export", str(batch.pk), "--format", "xlsx", "--output", str(target),
        stdout=io.StringIO(),
    )  # fmt: skip
    assert len(pd.read_excel(target)) == batch.lines.count()
    call_command("ledger_payouts", "mark-paid", str(batch.pk), stdout=io.StringIO())
    with pytest.raises(CommandError, match="already paid"):
        call_command("ledger_payouts", "mark-paid", str(batch.pk), stdout=io.StringIO())
    line = batch.lines.first()
    call_command("ledger_payouts", "fail-line", str(line.pk), "--reason", "x", stdout=io.StringIO())
    line.refresh_from_db()
    assert line.status == PayoutLine.Status.FAILED


def test_a_batch_for_a_period_pays_only_what_was_earned_by_its_end(world):
    from datetime import timedelta

    from django.utils import timezone

    from tests.ledger.conftest import settle_known

    a, b = world.a, world.b
    model_version = world.entries[0].generation.model_version
    later = settle_known(model_version, heaviest=0, revenue_minor=4000)  # A: +20.00 after it
    end = world.period.ends_at
    assert selectors.holder_payable_due(currency="USD", through=end) == {
        a.pk: 10_005_000_00,
        b.pk: 5_000_000_00,
    }
    now = timezone.now()
    still_open = services.statement_period_create(starts_at=now, ends_at=now + timedelta(days=1))
    with pytest.raises(ApplicationError, match="closed period"):
        services.payout_batch_create(currency="USD", threshold_minor=1, period=still_open)

    by_period = services.payout_batch_create(currency="USD", threshold_minor=1, period=world.period)
    assert by_period.period == world.period
    assert dict(by_period.lines.values_list("rights_holder_id", "amount_minor")) == {
        a.pk: 1000,
        b.pk: 500,
    }
    # The later earnings are still owed: a batch without a period pays them (the period's
    # amounts are reserved by the draft above).
    rest = services.payout_batch_create(currency="USD", threshold_minor=1)
    assert dict(rest.lines.values_list("rights_holder_id", "amount_minor")) == {a.pk: 2000}

    # Money earned by the end of the period and reversed later is no longer due; a reversal
    # of a later settlement changes nothing that was due by then.
    services.journal_entry_reverse(entry=later, reason="refunded")
    assert selectors.holder_payable_due(currency="USD", through=end)[a.pk] == 10_005_000_00
    services.journal_entry_reverse(entry=world.entries[0], reason="refunded")
    assert selectors.holder_payable_due(currency="USD", through=end)[a.pk] == 0


def test_paid_out_money_is_not_due_again_for_the_period(world):
    batch = services.payout_batch_create(currency="USD", threshold_minor=1)
    services.payout_batch_mark_paid(batch=batch)
    due = selectors.holder_payable_due(currency="USD", through=world.period.ends_at)
    assert due == {world.a.pk: 500_000, world.b.pk: 0}  # A's sub-cent remainder carries forward
    with pytest.raises(ApplicationError, match="No rights holder"):
        services.payout_batch_create(currency="USD", threshold_minor=1, period=world.period)


def test_payout_command_creates_a_batch_for_a_period(world):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no statement period 999999"):
        call_command("ledger_payouts", "create", "--currency", "USD", "--period", "999999")
    out = io.StringIO()
    call_command(
        "ledger_payouts", "create", "--currency", "USD", "--threshold-minor", "600",
        "--period", str(world.period.pk), stdout=out,
    )  # fmt: skip
    batch = PayoutBatch.objects.get()
    assert batch.period == world.period and out.getvalue().startswith(f"batch {batch.pk}: 1 lines")
