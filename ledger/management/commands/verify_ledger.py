"""``manage.py verify_ledger``: recompute the hash chain, balances and settlement provenance.

Exit status 0 when the ledger is intact; 1 with the first break on stderr otherwise.
"""

import time

from django.core.management.base import BaseCommand, CommandError

from ledger.selectors import ledger_verify


class Command(BaseCommand):
    help = "Verify the ledger's hash chain, entry balances and settlement provenance."

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=500, help="entries per query")

    def handle(self, *args, chunk_size: int, **options):
        started = time.perf_counter()
        report = ledger_verify(chunk_size=chunk_size)
        elapsed = time.perf_counter() - started
        summary = (
            f"{report.entries_checked} entries, {report.postings_checked} postings, "
            f"{report.settlements_checked} settlements checked in {elapsed:.2f}s"
        )
        if not report.ok:
            self.stderr.write(summary)
            raise CommandError(f"Ledger verification FAILED at {report.first_break}")
        self.stdout.write(f"Ledger OK: {summary}; trial balance {report.trial_balance}")
