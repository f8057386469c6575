"""What each attribution method would have paid for a settled generation, beside what was paid.

Every succeeded run of the generation is a column: the run that paid (its settlement) and each
audit run (the exact method's audit and the second opinions of other methods,
``attribution.services.attribution_run_second_opinion``). A column's amounts are what a
settlement of that run's scores would have booked (``ledger.selectors.audits.would_pay``: the
settlement's recorded policy, revenue and ownership snapshot, the ledger's own integer split),
so each column sums to the pool exactly and the paying run's column equals the booked lines.
Nothing here is booked.

Agreement of each column with the paying run is the audit's (``ledger.selectors.audits``):
Spearman's rank correlation over every training track, the overlap of the ten highest-scored
tracks, and the L1 distance between the two holder splits of the pool (over every holder).

The holders concerned are those with a share in a track that was paid or that any method
scored in its top K (the policy's ``top_k``; without one, the tracks the method would pay).
A rights holder's user sees only the rows of the holders they act for; co-owners of their
tracks are not shown, as on the payment explanation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from attribution.models import AttributionRun
from catalog.models import RightsHolder
from ledger.models import Settlement, SettlementHolderLine, SettlementTrackLine
from ledger.money import accrual_to_decimal
from ledger.selectors.audits import (
    METHOD_LABELS,
    ownership_at,
    spearman,
    top_overlap,
    would_pay,
)
from ledger.splits import SplitPolicy


@dataclass(frozen=True)
class MethodColumn:
    """One succeeded run: what its scores would have paid, and how far it agrees with the
    run that paid (``None`` for that run itself)."""

    run: AttributionRun
    paying: bool
    total_accrual: int  # what the column adds up to over the rows shown
    total: Decimal
    spearman: float | None
    top10_overlap: int | None
    holder_l1: float | None  # sum over every holder of |paid - would pay| / pool, in [0, 2]

    @property
    def label(self) -> str:
        return METHOD_LABELS.get(self.run.method, self.run.method)


@dataclass(frozen=True)
class MethodAmount:
    run_id: int
    method: str
    amount_accrual: int
    amount: Decimal


@dataclass(frozen=True)
class MethodHolderRow:
    rights_holder_id: int
    rights_holder: str
    paid_accrual: int  # booked by the settlement
    paid: Decimal
    amounts: tuple[MethodAmount, ...]  # one per column, in the columns' order


@dataclass(frozen=True)
class MethodPayments:
    settlement: Settlement
    currency: str
    pool_accrual: int
    columns: list[MethodColumn]
    rows: list[MethodHolderRow]
    paid_total_accrual: int  # what the settlement paid the rows shown
    paid_total: Decimal
    for_holder: bool

    @property
    def second_opinions(self) -> int:
        return sum(1 for column in self.columns if not column.paying)


def _top_positions(scores: np.ndarray, k: int) -> list[int]:
    """The ``k`` highest-scored positions (ties: the lower position first)."""
    return np.argsort(-scores, kind="stable")[:k].tolist()


def method_payments(
    *, settlement: Settlement, holder_ids: Collection[int] | None
) -> MethodPayments:
    """The panel of ``settlement``'s generation for the holders ``holder_ids`` act for
    (``None``: finance and catalog admins, every holder concerned)."""
    paying = settlement.attribution_run
    paid_scores = np.asarray(paying.scores or [], dtype=np.float64)
    audits = AttributionRun.objects.filter(
        generation_id=settlement.generation_id,
        purpose=AttributionRun.Purpose.AUDIT,
        status=AttributionRun.Status.SUCCEEDED,
    ).order_by("created_at", "id")
    runs = [paying] + [
        run for run in audits if np.asarray(run.scores or []).shape == paid_scores.shape
    ]
    policy = SplitPolicy.from_dict(settlement.policy)
    booked = dict(
        SettlementHolderLine.objects.filter(settlement=settlement).values_list(
            "rights_holder_id", "amount"
        )
    )
    positions = set(
        SettlementTrackLine.objects.filter(settlement=settlement).values_list("position", flat=True)
    )
    would: list[dict[int, int]] = []
    for run in runs:
        split = would_pay(settlement, run.scores)
        would.append(dict(split.holders))
        k = policy.top_k if policy.top_k is not None else len(split.tracks)
        positions |= {t.position for t in split.tracks}
        positions |= set(_top_positions(np.asarray(run.scores, dtype=np.float64), k))
    concerned = {h for shares in ownership_at(settlement, positions).values() for h, _ in shares}
    concerned |= set(booked) | {h for amounts in would for h in amounts}
    visible = concerned if holder_ids is None else concerned & set(holder_ids)
    names = dict(RightsHolder.objects.filter(pk__in=visible).values_list("pk", "legal_name"))
    currency = settlement.currency
    pool = max(settlement.pool, 1)
    every_holder = set(booked).union(*would)

    columns = []
    for run, amounts in zip(runs, would, strict=True):
        total = sum(amounts.get(h, 0) for h in visible)
        is_paying = run.pk == paying.pk
        scores = np.asarray(run.scores, dtype=np.float64)
        l1 = sum(abs(booked.get(h, 0) - amounts.get(h, 0)) for h in every_holder) / pool
        columns.append(
            MethodColumn(
                run=run,
                paying=is_paying,
                total_accrual=total,
                total=accrual_to_decimal(total, currency),
                spearman=None if is_paying else spearman(paid_scores, scores),
                top10_overlap=None if is_paying else top_overlap(paid_scores, scores),
                holder_l1=None if is_paying else float(l1),
            )
        )
    rows = [
        MethodHolderRow(
            rights_holder_id=h,
            rights_holder=names.get(h, str(h)),
            paid_accrual=int(booked.get(h, 0)),
            paid=accrual_to_decimal(int(booked.get(h, 0)), currency),
            amounts=tuple(
                MethodAmount(
                    run_id=run.pk,
                    method=run.method,
                    amount_accrual=amounts.get(h, 0),
                    amount=accrual_to_decimal(amounts.get(h, 0), currency),
                )
                for run, amounts in zip(runs, would, strict=True)
            ),
        )
        for h in visible
    ]
    rows.sort(key=lambda row: (-row.paid_accrual, row.rights_holder, row.rights_holder_id))
    paid_total = sum(row.paid_accrual for row in rows)
    return MethodPayments(
        settlement=settlement,
        currency=currency,
        pool_accrual=settlement.pool,
        columns=columns,
        rows=rows,
        paid_total_accrual=paid_total,
        paid_total=accrual_to_decimal(paid_total, currency),
        for_holder=holder_ids is not None,
    )
