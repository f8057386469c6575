"""What generations paid, as the generation pages show it.

Amounts come from the ledger's ``Settlement`` rows (accrual units, integers) and are
turned into ``Decimal`` only for display; scores come from the ``AttributionRun``
(``scores[i]`` belongs to training-set position ``i``). Only a settlement that has not
been reversed (``live_settlements``) counts as paying.

Who sees which generation is ``attribution.selectors.generations_for_user``; its rule for
rights holders' users (the generations that paid a holder they act for) is
``generations_paid_to``, registered by ``ledger.apps.LedgerConfig.ready``.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from django.db.models import Exists, OuterRef, QuerySet, Subquery, Sum

from attribution.methods import AUDIT_METHOD
from attribution.models import AttributionRun, Generation, GenerationReference
from attribution.selectors import (
    AnyUser,
    holder_positions,
    latest_run,
    run_status,
    score_ranks,
    user_sees_all_generations,
)
from catalog.models import RightsHolder
from catalog.selectors import holders_for_user
from ledger.models import JournalEntry, Settlement, SettlementHolderLine, SettlementTrackLine
from ledger.money import accrual_to_decimal
from ledger.selectors.audits import METHOD_LABELS, AuditComparison, generation_audit
from ledger.selectors.opinions import MethodPayments, method_payments

PERCENT = Decimal("0.01")


def live_settlements() -> QuerySet[Settlement]:
    """Settlements whose journal entry has not been reversed: what actually pays."""
    reversed_entries = JournalEntry.objects.filter(
        reverses=OuterRef("journal_entry"), kind=JournalEntry.Kind.REVERSAL
    )
    return Settlement.objects.exclude(Exists(reversed_entries))


def _paid_lines(holders: QuerySet[RightsHolder]) -> QuerySet[SettlementHolderLine]:
    return SettlementHolderLine.objects.filter(
        rights_holder__in=holders, settlement__in=live_settlements()
    )


def generations_paid_to(holders: QuerySet[RightsHolder]) -> QuerySet[SettlementHolderLine]:
    """The ids of the generations a live settlement paid one of ``holders`` (a subquery)."""
    return _paid_lines(holders).values("settlement__generation_id")


def generations_paying_user(user: AnyUser) -> QuerySet[Generation]:
    """Generations that paid a rights holder ``user`` acts for, with ``holder_amount``
    (accrual units, summed over those holders), newest first."""
    lines = _paid_lines(holders_for_user(user)).filter(settlement__generation=OuterRef("pk"))
    amount = (
        lines.order_by()
        .values("settlement__generation")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    return (
        Generation.objects.select_related("model_version")
        .annotate(holder_amount=Subquery(amount))
        .filter(holder_amount__isnull=False)
        .order_by("-created_at", "-id")
    )


def scored_run(generation: Generation) -> AttributionRun | None:
    """The run whose scores count: the one the live settlement used, else the latest
    succeeded settlement run (an audit run never pays)."""
    settlement = live_settlements().filter(generation=generation).first()
    if settlement is not None:
        return settlement.attribution_run
    return (
        generation.attribution_runs.filter(
            status=AttributionRun.Status.SUCCEEDED, purpose=AttributionRun.Purpose.SETTLEMENT
        )
        .order_by("-created_at", "-id")
        .first()
    )


# --- one generation, as a page shows it -------------------------------------------------------


@dataclass(frozen=True)
class TrackRow:
    """One paid training track (for a holder: the holder's part of it)."""

    rank: int
    position: int
    isrc: str
    title: str
    score: float
    pool_share_percent: Decimal  # the track's share of the royalty pool
    amount: Decimal  # major units, exact (accrual precision)
    amount_accrual: int  # the same amount in the ledger's accrual units
    rights_holder: str = ""
    ownership_percent: Decimal | None = None


@dataclass(frozen=True)
class ReferenceRow:
    """A catalog recording the generation was conditioned on (reference use)."""

    index: int
    isrc: str
    title: str
    noise_level: float | None  # the conditioning strength (sigma); None: not declared
    share_percent: Decimal  # the licence's share of the royalty pool
    licence: int
    paid: bool | None  # None: not settled yet; False: no longer licensed at settlement
    reason: str
    amount: Decimal | None  # major units (a holder: its own part); None before settlement
    amount_accrual: int | None


def _reference_rows(
    generation: Generation, settlement: Settlement | None, holder_ids: set[int] | None
) -> list[ReferenceRow]:
    references = list(
        GenerationReference.objects.filter(generation=generation)
        .select_related("recording")
        .order_by("index")
    )
    booked = {line["index"]: line for line in (settlement.reference_lines if settlement else [])}
    rows = []
    for reference in references:
        line = booked.get(reference.index)
        amount = None
        if line is not None:
            amount = sum(
                part
                for holder, part in line["holders"]
                if holder_ids is None or holder in holder_ids
            )
            if holder_ids is not None and not any(h in holder_ids for h, _ in line["ownership"]):
                continue  # a holder sees only references it owns a share of
        elif holder_ids is not None:
            continue
        rows.append(
            ReferenceRow(
                index=reference.index,
                isrc=reference.recording.isrc,
                title=reference.recording.title,
                noise_level=reference.noise_level,
                share_percent=reference.pool_share_percent,
                licence=reference.licence_id,
                paid=None if line is None else line["paid"],
                reason="" if line is None else line["reason"],
                amount=None if amount is None else accrual_to_decimal(amount, generation.currency),
                amount_accrual=amount,
            )
        )
    return rows


@dataclass(frozen=True)
class GenerationDetail:
    generation: Generation
    run: AttributionRun | None  # the run whose scores are shown
    settlement: Settlement | None
    rows: list[TrackRow]
    total: Decimal | None  # what ``rows`` add up to (major units)
    highlight_positions: frozenset[int]  # training-set positions drawn in the chart's colour
    highlight_label: str
    for_holder: bool
    # the run's method (engine/methods), and the exact method's scores beside them once an
    # audit run has succeeded (for a holder: only the holders they act for)
    audit: AuditComparison | None = None
    audit_run: AttributionRun | None = None  # the latest exact-method audit, whatever its status
    # what each succeeded run's method would have paid beside what was paid (for a holder:
    # only the holders they act for); ``None`` before settlement and until a run besides the
    # paying one (an audit or a second opinion) has succeeded: each column costs a split
    methods: MethodPayments | None = None
    # the catalog recordings it was conditioned on, paid first (reference use)
    references: list[ReferenceRow] = field(default_factory=list)

    @property
    def method_label(self) -> str:
        return METHOD_LABELS.get(self.run.method, self.run.method) if self.run else ""

    @property
    def currency(self) -> str:
        return self.generation.currency


def _percent_of(part: int, whole: int) -> Decimal:
    if whole <= 0:
        return Decimal(0).quantize(PERCENT)
    return (Decimal(part) * 100 / Decimal(whole)).quantize(PERCENT)


def generation_detail(*, generation: Generation, user: AnyUser) -> GenerationDetail:
    """What a generation page shows ``user``.

    A rights holder's user gets the tracks that paid the holders they act for (score,
    ownership share, amount, from the settlement) and the chart highlights every track
    those holders own; admins and finance get every paid track and the chart highlights
    the paid tracks. The caller has already checked that ``user`` may see ``generation``.
    """
    run = scored_run(generation)
    settlement = (
        live_settlements()
        .filter(generation=generation, attribution_run=run)
        .select_related("journal_entry")
        .first()
        if run is not None
        else None
    )
    scores = list(run.scores or []) if run is not None else []
    ranks = score_ranks(scores)
    for_holder = not user_sees_all_generations(user)
    holders = {h.pk: h for h in holders_for_user(user)} if for_holder else {}
    rows: list[TrackRow] = []
    if settlement is not None:
        track_amounts = dict(
            SettlementTrackLine.objects.filter(settlement=settlement).values_list(
                "position", "amount"
            )
        )
        if for_holder:
            parts = [
                (line.rights_holder_id, position, amount)
                for line in SettlementHolderLine.objects.filter(
                    settlement=settlement, rights_holder_id__in=list(holders)
                )
                for position, amount in line.tracks
            ]
        else:
            parts = [(None, position, amount) for position, amount in track_amounts.items()]
        entries = {
            e.position: e.recording
            for e in generation.model_version.training_set_entries.filter(
                position__in={position for _, position, _ in parts}
            ).select_related("recording")
        }
        snapshot = settlement.ownership_snapshot
        for holder_id, position, amount in parts:
            recording = entries[position]
            percent = None
            if holder_id is not None:
                percent = next(
                    (Decimal(p) for h, p in snapshot.get(str(position), []) if h == holder_id),
                    None,
                )
            rows.append(
                TrackRow(
                    rank=ranks[position] if position < len(ranks) else 0,
                    position=position,
                    isrc=recording.isrc,
                    title=recording.title,
                    score=scores[position] if position < len(scores) else 0.0,
                    pool_share_percent=_percent_of(track_amounts[position], settlement.pool),
                    amount=accrual_to_decimal(int(amount), settlement.currency),
                    amount_accrual=int(amount),
                    rights_holder=holders[holder_id].legal_name if holder_id else "",
                    ownership_percent=percent,
                )
            )
        rows.sort(key=lambda row: (row.rank, row.rights_holder))
    total = None
    if settlement is not None:
        if for_holder:
            accrual = SettlementHolderLine.objects.filter(
                settlement=settlement, rights_holder_id__in=list(holders)
            ).aggregate(total=Sum("amount"))["total"]
        else:
            accrual = settlement.pool
        total = accrual_to_decimal(int(accrual or 0), settlement.currency)
    if for_holder:
        highlight = holder_positions(generation.model_version_id, holders) | {
            row.position for row in rows
        }
        label = "your tracks"
    else:
        highlight = {row.position for row in rows}
        label = "paid tracks"
    audit = generation_audit(generation, settlement)
    if audit is not None and for_holder:
        audit = replace(
            audit, holders=[row for row in audit.holders if row.rights_holder_id in holders]
        )
    return GenerationDetail(
        generation=generation,
        run=run,
        settlement=settlement,
        rows=rows,
        total=total,
        highlight_positions=frozenset(p for p in highlight if p < len(scores)),
        highlight_label=label,
        for_holder=for_holder,
        audit=audit,
        audit_run=latest_run(generation, AttributionRun.Purpose.AUDIT, AUDIT_METHOD),
        methods=(
            method_payments(settlement=settlement, holder_ids=list(holders) if for_holder else None)
            if settlement is not None
            and generation.attribution_runs.filter(
                purpose=AttributionRun.Purpose.AUDIT, status=AttributionRun.Status.SUCCEEDED
            ).exists()
            else None
        ),
        references=_reference_rows(generation, settlement, set(holders) if for_holder else None),
    )


@dataclass(frozen=True)
class GenerationRow:
    """One line of the generations page."""

    generation: Generation
    amount: Decimal | None  # a holder's page: what the generation paid them (major units)
    run: AttributionRun | None  # an admin's page: the latest run
    status: dict | None  # ``run_status(run)``


def generation_rows(generations: Iterable[Generation], *, for_holder: bool) -> list[GenerationRow]:
    """Rows for a page of ``generations_paying_user`` (``for_holder``) or of
    ``generations_for_user`` (admins: with each generation's latest run)."""
    generations = list(generations)
    if for_holder:
        return [
            GenerationRow(
                generation=g,
                amount=accrual_to_decimal(int(g.holder_amount), g.currency),
                run=None,
                status=None,
            )
            for g in generations
        ]
    latest: dict[int, AttributionRun] = {}
    runs = AttributionRun.objects.filter(generation__in=generations).order_by("created_at", "id")
    for run in runs:
        latest[run.generation_id] = run  # the last one wins
    return [
        GenerationRow(
            generation=g,
            amount=None,
            run=latest.get(g.pk),
            status=run_status(latest[g.pk]) if g.pk in latest else None,
        )
        for g in generations
    ]
