"""A rights holder's earnings, balance and next payout: what the dashboard shows."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from catalog.models import RightsHolder
from ledger.models import Account, JournalEntry, Posting, StatementPeriod
from ledger.money import accrual_to_minor_floor
from ledger.selectors.holders import holder_balance
from ledger.selectors.payouts import payout_minimum_minor, payout_reserved_minor

EARNING_KINDS = (JournalEntry.Kind.SETTLEMENT, JournalEntry.Kind.REVERSAL)
"""Entry kinds that change what a holder has earned. Payouts and failed payouts only move
money already earned (a reversal always reverses a settlement: the service refuses others)."""


def _holder_postings(*, rights_holder: RightsHolder, currency: str) -> QuerySet[Posting]:
    return Posting.objects.filter(
        account__kind=Account.Kind.HOLDER_PAYABLE,
        account__rights_holder=rights_holder,
        account__currency=currency,
    )


def holder_currencies(*, rights_holder: RightsHolder) -> list[str]:
    """Currencies the holder has a payable account in (has ever been credited in)."""
    return sorted(
        Account.objects.filter(
            kind=Account.Kind.HOLDER_PAYABLE, rights_holder=rights_holder
        ).values_list("currency", flat=True)
    )


def holder_earnings(
    *, rights_holder: RightsHolder, currency: str, starts_at: datetime, ends_at: datetime
) -> int:
    """What the holder earned in [starts_at, ends_at): settlements less their reversals."""
    total = (
        _holder_postings(rights_holder=rights_holder, currency=currency)
        .filter(
            entry__kind__in=EARNING_KINDS,
            entry__effective_at__gte=starts_at,
            entry__effective_at__lt=ends_at,
        )
        .aggregate(total=Sum("amount"))["total"]
    )
    return -(total or 0)


def month_starts(*, now: datetime, months: int) -> list[datetime]:
    """The first instants of the last ``months`` calendar months up to ``now``'s, oldest
    first, in the current time zone."""
    assert months >= 1
    local = timezone.localtime(now)
    year, month = local.year, local.month
    starts = []
    for _ in range(months):
        starts.append(
            local.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0)
        )
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return starts[::-1]


def holder_earnings_by_month(
    *, rights_holder: RightsHolder, currency: str, now: datetime, months: int = 12
) -> list[tuple[datetime, int]]:
    """``[(month start, earnings), ...]`` for the last ``months`` calendar months (zeros
    included), oldest first; earnings as in ``holder_earnings``."""
    starts = month_starts(now=now, months=months)
    rows = (
        _holder_postings(rights_holder=rights_holder, currency=currency)
        .filter(entry__kind__in=EARNING_KINDS, entry__effective_at__gte=starts[0])
        .annotate(month=TruncMonth("entry__effective_at"))
        .values("month")
        .annotate(total=Sum("amount"))
        .values_list("month", "total")
    )
    earned = {month: -total for month, total in rows}
    return [(start, earned.get(start, 0)) for start in starts]


@dataclass(frozen=True)
class EarningsWindow:
    """The span the dashboard calls "this period"."""

    starts_at: datetime
    ends_at: datetime
    period: StatementPeriod | None  # None: no statement period covers now; a calendar month


def earnings_window(*, now: datetime) -> EarningsWindow:
    """The statement period that contains ``now``, else ``now``'s calendar month."""
    period = StatementPeriod.objects.filter(starts_at__lte=now, ends_at__gt=now).first()
    if period is not None:
        return EarningsWindow(period.starts_at, period.ends_at, period)
    starts_at = month_starts(now=now, months=1)[0]
    following = month_starts(now=starts_at + timedelta(days=32), months=1)[0]
    return EarningsWindow(starts_at, following, None)


@dataclass(frozen=True)
class PayoutEstimate:
    """What the next payout batch in ``currency`` would pay the holder (see
    ``ledger.services.payout_batch_create``: whole minor units not already in a draft batch,
    when they reach the threshold; the rest carries forward)."""

    currency: str
    balance: int  # accrual units owed now
    payable_minor: int  # whole minor units of the balance
    reserved_minor: int  # of those, already in a draft batch awaiting payment
    threshold_minor: int

    @property
    def available_minor(self) -> int:
        return max(self.payable_minor - self.reserved_minor, 0)

    @property
    def reaches_threshold(self) -> bool:
        return self.available_minor >= self.threshold_minor

    @property
    def shortfall_minor(self) -> int:
        return max(self.threshold_minor - self.available_minor, 0)


def payout_estimate(*, rights_holder: RightsHolder, currency: str) -> PayoutEstimate:
    balance = holder_balance(rights_holder=rights_holder, currency=currency)
    payable_minor, _ = accrual_to_minor_floor(max(balance, 0))
    return PayoutEstimate(
        currency=currency,
        balance=balance,
        payable_minor=payable_minor,
        reserved_minor=payout_reserved_minor(currency=currency).get(rights_holder.pk, 0),
        threshold_minor=payout_minimum_minor(currency),
    )


@dataclass(frozen=True)
class CurrencySummary:
    currency: str
    balance: int  # accrual units owed now
    earned_in_window: int  # accrual units earned in the dashboard's window
    months: list[tuple[datetime, int]]  # earnings per calendar month, oldest first
    payout: PayoutEstimate


@dataclass(frozen=True)
class HolderDashboard:
    rights_holder: RightsHolder
    window: EarningsWindow
    currencies: list[CurrencySummary]


def holder_dashboard(
    *, rights_holder: RightsHolder, now: datetime | None = None, months: int = 12
) -> HolderDashboard:
    """Per currency the holder was ever credited in: balance, earnings in the current
    period and per month, and the next payout estimate."""
    now = now or timezone.now()
    window = earnings_window(now=now)
    summaries = []
    for currency in holder_currencies(rights_holder=rights_holder):
        estimate = payout_estimate(rights_holder=rights_holder, currency=currency)
        summaries.append(
            CurrencySummary(
                currency=currency,
                balance=estimate.balance,
                earned_in_window=holder_earnings(
                    rights_holder=rights_holder,
                    currency=currency,
                    starts_at=window.starts_at,
                    ends_at=window.ends_at,
                ),
                months=holder_earnings_by_month(
                    rights_holder=rights_holder, currency=currency, now=now, months=months
                ),
                payout=estimate,
            )
        )
    return HolderDashboard(rights_holder=rights_holder, window=window, currencies=summaries)
