"""Payout batches: drafted from the holders' payable balances, exported, booked as paid;
a line that did not arrive is reversed and carries forward."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from core.exceptions import ApplicationError
from core.services import audit_record
from ledger import hashing
from ledger.models import Account, JournalEntry, PayoutBatch, PayoutLine, StatementPeriod
from ledger.money import ACCRUAL_SCALE, accrual_to_minor_floor, minor_to_decimal
from ledger.selectors.holders import holder_payable_balances, holder_payable_due
from ledger.selectors.payouts import payout_minimum_minor, payout_reserved_minor
from ledger.services.accounts import accounts_ensure
from ledger.services.db import ledger_lock
from ledger.services.journal import Line, entry_post

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def _money_text(amount_minor: int, currency: str) -> str:
    """``$10.00``, ``€5.00``, ``CHF 7.50``: an amount as people read it in a message."""
    amount = f"{minor_to_decimal(amount_minor, currency):,}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{currency} {amount}"


@transaction.atomic
def payout_batch_create(
    *,
    currency: str,
    threshold_minor: int | None = None,
    period: StatementPeriod | None = None,
    actor: AbstractBaseUser | None = None,
) -> PayoutBatch:
    """A draft batch paying every holder whose payable balance reaches the threshold.

    A line pays the whole minor units of the balance not already in another draft batch;
    holders below the threshold, and the sub-minor remainder, carry forward. With a closed
    ``period``, a line pays only what was earned by the period's end
    (``holder_payable_due``); earnings booked later wait for a later batch.
    """
    threshold = payout_minimum_minor(currency) if threshold_minor is None else threshold_minor
    if threshold < 1:
        raise ApplicationError(
            f"The minimum payout must be at least {_money_text(1, currency)}.",
            field="threshold_minor",
        )
    if period is not None:
        period.refresh_from_db()
        if not period.is_closed:
            raise ApplicationError("Only a closed period can be paid out.", field="period")
    ledger_lock()
    reserved = payout_reserved_minor(currency=currency)
    if period is None:
        balances = holder_payable_balances(currency=currency)
    else:
        balances = holder_payable_due(currency=currency, through=period.ends_at)
    lines = []
    for holder_id, balance in balances.items():
        if balance <= 0:
            continue
        whole_minor, _ = accrual_to_minor_floor(balance)
        available = whole_minor - reserved.get(holder_id, 0)
        if available >= threshold:
            lines.append((holder_id, available))
    if not lines:
        raise ApplicationError(
            f"No rights holder is owed at least {_money_text(threshold, currency)} "
            "(not already in a draft batch)."
        )
    batch = PayoutBatch.objects.create(
        currency=currency,
        threshold_minor=threshold,
        period=period,
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    PayoutLine.objects.bulk_create(
        PayoutLine(batch=batch, rights_holder_id=h, amount_minor=a) for h, a in lines
    )
    audit_record(
        actor=actor,
        action="ledger.payout_batch.create",
        obj=batch,
        after={
            "lines": len(lines),
            "total_minor": sum(a for _, a in lines),
            "period": period.pk if period is not None else None,
        },
    )
    return batch


@transaction.atomic
def payout_batch_file_export(
    *, batch: PayoutBatch, fmt: str, actor: AbstractBaseUser | None = None
) -> bytes:
    """The batch's payment file (``ledger.exports.payout_batch_export``: ``csv`` or
    ``xlsx``). Every export is audited: the file carries the payees' payout details."""
    from ledger.exports import payout_batch_export

    if fmt not in ("csv", "xlsx"):
        raise ApplicationError(f"Unknown export format {fmt!r}: csv or xlsx.", field="fmt")
    data = payout_batch_export(batch=batch, fmt=fmt)
    audit_record(
        actor=actor,
        action="ledger.payout_batch.export",
        obj=batch,
        after={"format": fmt, "status": batch.status, "sha256": hashing.sha256_hex(data)},
    )
    return data


@transaction.atomic
def payout_batch_mark_paid(
    *, batch: PayoutBatch, actor: AbstractBaseUser | None = None
) -> JournalEntry:
    """Book the batch: Dr each holder's payable, Cr payouts clearing (one entry)."""
    ledger_lock()
    batch = PayoutBatch.objects.select_for_update().get(pk=batch.pk)
    if batch.status != PayoutBatch.Status.DRAFT:
        raise ApplicationError(f"Payout batch {batch.pk} is already {batch.status}.")
    lines = list(batch.lines.filter(status=PayoutLine.Status.PENDING).order_by("rights_holder_id"))
    if not lines:
        raise ApplicationError(f"Payout batch {batch.pk} has no pending lines.")
    balances = holder_payable_balances(currency=batch.currency)
    for line in lines:
        if balances.get(line.rights_holder_id, 0) < line.amount_minor * ACCRUAL_SCALE:
            raise ApplicationError(
                f"Rights holder {line.rights_holder_id} is no longer owed "
                f"{_money_text(line.amount_minor, batch.currency)}; fail that line first."
            )
    K = Account.Kind
    accounts = accounts_ensure(
        specs=[
            (K.PAYOUTS_CLEARING, batch.currency, None),
            *[(K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id) for line in lines],
        ]
    )
    total = sum(line.amount_minor for line in lines) * ACCRUAL_SCALE
    entry = entry_post(
        kind=JournalEntry.Kind.PAYOUT,
        currency=batch.currency,
        lines=[
            *[
                Line(
                    accounts[
                        Account.make_key(K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id)
                    ],
                    line.amount_minor * ACCRUAL_SCALE,
                )
                for line in lines
            ],
            Line(accounts[Account.make_key(K.PAYOUTS_CLEARING, batch.currency)], -total),
        ],
        memo=f"Payout batch {batch.pk}",
        payout_batch=batch,
    )
    PayoutLine.objects.filter(pk__in=[line.pk for line in lines]).update(
        status=PayoutLine.Status.PAID
    )
    batch.status = PayoutBatch.Status.PAID
    batch.paid_at = timezone.now()
    batch.save(update_fields=["status", "paid_at"])
    audit_record(
        actor=actor,
        action="ledger.payout_batch.mark_paid",
        obj=batch,
        before={"status": PayoutBatch.Status.DRAFT},
        after={"status": PayoutBatch.Status.PAID, "entry": entry.seq},
    )
    return entry


@transaction.atomic
def payout_line_fail(
    *, line: PayoutLine, reason: str, actor: AbstractBaseUser | None = None
) -> JournalEntry | None:
    """A payout line that did not reach the holder.

    Paid line: book the reversal of its part of the payout (Dr payouts clearing, Cr the
    holder's payable) referencing the payout entry, so the amount carries forward to the
    next batch. Line of a draft batch: nothing was booked; it is only excluded.
    """
    if not reason.strip():
        raise ApplicationError("A failed payout needs a reason.", field="reason")
    ledger_lock()
    line = PayoutLine.objects.select_for_update().select_related("batch").get(pk=line.pk)
    before = {"status": line.status}
    if line.status == PayoutLine.Status.FAILED:
        raise ApplicationError(f"Payout line {line.pk} has already failed.")
    entry = None
    if line.status == PayoutLine.Status.PAID:
        batch = line.batch
        paid_entry = JournalEntry.objects.get(payout_batch=batch, kind=JournalEntry.Kind.PAYOUT)
        K = Account.Kind
        accounts = accounts_ensure(
            specs=[
                (K.PAYOUTS_CLEARING, batch.currency, None),
                (K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id),
            ]
        )
        amount = line.amount_minor * ACCRUAL_SCALE
        entry = entry_post(
            kind=JournalEntry.Kind.PAYOUT_FAILURE,
            currency=batch.currency,
            lines=[
                Line(accounts[Account.make_key(K.PAYOUTS_CLEARING, batch.currency)], amount),
                Line(
                    accounts[
                        Account.make_key(K.HOLDER_PAYABLE, batch.currency, line.rights_holder_id)
                    ],
                    -amount,
                ),
            ],
            memo=f"Payout line {line.pk} failed: {reason}",
            reverses=paid_entry,
            payout_batch=batch,
            payout_line=line,
        )
    line.status = PayoutLine.Status.FAILED
    line.failure_reason = reason
    line.save(update_fields=["status", "failure_reason"])
    audit_record(
        actor=actor,
        action="ledger.payout_line.fail",
        obj=line,
        before=before,
        after={"status": line.status, "entry": entry.seq if entry else None},
        reason=reason,
    )
    return entry
