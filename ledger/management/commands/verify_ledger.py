"""``manage.py verify_ledger``: recompute the hash chain, balances and settlement provenance.

Exit status 0 when the ledger is intact; 1 with the first break on stderr otherwise.

The chain proves that nothing before the head was changed, but not that the newest entries
were not cut off: record the printed head (``seq:hash``) somewhere else (a statement, a
ticket, a notarised log) and pass it back as ``--expect SEQ:HASH`` to prove that entry is
still there, unchanged.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import ledger_verify


class Command(BaseCommand):
    help = "Verify the ledger's hash chain, entry balances and settlement provenance."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=500, help="entries per query")
        parser.add_argument(
            "--expect",
            action="append",
            default=[],
            metavar="SEQ:HASH",
            help="an anchor recorded earlier: entry SEQ must exist with this hash",
        )

    def handle(self, *args, chunk_size: int, expect: list[str], **options):
        anchors = {}
        for anchor in expect:
            seq, _, digest = anchor.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise CommandError(f"--expect takes SEQ:HASH, got {anchor!r}")
            anchors[int(seq)] = digest
        started = time.perf_counter()
        report = ledger_verify(chunk_size=chunk_size, anchors=anchors)
        elapsed = time.perf_counter() - started
        summary = (
            f"{report.entries_checked} entries, {report.postings_checked} postings, "
            f"{report.settlements_checked} settlements checked in {elapsed:.2f}s"
        )
        if not report.ok:
            self.stderr.write(summary)
            raise CommandError(f"Ledger verification FAILED at {report.first_break}")
        self.stdout.write(f"Ledger OK: {summary}; trial balance {report.trial_balance}")
        self.stdout.write(f"head {report.head_seq}:{report.head_hash}")
