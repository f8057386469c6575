"""Reads of the ledger: balances, a holder's earnings and next payout, statements and
statement periods, the journal and accounts for finance, payout batches, chain
verification.

A balance is always the sum of postings (there is no stored balance to drift). Holder
balances are reported as what the platform owes (the negated, credit-normal sum).
"""

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import (
    BigIntegerField,
    Count,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone

from catalog.models import RightsHolder
from core.roles import FINANCE, user_has_role
from ledger import hashing
from ledger.models import (
    GENESIS_HASH,
    Account,
    JournalEntry,
    PayoutBatch,
    PayoutLine,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
    Statement,
    StatementPeriod,
)
from ledger.money import accrual_to_minor_floor, accrual_to_text


def account_balance(*, account: Account) -> int:
    """Debit-positive sum of the account's postings (accrual units)."""
    return account.postings.aggregate(total=Sum("amount"))["total"] or 0


def trial_balance() -> dict[str, int]:
    """Sum of all postings per currency; zero for every currency when the ledger balances."""
    rows = Posting.objects.values("currency").annotate(total=Sum("amount"))
    return {row["currency"]: row["total"] for row in rows.order_by("currency")}


def account_balances(*, currency: str | None = None) -> dict[str, int]:
    """Debit-positive balance of every account, by key."""
    qs = Account.objects.all()
    if currency:
        qs = qs.filter(currency=currency)
    rows = qs.annotate(total=Sum("postings__amount")).values_list("key", "total")
    return {key: total or 0 for key, total in rows}


def holder_payable_balances(*, currency: str) -> dict[int, int]:
    """What the platform owes each rights holder in ``currency`` (accrual units)."""
    rows = (
        Posting.objects.filter(
            account__kind=Account.Kind.HOLDER_PAYABLE, account__currency=currency
        )
        .values("account__rights_holder_id")
        .annotate(total=Sum("amount"))
        .values_list("account__rights_holder_id", "total")
    )
    return {holder_id: -total for holder_id, total in rows}


def holder_balances(*, currency: str, holders: QuerySet[RightsHolder]) -> QuerySet[Account]:
    """The payable accounts in ``currency`` of ``holders``, by rights holder id, each with
    ``balance``: what the platform owes the holder (accrual units). A query, so that a
    list of every holder's balance can be paged in the database."""
    return (
        Account.objects.filter(
            kind=Account.Kind.HOLDER_PAYABLE, currency=currency, rights_holder__in=holders
        )
        .annotate(
            balance=Coalesce(-Sum("postings__amount"), Value(0), output_field=BigIntegerField())
        )
        .order_by("rights_holder_id")
    )


def holder_balance(*, rights_holder: RightsHolder, currency: str) -> int:
    """What the platform owes ``rights_holder`` in ``currency`` (accrual units)."""
    key = Account.make_key(Account.Kind.HOLDER_PAYABLE, currency, rights_holder.pk)
    total = Posting.objects.filter(account__key=key).aggregate(total=Sum("amount"))["total"]
    return -(total or 0)


def rights_holders_for_user(*, user) -> QuerySet[RightsHolder]:
    return RightsHolder.objects.filter(users=user)


def holders_visible_to(*, user) -> QuerySet[RightsHolder]:
    """Whose ledger data ``user`` may read: finance every holder, anyone else the holders
    they act for (so another holder's statement is simply not found)."""
    if not user.is_authenticated:
        return RightsHolder.objects.none()
    if user_has_role(user, FINANCE):
        return RightsHolder.objects.all()
    return rights_holders_for_user(user=user)


# --- a rights holder's earnings, balances and next payout ------------------------------------

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


def payout_reserved_minor(*, currency: str) -> dict[int, int]:
    """Minor units per holder already in pending lines of draft payout batches."""
    return dict(
        PayoutLine.objects.filter(
            batch__status=PayoutBatch.Status.DRAFT,
            batch__currency=currency,
            status=PayoutLine.Status.PENDING,
        )
        .values("rights_holder_id")
        .annotate(total=Sum("amount_minor"))
        .values_list("rights_holder_id", "total")
    )


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
    from ledger.services import payout_minimum_minor

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
            lines.append(
                {
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


# --- verification ----------------------------------------------------------------------------


@dataclass
class VerificationReport:
    entries_checked: int = 0
    postings_checked: int = 0
    settlements_checked: int = 0
    first_break: str | None = None
    break_seq: int | None = None
    trial_balance: dict[str, int] = field(default_factory=dict)
    head_seq: int = 0
    head_hash: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        return self.first_break is None

    def __str__(self) -> str:
        if self.ok:
            return f"Ledger OK up to #{self.head_seq} ({self.entries_checked} entries)"
        return f"Ledger verification failed at {self.first_break}"


def _chunks(chunk_size: int) -> Iterator[list[JournalEntry]]:
    last = 0
    while True:
        chunk = list(JournalEntry.objects.filter(seq__gt=last).order_by("seq")[:chunk_size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].seq


def _range_rows(queryset, fields: list[str], key: str, lo: int, hi: int) -> dict[int, list]:
    """Rows (tuples) of ``queryset`` with ``lo <= key <= hi``, grouped by ``key``."""
    grouped: dict[int, list] = {}
    for row in queryset.filter(**{f"{key}__gte": lo, f"{key}__lte": hi}).values_list(*fields):
        grouped.setdefault(row[0], []).append(row)
    return grouped


def entry_content_of(entry: JournalEntry, postings) -> dict:
    """Canonical content of ``entry``; ``postings``: (index, account key, currency, amount)."""
    from ledger.services import _entry_content

    return _entry_content(entry, postings)


def settlement_provenance(settlement: Settlement, tracks, holders) -> dict:
    """``tracks``: (position, recording id, weight, amount); ``holders``: (holder id,
    amount, tracks), both in order."""
    return hashing.settlement_content(
        generation_id=settlement.generation_id,
        attribution_run_id=settlement.attribution_run_id,
        currency=settlement.currency,
        revenue_minor=settlement.revenue_minor,
        revenue=settlement.revenue,
        pool=settlement.pool,
        platform=settlement.platform,
        residue=settlement.residue,
        policy=settlement.policy,
        scores_sha256=settlement.scores_sha256,
        run_scores_sha256=settlement.run_scores_sha256,
        score_count=settlement.score_count,
        checkpoint_sha256=settlement.checkpoint_sha256,
        manifest_sha256=settlement.manifest_sha256,
        ownership_snapshot=settlement.ownership_snapshot,
        tracks=tracks,
        holders=holders,
    )


def ledger_verify(
    *, chunk_size: int = 500, anchors: dict[int, str] | None = None
) -> VerificationReport:
    """Recompute the hash chain, every entry's balance and every settlement's provenance.

    Stops at the first break and says where it is. Memory is bounded by ``chunk_size``
    entries (plus the account table). ``anchors`` ({seq: hash} recorded elsewhere earlier)
    must all be found in the chain: that is what detects entries cut off the end.
    """
    anchors = dict(anchors or {})
    report = VerificationReport()
    prev_hash = GENESIS_HASH
    expected_seq = 1
    accounts = {
        pk: (key, currency, kind, holder)
        for pk, key, currency, kind, holder in Account.objects.values_list(
            "pk", "key", "currency", "kind", "rights_holder_id"
        )
    }

    def fail(seq: int | None, reason: str) -> VerificationReport:
        report.break_seq = seq
        report.first_break = f"entry #{seq}: {reason}" if seq is not None else reason
        return report

    for chunk in _chunks(chunk_size):
        lo, hi = chunk[0].seq, chunk[-1].seq
        postings = _range_rows(
            Posting.objects.order_by("entry_id", "index"),
            ["entry_id", "index", "account_id", "currency", "amount"],
            "entry_id",
            lo,
            hi,
        )
        settlements = {
            s.journal_entry_id: s
            for s in Settlement.objects.filter(journal_entry_id__gte=lo, journal_entry_id__lte=hi)
        }
        ids = [s.pk for s in settlements.values()]
        track_lines: dict[int, list] = {i: [] for i in ids}
        holder_lines: dict[int, list] = {i: [] for i in ids}
        if ids:
            for row in (
                SettlementTrackLine.objects.filter(
                    settlement_id__gte=min(ids), settlement_id__lte=max(ids)
                )
                .order_by("settlement_id", "position")
                .values_list("settlement_id", "position", "recording_id", "weight", "amount")
            ):
                track_lines.setdefault(row[0], []).append(row[1:])
            for row in (
                SettlementHolderLine.objects.filter(
                    settlement_id__gte=min(ids), settlement_id__lte=max(ids)
                )
                .order_by("settlement_id", "rights_holder_id")
                .values_list("settlement_id", "rights_holder_id", "amount", "tracks")
            ):
                holder_lines.setdefault(row[0], []).append(row[1:])

        for entry in chunk:
            if entry.seq != expected_seq:
                return fail(expected_seq, f"missing (next entry in the table is #{entry.seq})")
            if entry.prev_hash != prev_hash:
                return fail(entry.seq, "prev_hash is not the previous entry's hash")
            rows = postings.get(entry.seq, [])
            indexes = [row[1] for row in rows]
            if indexes != list(range(len(indexes))):
                return fail(entry.seq, f"posting indexes {indexes} are not 0..n-1")
            sums: dict[str, int] = {}
            for _, index, account_id, currency, amount in rows:
                if currency != accounts[account_id][1] or currency != entry.currency:
                    return fail(entry.seq, f"posting {index} has currency {currency}")
                sums[currency] = sums.get(currency, 0) + amount
            unbalanced = {c: total for c, total in sums.items() if total != 0}
            if unbalanced:
                return fail(entry.seq, f"postings do not balance: {unbalanced}")
            content = entry_content_of(
                entry, [(row[1], accounts[row[2]][0], row[3], row[4]) for row in rows]
            )
            if hashing.entry_hash(prev_hash, content) != entry.hash:
                return fail(
                    entry.seq, "content does not match its hash (entry or postings altered)"
                )
            settlement = settlements.get(entry.seq)
            if entry.kind == JournalEntry.Kind.SETTLEMENT:
                if settlement is None:
                    return fail(entry.seq, "settlement provenance is missing")
                tracks, holders = track_lines[settlement.pk], holder_lines[settlement.pk]
                provenance = settlement_provenance(settlement, tracks, holders)
                digest = hashing.sha256_hex(hashing.canonical_json(provenance))
                if digest != entry.provenance_sha256 or digest != settlement.provenance_sha256:
                    return fail(entry.seq, "settlement provenance does not match its hash")
                posted = {
                    accounts[row[2]][3]: -row[4]
                    for row in rows
                    if accounts[row[2]][2] == Account.Kind.HOLDER_PAYABLE
                }
                if posted != {h: a for h, a, _ in holders if a != 0}:
                    return fail(entry.seq, "holder postings differ from the settlement lines")
                report.settlements_checked += 1
            if entry.seq in anchors and anchors.pop(entry.seq) != entry.hash:
                return fail(entry.seq, "hash differs from the recorded anchor")
            report.entries_checked += 1
            report.postings_checked += len(rows)
            prev_hash = entry.hash
            expected_seq += 1
            report.head_seq, report.head_hash = entry.seq, entry.hash

    if anchors:
        return fail(min(anchors), "anchored entry is missing (the chain was cut short)")
    orphans = Posting.objects.filter(~Q(entry_id__in=JournalEntry.objects.values("seq")))
    if orphans.exists():
        return fail(None, "postings exist that belong to no entry")
    report.trial_balance = trial_balance()
    off = {c: total for c, total in report.trial_balance.items() if total != 0}
    if off:
        return fail(None, f"trial balance is not zero: {off}")
    return report


# --- finance: accounts, journal, payout batches ----------------------------------------------


def accounts_with_balances() -> QuerySet[Account]:
    """Every account with ``balance``: the debit-positive sum of its postings."""
    return (
        Account.objects.select_related("rights_holder")
        .annotate(
            balance=Coalesce(Sum("postings__amount"), Value(0), output_field=BigIntegerField())
        )
        .order_by("key")
    )


def journal_entries() -> QuerySet[JournalEntry]:
    """The journal, newest first, with ``debits`` (the amount the entry moves) and
    ``posting_count``, computed per listed entry."""
    postings = Posting.objects.filter(entry=OuterRef("seq")).values("entry")
    return JournalEntry.objects.annotate(
        debits=Subquery(
            postings.filter(amount__gt=0).annotate(total=Sum("amount")).values("total"),
            output_field=BigIntegerField(),
        ),
        posting_count=Subquery(
            postings.annotate(n=Count("index")).values("n"), output_field=BigIntegerField()
        ),
    ).order_by("-seq")


@dataclass(frozen=True)
class EntryDetail:
    entry: JournalEntry
    postings: list[Posting]
    hash_ok: bool  # the entry's hash recomputes from its prev_hash, content and postings
    settlement: Settlement | None
    track_lines: list[SettlementTrackLine]
    holder_lines: list[SettlementHolderLine]
    provenance_ok: bool | None  # settlements: the stored lines still hash to provenance_sha256
    reversed_by: list[JournalEntry]


def journal_entry_detail(*, entry: JournalEntry) -> EntryDetail:
    """One entry with its postings and, for a settlement, the provenance that decided it
    (generation, attribution run, checkpoint and scores hashes, per-track and per-holder
    lines), each hash recomputed here as ``ledger_verify`` does for the whole chain."""
    postings = list(
        entry.postings.select_related("account", "account__rights_holder").order_by("index")
    )
    content = entry_content_of(
        entry, [(p.index, p.account.key, p.currency, p.amount) for p in postings]
    )
    hash_ok = hashing.entry_hash(entry.prev_hash, content) == entry.hash
    settlement = (
        Settlement.objects.filter(journal_entry=entry)
        .select_related("generation", "attribution_run")
        .first()
    )
    track_lines: list[SettlementTrackLine] = []
    holder_lines: list[SettlementHolderLine] = []
    provenance_ok = None
    if settlement is not None:
        track_lines = list(settlement.tracks.select_related("recording").order_by("position"))
        holder_lines = list(
            settlement.holders.select_related("rights_holder").order_by("rights_holder_id")
        )
        provenance = settlement_provenance(
            settlement,
            [(t.position, t.recording_id, t.weight, t.amount) for t in track_lines],
            [(h.rights_holder_id, h.amount, h.tracks) for h in holder_lines],
        )
        digest = hashing.sha256_hex(hashing.canonical_json(provenance))
        provenance_ok = digest == settlement.provenance_sha256 == entry.provenance_sha256
    return EntryDetail(
        entry=entry,
        postings=postings,
        hash_ok=hash_ok,
        settlement=settlement,
        track_lines=track_lines,
        holder_lines=holder_lines,
        provenance_ok=provenance_ok,
        reversed_by=list(JournalEntry.objects.filter(reverses=entry).order_by("seq")),
    )


def holder_payable_due(*, currency: str, through: datetime) -> dict[int, int]:
    """What the platform owed each holder for earnings booked before ``through``, as of
    now (accrual units): today's balance less the earnings booked since (settlements after
    ``through`` and reversals of those). Payouts and failed payouts after ``through``
    count, because they settle or restore money earned earlier; a later reversal of an
    earlier settlement counts too. Never more than today's balance."""
    later = (
        Posting.objects.filter(
            account__kind=Account.Kind.HOLDER_PAYABLE,
            account__currency=currency,
            entry__effective_at__gte=through,
        )
        .filter(
            Q(entry__kind=JournalEntry.Kind.SETTLEMENT)
            | Q(
                entry__kind=JournalEntry.Kind.REVERSAL,
                entry__reverses__effective_at__gte=through,
            )
        )
        .values("account__rights_holder_id")
        .annotate(total=Sum("amount"))
        .values_list("account__rights_holder_id", "total")
    )
    earned_later = {holder_id: -total for holder_id, total in later}
    return {
        holder_id: balance - earned_later.get(holder_id, 0)
        for holder_id, balance in holder_payable_balances(currency=currency).items()
    }


def payout_batches() -> QuerySet[PayoutBatch]:
    """Payout batches, newest first, with their line count and totals (minor units)."""
    return (
        PayoutBatch.objects.select_related("created_by", "period")
        .order_by("-created_at", "-id")
        .annotate(
            line_count=Count("lines"),
            total_minor=Coalesce(
                Sum("lines__amount_minor"), Value(0), output_field=BigIntegerField()
            ),
            failed_minor=Coalesce(
                Sum("lines__amount_minor", filter=Q(lines__status=PayoutLine.Status.FAILED)),
                Value(0),
                output_field=BigIntegerField(),
            ),
        )
    )


@dataclass(frozen=True)
class PayoutBatchDetail:
    batch: PayoutBatch
    lines: list[PayoutLine]
    totals_minor: dict[str, int]  # per line status, plus "all"
    entries: list[JournalEntry]  # the payout entry and any failed-line reversals


def payout_batch_detail(*, batch: PayoutBatch) -> PayoutBatchDetail:
    lines = list(batch.lines.select_related("rights_holder").order_by("rights_holder__legal_name"))
    totals = {status: 0 for status in PayoutLine.Status.values}
    for line in lines:
        totals[line.status] += line.amount_minor
    totals["all"] = sum(line.amount_minor for line in lines)
    return PayoutBatchDetail(
        batch=batch,
        lines=lines,
        totals_minor=totals,
        entries=list(batch.entries.order_by("seq")),
    )


def ledger_verifications(*, limit: int = 10):
    """The latest recorded runs of ``ledger.services.ledger_verification_run``."""
    from core.models import AuditEvent

    return AuditEvent.objects.filter(action="ledger.verify").select_related("actor")[:limit]
