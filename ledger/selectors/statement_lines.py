"""A frozen statement as usage lines: one per generation and track, for the flat exports.

Each line says its basis: "training influence" (a training track's part of the pool, by
training-time attribution) or "reference use" (a catalog recording the generation was
conditioned on, paid its licence's share of the pool first; ``position`` is then the
reference's index in the generation).

Every settlement line of the statement becomes one line per track that paid the holder;
every reversal of a settlement becomes the same lines negated, dated when the reversal was
booked. Invariant: the lines' amounts sum exactly to the statement's net earnings (earned
from generations plus reversals) in accrual units; payouts and failed payouts returned
are movements of money already earned, not usage, and stay on the summary.

The lines are read from the statement's frozen content and from settlements (immutable),
so the same statement always gives the same lines.
"""

from dataclasses import dataclass
from decimal import Decimal

from catalog.models import Recording
from ledger.models import (
    JournalEntry,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
    Statement,
)

EARNING, REVERSAL = "earning", "reversal"
TRAINING_INFLUENCE, REFERENCE_USE = "training influence", "reference use"


@dataclass(frozen=True)
class StatementUsageLine:
    kind: str  # EARNING or REVERSAL
    entry: int  # the journal entry that booked it (the reversal's own entry for a reversal)
    date: str  # UTC ISO 8601: the generation's time (earning) or the reversal's booking
    generation: int
    attribution_run: int
    position: int  # the track's position in the model's training set
    isrc: str
    title: str
    ownership_percent: Decimal  # the holder's share of the recording, percent (4 places)
    pool: int  # the generation's royalty pool, accrual units
    amount: int  # accrual units owed to the holder for this track (negative: reversed)
    basis: str = TRAINING_INFLUENCE  # or REFERENCE_USE (position: the reference's index)

    @property
    def share_of_pool(self) -> Decimal:
        """This line's part of the generation's pool, as a fraction (exact to 12 places)."""
        if not self.pool:
            return Decimal(0)
        return (Decimal(self.amount) / Decimal(self.pool)).quantize(Decimal("1e-12"))


@dataclass(frozen=True)
class StatementTotals:
    opening: int
    earned: int
    reversed: int
    failed_payouts_returned: int
    paid_out: int
    closing: int

    @property
    def net_earnings(self) -> int:
        """What the usage lines sum to."""
        return self.earned + self.reversed


def statement_totals(*, content: dict) -> StatementTotals:
    """The statement's summary, from its frozen content (accrual units)."""
    adjustments = content["adjustments"]
    return StatementTotals(
        opening=content["opening_balance"],
        earned=sum(line["amount"] for line in content["lines"]),
        reversed=sum(a["amount"] for a in adjustments if a["kind"] == JournalEntry.Kind.REVERSAL),
        failed_payouts_returned=sum(
            a["amount"] for a in adjustments if a["kind"] != JournalEntry.Kind.REVERSAL
        ),
        paid_out=sum(payout["amount"] for payout in content["payouts"]),
        closing=content["closing_balance"],
    )


def _ownership_percent(settlement: Settlement, position: int, holder_id: int) -> Decimal:
    for holder, percent in settlement.ownership_snapshot.get(str(position), ()):
        if holder == holder_id:
            return Decimal(percent)
    raise AssertionError(f"holder {holder_id} owns no share of position {position}")


def _reference_line(settlement: Settlement, index: int) -> dict:
    for reference in settlement.reference_lines:
        if reference["index"] == index:
            return reference
    raise AssertionError(f"settlement {settlement.pk} has no reference {index}")


def _reference_percent(reference: dict, holder_id: int) -> Decimal:
    for holder, percent in reference["ownership"]:
        if holder == holder_id:
            return Decimal(percent)
    raise AssertionError(f"holder {holder_id} owns no share of reference {reference['index']}")


def statement_usage_lines(*, statement: Statement) -> list[StatementUsageLine]:
    """The statement's usage lines in ledger order (entry, then training-set position)."""
    content = statement.content
    holder_id = content["rights_holder"]
    reversed_of = {
        item["entry"]: item
        for item in content["adjustments"]
        if item["kind"] == JournalEntry.Kind.REVERSAL
    }
    settlement_entries = {line["entry"] for line in content["lines"]}
    settlement_entries |= {item["reverses"] for item in reversed_of.values()}
    settlements = {
        s.journal_entry_id: s
        for s in Settlement.objects.filter(journal_entry_id__in=settlement_entries)
    }
    holder_lines = {
        hl.settlement_id: hl
        for hl in SettlementHolderLine.objects.filter(
            settlement__in=settlements.values(), rights_holder_id=holder_id
        )
    }
    recordings = {
        (tl.settlement_id, tl.position): tl.recording
        for tl in SettlementTrackLine.objects.filter(
            settlement__in=settlements.values()
        ).select_related("recording")
    }

    reference_titles = dict(
        Recording.objects.filter(
            pk__in=[
                reference["recording"]
                for settlement in settlements.values()
                for reference in settlement.reference_lines
            ]
        ).values_list("pk", "title")
    )

    def lines_of(
        settlement: Settlement,
        *,
        kind: str,
        entry: int,
        date: str,
        sign: int,
        frozen=(),
        frozen_references=(),
    ):
        # ISRC and title as the statement froze them, where it did (its earning lines).
        frozen_tracks = {track["position"]: track for track in frozen}
        for position, amount in holder_lines[settlement.pk].tracks:
            recording = recordings[(settlement.pk, position)]
            track = frozen_tracks.get(position, {"isrc": recording.isrc, "title": recording.title})
            yield StatementUsageLine(
                kind=kind,
                entry=entry,
                date=date,
                generation=settlement.generation_id,
                attribution_run=settlement.attribution_run_id,
                position=position,
                isrc=track["isrc"],
                title=track["title"],
                ownership_percent=_ownership_percent(settlement, position, holder_id),
                pool=settlement.pool,
                amount=sign * amount,
            )
        frozen_refs = {reference["index"]: reference for reference in frozen_references}
        for index, amount in holder_lines[settlement.pk].reference_parts:
            reference = _reference_line(settlement, index)
            title = frozen_refs.get(index, {}).get("title")
            yield StatementUsageLine(
                kind=kind,
                entry=entry,
                date=date,
                generation=settlement.generation_id,
                attribution_run=settlement.attribution_run_id,
                position=index,
                isrc=reference["isrc"],
                title=title if title is not None else reference_titles[reference["recording"]],
                ownership_percent=_reference_percent(reference, holder_id),
                pool=settlement.pool,
                amount=sign * amount,
                basis=REFERENCE_USE,
            )

    usage: list[StatementUsageLine] = []
    for line in content["lines"]:
        found = list(
            lines_of(
                settlements[line["entry"]],
                kind=EARNING,
                entry=line["entry"],
                date=line["date"],
                sign=1,
                frozen=line["tracks"],
                frozen_references=line.get("references", ()),
            )
        )
        assert sum(u.amount for u in found) == line["amount"], line["entry"]
        usage.extend(found)
    for item in reversed_of.values():
        found = list(
            lines_of(
                settlements[item["reverses"]],
                kind=REVERSAL,
                entry=item["entry"],
                date=item["booked_at"],
                sign=-1,
            )
        )
        assert sum(u.amount for u in found) == item["amount"], item["entry"]
        usage.extend(found)
    usage.sort(key=lambda u: (u.entry, u.basis != REFERENCE_USE, u.position))
    return usage
