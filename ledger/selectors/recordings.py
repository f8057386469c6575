"""What each recording earned its rights holders: lifetime, per statement period, and how
many generations paid it (My catalog and the recording pages).

Read from the settlements' holder lines (``SettlementHolderLine.tracks``: a holder's part
of each paid track, in accrual units; ``reference_parts``: its part of each reference the
generation was conditioned on) and their track and reference lines (which recording sits
at each training-set position, which recording each reference is). A recording paid both
as a reference and as a training track of one generation is one payment of the sum.
A settlement counts when it is booked; when a reversal takes it
back, its amounts count negatively at the reversal's date, exactly as the holder's payable
account moved, so the per-period figures add up to what the statements show for the
recording. A reversed settlement is not a paying generation.
"""

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from attribution.selectors import AnyUser, user_sees_all_generations
from catalog.earnings import LedgerEarnings
from catalog.models import Recording
from catalog.selectors import holders_for_user
from ledger.models import (
    Account,
    JournalEntry,
    SettlementHolderLine,
    SettlementTrackLine,
    StatementPeriod,
)


@dataclass(frozen=True)
class RecordingPayment:
    """One holder's part of one recording in one settlement."""

    rights_holder_id: int
    recording_id: int
    currency: str
    settlement_id: int
    generation_id: int
    entry_seq: int
    booked_at: datetime
    amount: int  # accrual units
    reversed_at: datetime | None  # when a reversal took it back


def recording_payments(
    *, holder_ids: Collection[int] | None, recording_ids: Collection[int] | None = None
) -> list[RecordingPayment]:
    """Every part of a recording paid to one of ``holder_ids`` (``None``: to anyone),
    optionally only of ``recording_ids``, oldest first."""
    lines = SettlementHolderLine.objects.all()
    if holder_ids is not None:
        lines = lines.filter(rights_holder_id__in=list(holder_ids))
    if recording_ids is not None:
        # settlements with references are few: they are read and filtered below
        lines = lines.filter(
            Q(settlement__tracks__recording_id__in=list(recording_ids))
            | ~Q(settlement__reference_lines=[])
        ).distinct()
    lines = lines.values_list(
        "rights_holder_id",
        "settlement_id",
        "tracks",
        "reference_parts",
        "settlement__reference_lines",
        "settlement__currency",
        "settlement__generation_id",
        "settlement__journal_entry_id",
        "settlement__journal_entry__effective_at",
    ).order_by("settlement__journal_entry_id", "rights_holder_id")
    lines = list(lines)
    settlement_ids = {line[1] for line in lines}
    track_lines = SettlementTrackLine.objects.filter(settlement_id__in=settlement_ids)
    if recording_ids is not None:
        track_lines = track_lines.filter(recording_id__in=list(recording_ids))
    recording_at = {
        (settlement_id, position): recording_id
        for settlement_id, position, recording_id in track_lines.values_list(
            "settlement_id", "position", "recording_id"
        )
    }
    reversed_at = dict(
        JournalEntry.objects.filter(
            kind=JournalEntry.Kind.REVERSAL,
            reverses_id__in={line[7] for line in lines},
        ).values_list("reverses_id", "effective_at")
    )
    wanted = None if recording_ids is None else set(recording_ids)
    payments: dict[tuple[int, int, int], RecordingPayment] = {}
    for line in lines:
        holder_id, settlement_id, tracks, reference_parts, references = line[:5]
        currency, generation_id, seq, booked = line[5:]
        reference_recording = {r["index"]: r["recording"] for r in references or []}
        parts = [
            (recording_at.get((settlement_id, position)), amount) for position, amount in tracks
        ] + [(reference_recording.get(index), amount) for index, amount in reference_parts or []]
        for recording_id, amount in parts:
            if recording_id is None or (wanted is not None and recording_id not in wanted):
                continue
            key = (holder_id, recording_id, settlement_id)
            earlier = payments.get(key)
            payments[key] = RecordingPayment(
                rights_holder_id=holder_id,
                recording_id=recording_id,
                currency=currency,
                settlement_id=settlement_id,
                generation_id=generation_id,
                entry_seq=seq,
                booked_at=booked,
                amount=int(amount) + (earlier.amount if earlier else 0),
                reversed_at=reversed_at.get(seq),
            )
    return list(payments.values())


@dataclass(frozen=True)
class EarningsTotal:
    currency: str
    lifetime: int  # accrual units: booked, less what reversals took back
    generations: int  # settlements that pay it now (not reversed)


def recording_earnings_totals(
    *, holder_ids: Collection[int], recording_ids: Collection[int] | None = None
) -> dict[tuple[int, int], list[EarningsTotal]]:
    """``{(rights_holder_id, recording_id): [EarningsTotal per currency]}`` (My catalog)."""
    sums: dict[tuple[int, int, str], list[int]] = {}
    for payment in recording_payments(holder_ids=holder_ids, recording_ids=recording_ids):
        if payment.reversed_at is not None:
            continue  # booked and taken back: nets to nothing, pays no generation
        key = (payment.rights_holder_id, payment.recording_id, payment.currency)
        total = sums.setdefault(key, [0, 0])
        total[0] += payment.amount
        total[1] += 1
    result: dict[tuple[int, int], list[EarningsTotal]] = {}
    for (holder_id, recording_id, currency), (amount, count) in sorted(sums.items()):
        result.setdefault((holder_id, recording_id), []).append(
            EarningsTotal(currency=currency, lifetime=amount, generations=count)
        )
    return result


@dataclass(frozen=True)
class PeriodEarnings:
    label: str
    period: StatementPeriod | None  # None: after the last statement period
    amount: int  # accrual units: booked in the period, less reversals booked in it

    @property
    def chart_label(self) -> str:
        """The period's start (a chart's axis has no room for both ends)."""
        return f"{self.period.starts_at:%Y-%m-%d}" if self.period else "other"


@dataclass(frozen=True)
class RecordingCurrencyEarnings:
    currency: str
    lifetime: int
    generations: int
    periods: list[PeriodEarnings]  # oldest first


@dataclass(frozen=True)
class RecordingEarnings:
    recording: Recording
    currencies: list[RecordingCurrencyEarnings]
    payments: list[RecordingPayment]  # newest first


def _period_of(moment: datetime, periods: list[StatementPeriod]) -> StatementPeriod | None:
    for period in periods:
        if period.starts_at <= moment < period.ends_at:
            return period
    return None


def _period_label(period: StatementPeriod | None) -> str:
    if period is None:
        return "outside the statement periods"
    return f"{period.starts_at:%Y-%m-%d} to {period.ends_at:%Y-%m-%d}"


def recording_earnings(*, recording: Recording, holder_ids: Collection[int]) -> RecordingEarnings:
    """What ``recording`` earned the holders ``holder_ids``: per currency, lifetime, per
    statement period and the number of generations that pay it; and every payment.
    ``holder_ids`` ``None``: to every holder (finance, catalog admins)."""
    payments = recording_payments(holder_ids=holder_ids, recording_ids=[recording.pk])
    periods = list(StatementPeriod.objects.order_by("starts_at"))
    currencies = []
    for currency in sorted({p.currency for p in payments}):
        mine = [p for p in payments if p.currency == currency]
        moves: Iterable[tuple[datetime, int]] = [(p.booked_at, p.amount) for p in mine] + [
            (p.reversed_at, -p.amount) for p in mine if p.reversed_at is not None
        ]
        per_period: dict[int | None, int] = {}
        for moment, amount in moves:
            period = _period_of(moment, periods)
            key = period.pk if period else None
            per_period[key] = per_period.get(key, 0) + amount
        rows = [
            PeriodEarnings(_period_label(period), period, per_period.get(period.pk, 0))
            for period in periods
            if period.ends_at > min(p.booked_at for p in mine)
        ]
        if None in per_period:
            rows.append(PeriodEarnings(_period_label(None), None, per_period[None]))
        currencies.append(
            RecordingCurrencyEarnings(
                currency=currency,
                lifetime=sum(p.amount for p in mine if p.reversed_at is None),
                generations=len(
                    {p.settlement_id for p in mine if p.reversed_at is None and p.amount}
                ),
                periods=rows,
            )
        )
    return RecordingEarnings(
        recording=recording,
        currencies=currencies,
        payments=sorted(payments, key=lambda p: (p.booked_at, p.entry_seq), reverse=True),
    )


def recording_earnings_for(*, recording_id: int, user: AnyUser) -> RecordingEarnings | None:
    """The recording page of ``user``: finance and catalog admins see what the recording
    paid every holder; a rights holder's user what it paid the holders they act for that
    own a share of it. ``None`` when ``user`` may not see the recording."""
    recording = Recording.objects.filter(pk=recording_id).first()
    if recording is None:
        return None
    if user_sees_all_generations(user):
        return recording_earnings(recording=recording, holder_ids=None)
    owners = list(
        holders_for_user(user)
        .filter(ownership_shares__recording=recording)
        .values_list("pk", flat=True)
        .distinct()
    )
    if not owners:
        return None
    return recording_earnings(recording=recording, holder_ids=owners)


def catalog_earnings_read(
    holder_ids: Collection[int], recording_ids: Collection[int]
) -> LedgerEarnings:
    """My catalog's earnings column and the currencies the ledger pays each holder in
    (registered with ``catalog.earnings`` by ``ledger.apps.LedgerConfig.ready``)."""
    currencies: dict[int, list[str]] = {}
    for holder_id, currency in (
        Account.objects.filter(kind=Account.Kind.HOLDER_PAYABLE, rights_holder_id__in=holder_ids)
        .order_by("currency")
        .values_list("rights_holder_id", "currency")
    ):
        currencies.setdefault(holder_id, []).append(currency)
    totals = recording_earnings_totals(holder_ids=holder_ids, recording_ids=recording_ids)
    return LedgerEarnings(by_share=totals, currencies=currencies)
