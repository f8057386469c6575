"""Verification of the whole ledger: the hash chain, every entry's balance, every
settlement's provenance, the trial balance; and the audit trail's hash chain."""

from collections.abc import Iterator
from dataclasses import dataclass, field

from django.db.models import Q

from core.selectors import AuditTrailReport, audit_trail_verify
from ledger import hashing
from ledger.models import (
    GENESIS_HASH,
    Account,
    JournalEntry,
    Posting,
    Settlement,
    SettlementHolderLine,
    SettlementTrackLine,
)
from ledger.selectors.accounts import trial_balance


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
    audit: AuditTrailReport = field(default_factory=AuditTrailReport)

    @property
    def ok(self) -> bool:
        return self.first_break is None and self.audit.ok

    @property
    def breaks(self) -> list[str]:
        """The journal's first break and the audit trail's, where each has one."""
        return [b for b in (self.first_break, self.audit.first_break) if b is not None]

    def __str__(self) -> str:
        if self.ok:
            return (
                f"Ledger OK up to #{self.head_seq} ({self.entries_checked} entries), "
                f"audit trail OK up to #{self.audit.head_seq}"
            )
        return f"Ledger verification failed at {'; '.join(self.breaks)}"


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


def ledger_verify(
    *,
    chunk_size: int = 500,
    anchors: dict[int, str] | None = None,
    audit_anchors: dict[int, str] | None = None,
) -> VerificationReport:
    """Recompute the journal's hash chain, every entry's balance and every settlement's
    provenance, then the audit trail's hash chain (``core.selectors.audit_trail_verify``).

    Each stops at its first break and says where it is. Memory is bounded by ``chunk_size``
    entries (plus the account table). ``anchors`` ({seq: hash} recorded elsewhere earlier)
    must all be found in the journal's chain, ``audit_anchors`` in the audit trail's: that
    is what detects rows cut off the end.
    """
    report = VerificationReport()
    _journal_verify(report, chunk_size=chunk_size, anchors=dict(anchors or {}))
    report.audit = audit_trail_verify(chunk_size=chunk_size, anchors=audit_anchors)
    return report


def _journal_verify(
    report: VerificationReport, *, chunk_size: int, anchors: dict[int, str]
) -> VerificationReport:
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
                .values_list(
                    "settlement_id", "rights_holder_id", "amount", "tracks", "reference_parts"
                )
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
            content = hashing.entry_content(
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
                digest = hashing.settlement_sha256(settlement, tracks, holders)
                if digest != entry.provenance_sha256 or digest != settlement.provenance_sha256:
                    return fail(entry.seq, "settlement provenance does not match its hash")
                posted = {
                    accounts[row[2]][3]: -row[4]
                    for row in rows
                    if accounts[row[2]][2] == Account.Kind.HOLDER_PAYABLE
                }
                if posted != {h: a for h, a, *_ in holders if a != 0}:
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


def ledger_verifications(*, limit: int = 10):
    """The latest recorded runs of ``ledger.services.ledger_verification_run``."""
    from core.models import AuditEvent

    return AuditEvent.objects.filter(action="ledger.verify").select_related("actor")[:limit]
