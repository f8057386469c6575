"""``manage.py verify_ledger``: recompute the journal's hash chain, balances and settlement
provenance, and the audit trail's hash chain.

Exit status 0 when both are intact; 1 with the first break of each on stderr otherwise.

A chain proves that nothing before its head was changed, but not that the newest rows
were not cut off: record the printed heads (``seq:hash``) somewhere else (a statement, a
ticket, a notarised log) and pass them back as ``--expect SEQ:HASH`` (journal) and
``--expect-audit SEQ:HASH`` (audit trail) to prove those rows are still there, unchanged.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import ledger_verify


class Command(BaseCommand):
    help = (
        "Verify the ledger's hash chain, entry balances and settlement provenance, and the "
        "audit trail's hash chain."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=500, help="entries per query")
        parser.add_argument(
            "--expect",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="an anchor recorded earlier: entry SEQ must exist with this hash",
        )
        parser.add_argument(
            "--expect-audit",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="an anchor recorded earlier: audit event SEQ must exist with this hash",
        )

    def handle(self, *args, chunk_size: int, expect: list[str], expect_audit: list[str], **o):
        anchors = _anchors("--expect", expect)
        audit_anchors = _anchors("--expect-audit", expect_audit)
        started = time.perf_counter()
        report = ledger_verify(chunk_size=chunk_size, anchors=anchors, audit_anchors=audit_anchors)
        elapsed = time.perf_counter() - started
        summary = (
            f"{report.entries_checked} entries, {report.postings_checked} postings, "
            f"{report.settlements_checked} settlements, {report.audit.events_checked} audit "
            f"events checked in {elapsed:.2f}s"
        )
        if not report.ok:
            self.stderr.write(summary)
            raise CommandError(f"Ledger verification FAILED at {'; '.join(report.breaks)}")
        self.stdout.write(f"Ledger OK: {summary}; trial balance {report.trial_balance}")
        self.stdout.write(f"audit head {report.audit.head_seq}:{report.audit.head_hash}")
        self.stdout.write(f"head {report.head_seq}:{report.head_hash}")


def _anchors(option: str, values: list[str]) -> dict[int, str]:
    anchors = {}
    for anchor in values:
        seq, _, digest = anchor.partition(":")
        if not seq.isdigit() or len(digest) != 64:
            raise CommandError(f"{option} takes SEQ:HASH, got {anchor!r}")
        anchors[int(seq)] = digest
    return anchors
