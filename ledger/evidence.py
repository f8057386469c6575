"""Recompute a generation's royalty split from its attribution evidence file alone.

The evidence file (``GET /attribution/generations/<id>/evidence.json``, built by
``ledger.selectors.evidence``) carries the scores of every training track, the split
policy, the revenue, the ownership shares of the paid tracks and what was booked. This
module needs nothing else: no database, no Django, only the standard library and the
ledger's own pure split functions (``ledger.splits``, ``ledger.money``, ``ledger.hashing``),
so a third party can run it on a copy of those four files::

    python -m ledger.evidence evidence-generation-42.json

It prints every check and exits 0 only if each one holds:

1. The scores hash: ``sha256`` of the scores in canonical JSON equals the settlement's
   ``scores_sha256`` (and there is one score per training track).
2. The track weights: softmax over standardised scores, the top-K / minimum-share cut-off
   (``splits.track_weights``) give exactly the booked (position, weight) pairs.
3. The amounts: the revenue's pool (``splits.revenue_split``), allocated over the weights
   (``money.allocate``), gives exactly each booked track amount; each track's amount over
   its ownership shares (``splits.ownership_split``) gives exactly each booked holder amount.
   A generation conditioned on catalog recordings (``references``) first pays each
   reference still licensed its share of the pool: the pool allocated over the shares and
   the rest (``money.allocate``) gives each booked reference amount, each over its
   recording's ownership shares gives the booked reference parts; the rest is the pool the
   track weights share.
4. For the full evidence (finance, catalog admins): the settlement's ``provenance_sha256``,
   which the journal entry's hash covers, recomputed from the file's fields.

A rights holder's file lists only that holder's own lines and tracks (other holders appear
as ``null`` in the ownership shares they need), so steps 1-3 check the holder's amounts
and step 4 is skipped.
"""

import json
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

from ledger import hashing
from ledger.money import allocate, minor_to_accrual
from ledger.splits import (
    PERCENT_SCALE,
    SplitPolicy,
    ownership_split,
    revenue_split,
    track_weights,
)

EVIDENCE_FORMAT = "royalty-ledger/attribution-evidence/1"
FULL, HOLDER = "full", "holder"


@dataclass
class Recomputation:
    """What the evidence file gives when recomputed, and every check made."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    track_amounts: dict[int, int] = field(default_factory=dict)  # position -> accrual units
    holder_amounts: dict[int, int] = field(default_factory=dict)  # holder id -> accrual units
    reference_amounts: dict[int, int] = field(default_factory=dict)  # reference index -> units

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(passed for _, passed, _ in self.checks)

    def check(self, name: str, passed: bool, detail: str = "") -> None:
        self.checks.append((name, passed, detail))


def evidence_recompute(evidence: dict) -> Recomputation:
    """Recompute the split of ``evidence`` (the parsed file) and compare with the booking."""
    result = Recomputation()
    if evidence.get("format") != EVIDENCE_FORMAT:
        result.check("format", False, f"expected {EVIDENCE_FORMAT!r}")
        return result
    settlement = evidence["settlement"]
    booked = evidence["booked"]
    scores = [track["score"] for track in evidence["training_set"]]
    positions = [track["position"] for track in evidence["training_set"]]

    result.check(
        "one score per training track, by position",
        positions == list(range(len(scores))) and len(scores) == settlement["score_count"],
        f"{len(scores)} scores, {settlement['score_count']} booked",
    )
    digest = hashing.scores_sha256(scores)
    result.check("scores hash", digest == settlement["scores_sha256"], digest)

    policy = SplitPolicy.from_dict(settlement["policy"])
    weights = track_weights(scores, policy)
    booked_tracks = {position: (weight, amount) for position, weight, amount in booked["tracks"]}
    result.check(
        "track weights (softmax of standardised scores, top-K and minimum-share cut-off)",
        [(w.position, w.weight) for w in weights]
        == [(position, booked_tracks[position][0]) for position in sorted(booked_tracks)],
        f"{len(weights)} tracks kept",
    )

    revenue = minor_to_accrual(settlement["revenue_minor"])
    pool, platform, residue = revenue_split(
        revenue=revenue, pool_fraction=Decimal(settlement["policy"]["pool_fraction"])
    )
    result.check(
        "revenue split (pool, platform, rounding residue)",
        (revenue, pool, platform, residue)
        == (
            settlement["revenue"],
            settlement["pool"],
            settlement["platform"],
            settlement["residue"],
        ),
        f"pool {pool} of {revenue} accrual units",
    )
    references = evidence.get("references") or []
    paid = [r for r in references if r["paid"]]
    reference_weights = [int(Decimal(r["share_percent"]) * PERCENT_SCALE) for r in paid]
    pool_parts = allocate(pool, [*reference_weights, 100 * PERCENT_SCALE - sum(reference_weights)])
    training_pool = pool_parts[-1]
    result.reference_amounts = {r["index"]: 0 for r in references}
    result.reference_amounts |= {
        r["index"]: part for r, part in zip(paid, pool_parts, strict=False)
    }
    reference_parts: dict[int, list[list[int]]] = {}
    reference_holders_ok = True
    for reference in references:
        if not reference["paid"]:
            reference_holders_ok &= reference["holders"] == []
            continue
        split = ownership_split(
            amount=result.reference_amounts[reference["index"]],
            shares=[(holder, Decimal(percent)) for holder, percent in reference["ownership"]],
            position=reference["index"],
        )
        own = [[holder, part] for holder, part in split if holder is not None]
        reference_holders_ok &= own == reference["holders"]
        for holder, part in own:
            reference_parts.setdefault(holder, []).append([reference["index"], part])
            result.holder_amounts[holder] = result.holder_amounts.get(holder, 0) + part
    if references:
        result.check(
            "reference amounts (each licensed reference's share of the pool first)",
            result.reference_amounts == {r["index"]: r["amount"] for r in references}
            and reference_holders_ok,
            f"{pool - training_pool} of the pool for reference use, "
            f"{training_pool} for training influence",
        )
    amounts = allocate(training_pool, [w.weight for w in weights])
    result.track_amounts = {w.position: a for w, a in zip(weights, amounts, strict=True)}
    result.check(
        "track amounts (the pool allocated over the weights)",
        result.track_amounts == {p: amount for p, (_, amount) in booked_tracks.items()},
    )

    parts: dict[int, list[list[int]]] = {}
    for position_text, shares in sorted(
        evidence["ownership"].items(), key=lambda item: int(item[0])
    ):
        position = int(position_text)
        split = ownership_split(
            amount=result.track_amounts.get(position, 0),
            shares=[(holder, Decimal(percent)) for holder, percent in shares],
            position=position,
        )
        for holder, part in split:
            if holder is not None:
                parts.setdefault(holder, []).append([position, part])
                result.holder_amounts[holder] = result.holder_amounts.get(holder, 0) + part
    booked_holders = {
        holder: (amount, tracks, rest[0] if rest else [])
        for holder, amount, tracks, *rest in booked["holders"]
    }
    result.check(
        "holder amounts (each track and reference over its ownership shares)",
        {
            h: (result.holder_amounts[h], parts.get(h, []), reference_parts.get(h, []))
            for h in result.holder_amounts
            if h in booked_holders
        }
        == booked_holders,
        ", ".join(f"holder {h}: {a}" for h, a in sorted(result.holder_amounts.items())),
    )

    if evidence["scope"] == FULL:
        result.check(
            "every holder line booked is recomputed",
            set(result.holder_amounts) == set(booked_holders)
            and sum(result.holder_amounts.values()) == pool,
        )
        fields = {key: settlement[key] for key, _ in hashing.SETTLEMENT_FIELDS}
        fields["ownership_snapshot"] = evidence["ownership"]
        row = SimpleNamespace(
            **{attr: fields[key] for key, attr in hashing.SETTLEMENT_FIELDS},
            reference_lines=references,
        )
        tracks = [
            (position, recording, weight, amount)
            for position, recording, weight, amount in booked["track_recordings"]
        ]
        holders = [tuple(holder) for holder in booked["holders"]]
        provenance = hashing.settlement_sha256(row, tracks, holders)
        result.check(
            "settlement provenance hash (covered by the journal entry's hash)",
            provenance == settlement["provenance_sha256"],
            provenance,
        )
    return result


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m ledger.evidence EVIDENCE.json", file=sys.stderr)
        return 2
    evidence = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    result = evidence_recompute(evidence)
    for name, passed, detail in result.checks:
        print(f"{'ok  ' if passed else 'FAIL'} {name}{': ' + detail if detail else ''}")
    print("The booked split is reproduced exactly." if result.ok else "Mismatch: see FAIL.")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
