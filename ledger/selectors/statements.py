"""Statements (one per holder, closed period and currency) and statement periods."""

import calendar
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet, Sum

from catalog.models import Recording, RightsHolder
from ledger import hashing
from ledger.models import (
    Account,
    JournalEntry,
    Posting,
    SettlementHolderLine,
    SettlementTrackLine,
    Statement,
    StatementPeriod,
)
from ledger.money import accrual_to_text
from ledger.selectors.earnings import month_starts


@dataclass(frozen=True)
class StatementRow:
    rights_holder: RightsHolder
    period: StatementPeriod
    currency: str
    statement: Statement | None  # None until first opened (then frozen)


def holder_statement_rows(*, rights_holder: RightsHolder) -> list[StatementRow]:
    """The holder's statements, newest period first: one per closed period and currency,
    for the periods that ended after the holder's account in that currency was opened."""
    opened = dict(
        Account.objects.filter(
            kind=Account.Kind.HOLDER_PAYABLE, rights_holder=rights_holder
        ).values_list("currency", "created_at")
    )
    stored = {
        (s.period_id, s.currency): s for s in Statement.objects.filter(rights_holder=rights_holder)
    }
    rows = []
    for period in StatementPeriod.objects.filter(closed_at__isnull=False).order_by("-starts_at"):
        for currency in sorted(opened):
            statement = stored.get((period.pk, currency))
            if statement is not None or period.ends_at > opened[currency]:
                rows.append(StatementRow(rights_holder, period, currency, statement))
    return rows


def statement_rows_for(
    *, holders: QuerySet[RightsHolder], period_id: int | None = None, currency: str | None = None
) -> list[StatementRow]:
    """``holder_statement_rows`` of each of ``holders`` (by legal name), optionally only
    those of one period or currency."""
    return [
        row
        for holder in holders.order_by("legal_name", "pk")
        for row in holder_statement_rows(rights_holder=holder)
        if (period_id is None or row.period.pk == period_id)
        and (currency is None or row.currency == currency)
    ]


# --- statement periods -----------------------------------------------------------------------

PERIOD_FUTURE, PERIOD_CURRENT, PERIOD_ENDED, PERIOD_CLOSED = "future", "current", "ended", "closed"


def statement_periods() -> QuerySet[StatementPeriod]:
    """Every statement period, newest first."""
    return StatementPeriod.objects.order_by("-starts_at")


def statement_period_state(*, period: StatementPeriod, now: datetime) -> str:
    """``closed``; ``ended`` (over but open: finance may close it); ``current`` (``now``
    is in it); or ``future``."""
    if period.closed_at is not None:
        return PERIOD_CLOSED
    if period.ends_at <= now:
        return PERIOD_ENDED
    return PERIOD_CURRENT if period.starts_at <= now else PERIOD_FUTURE


def _month_later(moment: datetime) -> datetime:
    """The same day and time a calendar month later (the 31st becomes the month's last day)."""
    year, month = (moment.year, moment.month + 1) if moment.month < 12 else (moment.year + 1, 1)
    if year > datetime.max.year:
        return moment  # nothing to suggest past the calendar's end
    last_day = calendar.monthrange(year, month)[1]
    return moment.replace(year=year, month=month, day=min(moment.day, last_day))


def statement_period_suggestion(*, now: datetime) -> tuple[datetime, datetime]:
    """Where the next period would naturally go: a month from the end of the latest one,
    or this calendar month when there is none (what the create form offers)."""
    latest = StatementPeriod.objects.order_by("-ends_at").first()
    starts_at = latest.ends_at if latest is not None else month_starts(now=now, months=1)[0]
    return starts_at, _month_later(starts_at)


# --- statements ------------------------------------------------------------------------------


def _reference_items(settlement, parts: list) -> list[dict]:
    """The holder's reference-use parts of ``settlement`` as statement items."""
    by_index = {reference["index"]: reference for reference in settlement.reference_lines}
    titles = dict(
        Recording.objects.filter(
            pk__in=[by_index[index]["recording"] for index, _ in parts]
        ).values_list("pk", "title")
    )
    return [
        {
            "index": index,
            "basis": "reference use",
            "isrc": by_index[index]["isrc"],
            "title": titles[by_index[index]["recording"]],
            "share_percent": by_index[index]["share_percent"],
            "amount": amount,
        }
        for index, amount in parts
    ]


def statement_compute(
    *, rights_holder: RightsHolder, period: StatementPeriod, currency: str
) -> dict:
    """The statement of ``rights_holder`` for ``period`` in ``currency``, from the ledger.

    JSON-ready and deterministic: the same ledger gives the same dict. Amounts in accrual
    units (integers), with exact decimal renderings in major units for display.
    """
    key = Account.make_key(Account.Kind.HOLDER_PAYABLE, currency, rights_holder.pk)
    postings = Posting.objects.filter(account__key=key)
    before = postings.filter(entry__effective_at__lt=period.starts_at)
    opening = -(before.aggregate(total=Sum("amount"))["total"] or 0)
    in_period = list(
        postings.filter(
            entry__effective_at__gte=period.starts_at, entry__effective_at__lt=period.ends_at
        )
        .select_related("entry")
        .order_by("entry_id", "index")
    )
    settlement_seqs = [
        p.entry_id for p in in_period if p.entry.kind == JournalEntry.Kind.SETTLEMENT
    ]
    holder_lines = {
        hl.settlement.journal_entry_id: hl
        for hl in SettlementHolderLine.objects.filter(
            rights_holder=rights_holder, settlement__journal_entry_id__in=settlement_seqs
        ).select_related("settlement", "settlement__generation")
    }
    track_info = {
        (tl.settlement_id, tl.position): tl
        for tl in SettlementTrackLine.objects.filter(
            settlement_id__in=[hl.settlement_id for hl in holder_lines.values()]
        ).select_related("recording")
    }

    def money(amount: int) -> str:
        return accrual_to_text(amount, currency)

    lines, adjustments, payouts = [], [], []
    for p in in_period:
        owed = -p.amount
        entry = p.entry
        booked = hashing.timestamp_canonical(entry.effective_at)
        if entry.kind == JournalEntry.Kind.SETTLEMENT:
            hl = holder_lines[entry.seq]
            settlement = hl.settlement
            assert hl.amount == owed, f"holder line and posting disagree in entry {entry.seq}"
            tracks = []
            for position, amount in hl.tracks:
                tl = track_info[(settlement.pk, position)]
                tracks.append(
                    {
                        "position": position,
                        "isrc": tl.recording.isrc,
                        "title": tl.recording.title,
                        "amount": amount,
                    }
                )
            share = (
                Decimal(owed) / Decimal(settlement.pool) if settlement.pool else Decimal(0)
            ).quantize(Decimal("0.000001"))
            # reference use (a recording the generation was conditioned on), where any
            extra = {}
            if hl.reference_parts:
                extra["references"] = _reference_items(settlement, hl.reference_parts)
            lines.append(
                extra
                | {
                    "entry": entry.seq,
                    "date": hashing.timestamp_canonical(settlement.generation.created_at),
                    "booked_at": booked,
                    "generation": settlement.generation_id,
                    "attribution_run": settlement.attribution_run_id,
                    "prompt": settlement.generation.prompt,
                    "tracks": tracks,
                    "share_of_pool": str(share),
                    "amount": owed,
                    "amount_display": money(owed),
                }
            )
        elif entry.kind == JournalEntry.Kind.PAYOUT:
            payouts.append(
                {
                    "entry": entry.seq,
                    "booked_at": booked,
                    "payout_batch": entry.payout_batch_id,
                    "amount": owed,
                    "amount_display": money(owed),
                }
            )
        else:
            adjustments.append(
                {
                    "entry": entry.seq,
                    "booked_at": booked,
                    "kind": entry.kind,
                    "memo": entry.memo,
                    "reverses": entry.reverses_id,
                    "amount": owed,
                    "amount_display": money(owed),
                }
            )
    closing = opening + sum(-p.amount for p in in_period)
    return {
        "rights_holder": rights_holder.pk,
        "rights_holder_name": rights_holder.legal_name,
        "currency": currency,
        "period_starts_at": hashing.timestamp_canonical(period.starts_at),
        "period_ends_at": hashing.timestamp_canonical(period.ends_at),
        "opening_balance": opening,
        "opening_balance_display": money(opening),
        "lines": lines,
        "adjustments": adjustments,
        "payouts": payouts,
        "closing_balance": closing,
        "closing_balance_display": money(closing),
    }
