"""Why a settlement paid what it paid: every number a rights holder needs to recompute
their amount by hand, read from what the settlement recorded.

The chain (``ledger.splits``) is rebuilt from the settlement's own policy, the scores of
its attribution run and its ownership snapshot, and each step is checked against the
booked lines: the kept tracks and their integer weights (``track_weights``), the pool
(``revenue_split``), each track's amount (``allocate`` of the pool by weight) and each
holder's part of it (``allocate`` of the track's amount by ownership). ``recomputes`` says
whether every step gave back exactly what was booked; the pages say so beside the numbers.

A generation conditioned on catalog recordings pays its references first (reference use):
each licensed reference's share of the pool and its owners' parts are recomputed the same
way (``splits.reference_split``), and the tracks share what is left (training influence).

A rights holder's user sees the parts of the holders they act for and nothing of any other
holder (not even their names: a co-owner's share is shown as "other owners").
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

from attribution.models import AttributionRun, Generation
from attribution.selectors import (
    AnyUser,
    holder_positions,
    score_ranks,
    user_sees_all_generations,
)
from catalog.selectors import holders_for_user
from ledger.models import JournalEntry, Settlement, SettlementHolderLine, SettlementTrackLine
from ledger.money import ACCRUAL_SCALE, allocate, currency_minor_digits
from ledger.selectors.audits import AuditComparison, generation_audit
from ledger.selectors.generations import METHOD_LABELS, live_settlements
from ledger.splits import (
    PERCENT_SCALE,
    WEIGHT_SCALE,
    SplitPolicy,
    revenue_split,
    softmax_standardised,
    track_weights,
)

EXACT_DIGITS = 12  # decimals shown for an exact quotient that does not terminate


def score_digits(scores: Sequence[float]) -> int:
    """Decimals that show the largest score with four significant digits; every score of
    a run is printed with this many, so a column of scores lines up and never switches
    to scientific notation."""
    largest = max((abs(s) for s in scores if math.isfinite(s)), default=0.0)
    if largest == 0:
        return 4
    return min(max(3 - math.floor(math.log10(largest)), 0), 12)


def _fraction_decimal(value: Fraction, places: int = EXACT_DIGITS) -> Decimal:
    """A fraction as a Decimal rounded to ``places`` (display only)."""
    quantum = Decimal(1).scaleb(-places)
    return (Decimal(value.numerator) / Decimal(value.denominator)).quantize(quantum)


def _accrual_fraction_major(value: Fraction, currency: str) -> Decimal:
    """An exact quotient in accrual units as major units, to four places beyond the
    ledger's own precision (it shows how far the booked integer is from the quotient)."""
    digits = currency_minor_digits(currency)
    return _fraction_decimal(value / (ACCRUAL_SCALE * 10**digits), digits + 6 + 4)


@dataclass(frozen=True)
class OwnerPart:
    """One owner's part of one track: ``percent`` of the track's amount."""

    rights_holder_id: int | None  # None: the other owners, folded together
    rights_holder: str
    percent: Decimal
    amount: int  # accrual units booked to this owner for this track
    exact: Decimal  # track amount x percent / 100, before the largest-remainder rounding


@dataclass(frozen=True)
class ExplainedTrack:
    position: int
    rank: int  # 1 = highest score
    recording_id: int
    isrc: str
    title: str
    score: float
    standardised: float  # z = (score - mean) / std
    softmax_share: Decimal  # the track's share of the whole training set before the cut-off
    weight: int  # integer weight booked (softmax share x WEIGHT_SCALE, rounded)
    pool_share: Decimal  # weight / sum of kept weights: the track's share of the pool
    exact_amount: Decimal  # pool x weight / sum of kept weights (major units, rounded)
    amount: int  # accrual units booked for the track (all owners)
    rounded_up: bool  # got one accrual unit of the largest-remainder rounding
    owners: list[OwnerPart]  # the visible owners' parts, then "other owners" if any

    @property
    def your_amount(self) -> int:
        return sum(part.amount for part in self.owners if part.rights_holder_id is not None)


@dataclass(frozen=True)
class ExplainedReference:
    """One reference the generation was conditioned on (reference use)."""

    index: int
    recording_id: int
    isrc: str
    share_percent: Decimal  # the licence's share of the pool
    noise_level: float | None
    paid: bool  # False: no longer licensed at settlement, its share went to training
    reason: str
    amount: int  # accrual units of the pool for the reference (all owners)
    owners: list[OwnerPart]

    @property
    def your_amount(self) -> int:
        return sum(part.amount for part in self.owners if part.rights_holder_id is not None)


@dataclass(frozen=True)
class PaymentExplanation:
    settlement: Settlement
    generation: Generation
    run: AttributionRun
    currency: str
    policy: SplitPolicy
    revenue_minor: int
    revenue: int  # accrual units
    pool: int
    platform: int
    residue: int
    score_count: int
    score_mean: float
    score_std: float
    score_digits: int
    kept_count: int  # tracks that share the pool
    kept_weight_total: int
    cutoff_rank: int  # the lowest-ranked paid track (every track ranked above it is paid)
    cutoff_score: float
    cutoff_reason: str
    tracks: list[ExplainedTrack]  # the visible tracks, by rank
    total: int  # what ``tracks`` paid the visible holders (finance: the whole pool)
    for_holder: bool
    reversed: bool  # a reversal took the settlement back: it no longer pays
    recomputes: bool  # every step recomputed gives back exactly what was booked
    unpaid_positions: frozenset[int] = field(default_factory=frozenset)  # a holder's own, unpaid
    audit: AuditComparison | None = None
    references: list[ExplainedReference] = field(default_factory=list)  # reference use
    training_pool: int | None = None  # the pool the tracks share (None: the whole pool)

    @property
    def method_label(self) -> str:
        return METHOD_LABELS.get(self.run.method, self.run.method)

    @property
    def pool_fraction_percent(self) -> Decimal:
        return (self.policy.pool_fraction * 100).normalize()

    @property
    def min_share_percent(self) -> Decimal:
        return (self.policy.min_share * 100).normalize()

    @property
    def paid_positions(self) -> frozenset[int]:
        return frozenset(track.position for track in self.tracks)

    @property
    def audit_method_label(self) -> str:
        if self.audit is None:
            return ""
        method = self.audit.audit_run.method
        return METHOD_LABELS.get(method, method)

    @property
    def weight_scale(self) -> int:
        return WEIGHT_SCALE


def _cutoff_reason(policy: SplitPolicy, kept: int, total: int) -> str:
    if kept == total:
        return "every training track is paid: neither the top-K limit nor the minimum share cut any"
    if policy.top_k is not None and kept == policy.top_k:
        return f"only the {policy.top_k} heaviest tracks are paid (top-K)"
    return (
        f"tracks whose share before the cut-off is below the minimum share "
        f"({(policy.min_share * 100).normalize():f} %) are not paid"
    )


def payment_explanation(
    *,
    settlement: Settlement,
    holder_ids: Collection[int] | None,
    own_positions: Collection[int] = (),
) -> PaymentExplanation:
    """The explanation of ``settlement`` for the holders ``holder_ids`` act for (``None``:
    finance and catalog admins, who see every paid track and the whole pool).
    ``own_positions``: training-set positions of every recording those holders own, so the
    chart can mark their tracks the cut-off left unpaid."""
    run = settlement.attribution_run
    scores = [float(s) for s in (run.scores or [])]
    policy = SplitPolicy.from_dict(settlement.policy)
    track_lines = list(
        SettlementTrackLine.objects.filter(settlement=settlement)
        .select_related("recording")
        .order_by("position")
    )
    holder_lines = list(
        SettlementHolderLine.objects.filter(settlement=settlement).select_related("rights_holder")
    )
    weights = {line.position: line.weight for line in track_lines}
    kept_total = sum(weights.values())

    # Recompute every step and compare it with what was booked.
    recomputed_weights = track_weights(scores, policy) if scores else []
    pool, platform, residue = revenue_split(
        revenue=settlement.revenue, pool_fraction=policy.pool_fraction
    )
    booked_amounts = [line.amount for line in track_lines]
    reference_lines = settlement.reference_lines or []
    paid_references = [r for r in reference_lines if r["paid"]]
    reference_weights = [int(Decimal(r["share_percent"]) * PERCENT_SCALE) for r in paid_references]
    pool_parts = allocate(
        settlement.pool, [*reference_weights, 100 * PERCENT_SCALE - sum(reference_weights)]
    )
    training_pool = pool_parts[-1]
    reference_amounts = {r["index"]: 0 for r in reference_lines} | {
        r["index"]: part for r, part in zip(paid_references, pool_parts, strict=False)
    }
    recomputed_amounts = (
        allocate(training_pool, [line.weight for line in track_lines]) if track_lines else []
    )
    recomputes = (
        [(w.position, w.weight) for w in recomputed_weights]
        == [(line.position, line.weight) for line in track_lines]
        and (pool, platform, residue) == (settlement.pool, settlement.platform, settlement.residue)
        and recomputed_amounts == booked_amounts
        and all(reference_amounts[r["index"]] == r["amount"] for r in reference_lines)
    )

    probabilities = softmax_standardised(scores, policy.temperature) if scores else []
    mean = math.fsum(scores) / len(scores) if scores else 0.0
    std = math.sqrt(math.fsum((s - mean) ** 2 for s in scores) / len(scores)) if scores else 0.0
    ranks = score_ranks(scores)

    visible = set(holder_ids) if holder_ids is not None else None
    holder_parts: dict[int, dict[int, int]] = {}  # position -> holder -> booked part
    reference_parts: dict[int, dict[int, int]] = {}  # reference index -> holder -> part
    names: dict[int, str] = {}
    for line in holder_lines:
        names[line.rights_holder_id] = line.rights_holder.legal_name
        for position, amount in line.tracks:
            holder_parts.setdefault(position, {})[line.rights_holder_id] = amount
        for index, amount in line.reference_parts:
            reference_parts.setdefault(index, {})[line.rights_holder_id] = amount

    def owner_parts(amount: int, shares: list[tuple[int, Decimal]], parts: list[int]):
        owners: list[OwnerPart] = []
        other_percent, other_amount = Decimal(0), 0
        for (holder_id, percent), part in zip(shares, parts, strict=True):
            if visible is None or holder_id in visible:
                owners.append(
                    OwnerPart(
                        rights_holder_id=holder_id,
                        rights_holder=names.get(holder_id, ""),
                        percent=percent,
                        amount=part,
                        exact=_accrual_fraction_major(
                            Fraction(amount) * Fraction(percent) / 100, settlement.currency
                        ),
                    )
                )
            else:
                other_percent += percent
                other_amount += part
        visible_owner = any(o.amount or o.percent for o in owners)
        if other_percent:
            owners.append(OwnerPart(None, "other owners", other_percent, other_amount, Decimal(0)))
        return owners, visible_owner

    references: list[ExplainedReference] = []
    for reference in reference_lines:
        shares = [(h, Decimal(p)) for h, p in reference["ownership"]]
        amount = reference_amounts[reference["index"]]
        parts = allocate(amount, [int(p * PERCENT_SCALE) for _, p in shares]) if shares else []
        recomputes = recomputes and all(
            reference_parts.get(reference["index"], {}).get(h) == part
            for (h, _), part in zip(shares, parts, strict=True)
            if part
        )
        owners, visible_owner = owner_parts(amount, shares, parts)
        if visible is not None and not visible_owner:
            continue
        references.append(
            ExplainedReference(
                index=reference["index"],
                recording_id=reference["recording"],
                isrc=reference["isrc"],
                share_percent=Decimal(reference["share_percent"]),
                noise_level=reference["noise_level"],
                paid=reference["paid"],
                reason=reference["reason"],
                amount=reference["amount"],
                owners=owners,
            )
        )

    tracks: list[ExplainedTrack] = []
    for line, rounded_amount in zip(track_lines, recomputed_amounts, strict=True):
        shares = [(h, Decimal(p)) for h, p in settlement.ownership_snapshot[str(line.position)]]
        share_weights = [int(percent * PERCENT_SCALE) for _, percent in shares]
        parts = allocate(line.amount, share_weights)
        recomputes = recomputes and all(
            holder_parts.get(line.position, {}).get(h) == part
            for (h, _), part in zip(shares, parts, strict=True)
            if part
        )
        owners, visible_owner = owner_parts(line.amount, shares, parts)
        if visible is not None and not visible_owner:
            continue  # a track the holder owns nothing of
        exact = Fraction(training_pool * line.weight, kept_total)
        tracks.append(
            ExplainedTrack(
                position=line.position,
                rank=ranks[line.position] if line.position < len(ranks) else 0,
                recording_id=line.recording_id,
                isrc=line.recording.isrc,
                title=line.recording.title,
                score=scores[line.position] if line.position < len(scores) else 0.0,
                standardised=(scores[line.position] - mean) / std if std else 0.0,
                softmax_share=Decimal(repr(probabilities[line.position])).quantize(Decimal("1e-12"))
                if probabilities
                else Decimal(0),
                weight=line.weight,
                pool_share=_fraction_decimal(Fraction(line.weight, kept_total)),
                exact_amount=_accrual_fraction_major(exact, settlement.currency),
                amount=line.amount,
                rounded_up=rounded_amount > exact.numerator // exact.denominator,
                owners=owners,
            )
        )
    tracks.sort(key=lambda t: t.rank)
    if visible is None:
        total = settlement.pool
    else:
        total = sum(line.amount for line in holder_lines if line.rights_holder_id in visible)
    paid = {line.position for line in track_lines}
    cutoff = max(track_lines, key=lambda line: ranks[line.position]) if track_lines else None
    reversed_ = JournalEntry.objects.filter(
        reverses=settlement.journal_entry_id, kind=JournalEntry.Kind.REVERSAL
    ).exists()
    audit = generation_audit(settlement.generation, settlement)
    if audit is not None and visible is not None:
        audit = replace(
            audit, holders=[row for row in audit.holders if row.rights_holder_id in visible]
        )
    return PaymentExplanation(
        settlement=settlement,
        generation=settlement.generation,
        run=run,
        currency=settlement.currency,
        policy=policy,
        revenue_minor=settlement.revenue_minor,
        revenue=settlement.revenue,
        pool=settlement.pool,
        platform=settlement.platform,
        residue=settlement.residue,
        score_count=len(scores),
        score_mean=mean,
        score_std=std,
        score_digits=score_digits(scores),
        kept_count=len(track_lines),
        kept_weight_total=kept_total,
        cutoff_rank=ranks[cutoff.position] if cutoff else 0,
        cutoff_score=scores[cutoff.position] if cutoff else 0.0,
        cutoff_reason=_cutoff_reason(policy, len(track_lines), len(scores)),
        tracks=tracks,
        total=total,
        for_holder=visible is not None,
        reversed=reversed_,
        recomputes=recomputes,
        unpaid_positions=frozenset(p for p in own_positions if p not in paid and p < len(scores)),
        audit=audit,
        references=references,
        training_pool=training_pool if reference_lines else None,
    )


def explanation_for(
    *, generation_id: int, user: AnyUser, entry_seq: int | None = None
) -> PaymentExplanation | None:
    """The explanation ``user`` may read of the settlement booked as journal entry
    ``entry_seq`` of generation ``generation_id`` (default: the settlement that pays now),
    or ``None`` when there is none they may read. Finance and catalog admins read any;
    a rights holder's user only a settlement that paid a holder they act for, and only
    those holders' parts of it."""
    settlements = Settlement.objects.filter(generation_id=generation_id).select_related(
        "generation", "attribution_run", "journal_entry"
    )
    if entry_seq is None:
        settlements = settlements.filter(pk__in=live_settlements().values("pk"))
    else:
        settlements = settlements.filter(journal_entry_id=entry_seq)
    holder_ids: list[int] | None = None
    if not user_sees_all_generations(user):
        holder_ids = list(holders_for_user(user).values_list("pk", flat=True))
        settlements = settlements.filter(holders__rights_holder_id__in=holder_ids).distinct()
    settlement = settlements.first()
    if settlement is None:
        return None
    own = holder_positions(settlement.generation.model_version_id, holder_ids) if holder_ids else ()
    return payment_explanation(settlement=settlement, holder_ids=holder_ids, own_positions=own)
