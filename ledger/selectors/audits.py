"""A settled generation next to its audit: the exact method's scores beside the scores that
paid, and how far they agree.

The agreement is what the fidelity benchmark of the first-order method measures
(BENCHMARKS.md, "First-order attribution"): Spearman's rank correlation over every training
track, the overlap of the ten highest-scored tracks, and the L1 distance between the two
per-rights-holder splits of the pool under the settlement's own policy. The audit's split is
what the exact method *would* have paid: computed with the same integer arithmetic as a
settlement (``ledger.splits``), never booked.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from attribution.methods import AUDIT_METHOD
from attribution.models import AttributionRun, Generation
from attribution.selectors import latest_run
from catalog.models import OwnershipShare, RightsHolder
from ledger.models import Settlement, SettlementHolderLine
from ledger.money import accrual_to_decimal
from ledger.splits import (
    GenerationSplit,
    ReferenceTerms,
    SplitPolicy,
    generation_split,
    track_weights,
)

PERCENT_QUANTUM = Decimal("0.0001")
METHOD_LABELS = {
    "unlearning": "exact unlearning (Eq. 2)",
    "first_order": "first-order unlearning (fast path)",
    # second opinions (Sec. 3.3 of the paper)
    "audio_similarity": "audio similarity (MFCC and chroma)",
    "activation_similarity": "activation similarity (the DiT's layer outputs)",
    "representer_points": "representer points",
    "gradient_similarity": "gradient similarity (no unlearning)",
}


@dataclass(frozen=True)
class HolderComparison:
    rights_holder_id: int
    rights_holder: str
    paid: Decimal  # what the settlement paid (major units)
    audit: Decimal  # what the audit method's scores would have paid (major units)


@dataclass(frozen=True)
class AuditComparison:
    settlement_run: AttributionRun
    audit_run: AttributionRun
    spearman: float
    top10_overlap: int  # of 10
    holder_l1: float  # sum over holders of |paid share - audit share| of the pool, in [0, 2]
    holders: list[HolderComparison]  # every holder either split pays, by name


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their mean rank (Spearman's convention)."""
    order = np.argsort(values, kind="stable")
    ranked = np.empty(len(values), dtype=np.float64)
    ranked[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranked[tied] = ranked[tied].mean()
    return ranked


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the ranks (0 when either side is constant)."""
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denominator = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / denominator) if denominator > 0 else 0.0


def top_overlap(a: np.ndarray, b: np.ndarray, k: int = 10) -> int:
    top_a = set(np.argsort(-a, kind="stable")[:k].tolist())
    top_b = set(np.argsort(-b, kind="stable")[:k].tolist())
    return len(top_a & top_b)


def ownership_at(
    settlement: Settlement, positions: Iterable[int]
) -> dict[int, list[tuple[int, str]]]:
    """(holder id, percent) per position: the settlement's snapshot where it has the position,
    else today's ownership shares of the recording at that position."""
    snapshot = {
        int(p): [(h, pct) for h, pct in v] for p, v in settlement.ownership_snapshot.items()
    }
    positions = list(positions)
    missing = [p for p in positions if p not in snapshot]
    if missing:
        shares = OwnershipShare.objects.filter(
            recording__training_set_entries__model_version=settlement.attribution_run.model_version,
            recording__training_set_entries__position__in=missing,
        ).values_list("recording__training_set_entries__position", "rights_holder_id", "percent")
        for position, holder_id, percent in shares:
            snapshot.setdefault(position, []).append(
                (holder_id, str(Decimal(percent).quantize(PERCENT_QUANTUM)))
            )
    return {p: sorted(snapshot.get(p, [])) for p in positions}


def would_pay(settlement: Settlement, scores: Sequence[float]) -> GenerationSplit:
    """What ``settlement`` would have booked had ``scores`` paid it: its recorded policy and
    revenue, its ownership snapshot (today's shares for a track it did not pay), and the
    ledger's own split (``ledger.splits``), so the amounts are the integers a settlement of
    those scores books, and they sum to the pool."""
    policy = SplitPolicy.from_dict(settlement.policy)
    weights = track_weights([float(x) for x in scores], policy)
    ownership = ownership_at(settlement, [w.position for w in weights])
    return generation_split(
        revenue_minor=settlement.revenue_minor,
        weights=weights,
        pool_fraction=policy.pool_fraction,
        ownership={p: [(h, Decimal(pct)) for h, pct in v] for p, v in ownership.items()},
        # reference use is paid the same whichever method scores the training tracks
        references=[
            ReferenceTerms(
                index=r["index"],
                recording_id=r["recording"],
                share_percent=Decimal(r["share_percent"]),
                paid=r["paid"],
                shares=tuple((h, Decimal(pct)) for h, pct in r["ownership"]),
            )
            for r in settlement.reference_lines
        ],
    )


def generation_audit(
    generation: Generation, settlement: Settlement | None
) -> AuditComparison | None:
    """The comparison, when the generation is settled and its exact-method audit run has
    succeeded (second opinions of other methods: ``ledger.selectors.opinions``)."""
    audit = latest_run(generation, AttributionRun.Purpose.AUDIT, AUDIT_METHOD)
    if settlement is None or audit is None or audit.status != AttributionRun.Status.SUCCEEDED:
        return None
    paid_scores = np.asarray(settlement.attribution_run.scores, dtype=np.float64)
    audit_scores = np.asarray(audit.scores, dtype=np.float64)
    if paid_scores.shape != audit_scores.shape:
        return None
    audit_amounts = dict(would_pay(settlement, audit.scores).holders)
    paid_amounts = dict(
        SettlementHolderLine.objects.filter(settlement=settlement).values_list(
            "rights_holder_id", "amount"
        )
    )
    ids = set(audit_amounts) | set(paid_amounts)
    names = dict(RightsHolder.objects.filter(pk__in=ids).values_list("pk", "legal_name"))
    pool = max(settlement.pool, 1)
    l1 = sum(abs(paid_amounts.get(h, 0) - audit_amounts.get(h, 0)) for h in ids) / pool
    holders = sorted(
        (
            HolderComparison(
                rights_holder_id=h,
                rights_holder=names.get(h, str(h)),
                paid=accrual_to_decimal(int(paid_amounts.get(h, 0)), settlement.currency),
                audit=accrual_to_decimal(int(audit_amounts.get(h, 0)), settlement.currency),
            )
            for h in ids
        ),
        key=lambda row: (-row.paid, row.rights_holder),
    )
    return AuditComparison(
        settlement_run=settlement.attribution_run,
        audit_run=audit,
        spearman=spearman(paid_scores, audit_scores),
        top10_overlap=top_overlap(paid_scores, audit_scores),
        holder_l1=float(l1),
        holders=holders,
    )
