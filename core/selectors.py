"""Reads shared by every app: verification of the audit trail's hash chain."""

from collections.abc import Iterator
from dataclasses import dataclass

from core import hashing
from core.models import AuditEvent


@dataclass
class AuditTrailReport:
    events_checked: int = 0
    first_break: str | None = None
    break_seq: int | None = None
    head_seq: int = 0
    head_hash: str = hashing.GENESIS_HASH

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _chunks(chunk_size: int) -> Iterator[list[AuditEvent]]:
    last = 0
    while True:
        chunk = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:chunk_size])
        if not chunk:
            return
        yield chunk
        last = chunk[-1].seq


def audit_trail_verify(
    *, chunk_size: int = 1000, anchors: dict[int, str] | None = None
) -> AuditTrailReport:
    """Recompute the audit trail's hash chain; stop at the first break and say where.

    Finds an event edited, deleted or inserted out of the chain (which only a role that can
    disable the triggers could do). ``anchors`` ({seq: hash} recorded elsewhere earlier)
    must all be found: that is what detects events cut off the end. Memory is bounded by
    ``chunk_size`` events.
    """
    anchors = dict(anchors or {})
    report = AuditTrailReport()
    prev_hash = hashing.GENESIS_HASH
    expected_seq = 1

    def fail(seq: int | None, reason: str) -> AuditTrailReport:
        report.break_seq = seq
        report.first_break = f"audit event #{seq}: {reason}" if seq is not None else reason
        return report

    for chunk in _chunks(chunk_size):
        for event in chunk:
            if event.seq != expected_seq:
                return fail(expected_seq, f"missing (next event in the table is #{event.seq})")
            if event.prev_hash != prev_hash:
                return fail(event.seq, "prev_hash is not the previous event's hash")
            if hashing.audit_event_hash(prev_hash, event) != event.hash:
                return fail(event.seq, "content does not match its hash (event altered)")
            if event.seq in anchors and anchors.pop(event.seq) != event.hash:
                return fail(event.seq, "hash differs from the recorded anchor")
            report.events_checked += 1
            prev_hash = event.hash
            expected_seq += 1
            report.head_seq, report.head_hash = event.seq, event.hash
    if anchors:
        return fail(min(anchors), "anchored event is missing (the trail was cut short)")
    return report
