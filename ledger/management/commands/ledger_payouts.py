"""``manage.py ledger_payouts``: finance's payout batches from the command line.

ledger_payouts create --currency USD [--threshold-minor 1000] [--period PERIOD_ID]
ledger_payouts export BATCH_ID --format csv|xlsx --output FILE
ledger_payouts mark-paid BATCH_ID
ledger_payouts fail-line LINE_ID --reason "IBAN closed"
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from core.exceptions import ApplicationError
from ledger import services
from ledger.exports import payout_batch_export
from ledger.models import PayoutBatch, PayoutLine, StatementPeriod


class Command(BaseCommand):
    help = "Create, export, mark paid and fail lines of payout batches."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create")
        create.add_argument("--currency", required=True)
        create.add_argument("--threshold-minor", type=int, default=None)
        create.add_argument(
            "--period", type=int, default=None, help="closed period: pay earnings up to its end"
        )
        export = sub.add_parser("export")
        export.add_argument("batch_id", type=int)
        export.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        export.add_argument("--output", required=True)
        paid = sub.add_parser("mark-paid")
        paid.add_argument("batch_id", type=int)
        fail = sub.add_parser("fail-line")
        fail.add_argument("line_id", type=int)
        fail.add_argument("--reason", required=True)

    def handle(self, *args, action: str, **options):
        try:
            if action == "create":
                batch = services.payout_batch_create(
                    currency=options["currency"].upper(),
                    threshold_minor=options["threshold_minor"],
                    period=self._period(options["period"]),
                )
                self.stdout.write(f"batch {batch.pk}: {batch.lines.count()} lines")
            elif action == "export":
                batch = self._batch(options["batch_id"])
                data = payout_batch_export(batch=batch, fmt=options["format"])
                Path(options["output"]).write_bytes(data)
                self.stdout.write(f"wrote {options['output']}")
            elif action == "mark-paid":
                entry = services.payout_batch_mark_paid(batch=self._batch(options["batch_id"]))
                self.stdout.write(f"batch {options['batch_id']} paid: entry #{entry.seq}")
            else:
                try:
                    line = PayoutLine.objects.get(pk=options["line_id"])
                except PayoutLine.DoesNotExist as exc:
                    raise CommandError(f"no payout line {options['line_id']}") from exc
                entry = services.payout_line_fail(line=line, reason=options["reason"])
                booked = f"reversal entry #{entry.seq}" if entry else "nothing booked"
                self.stdout.write(f"line {line.pk} failed: {booked}")
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

    @staticmethod
    def _period(period_id: int | None) -> StatementPeriod | None:
        if period_id is None:
            return None
        try:
            return StatementPeriod.objects.get(pk=period_id)
        except StatementPeriod.DoesNotExist as exc:
            raise CommandError(f"no statement period {period_id}") from exc

    @staticmethod
    def _batch(batch_id: int) -> PayoutBatch:
        try:
            return PayoutBatch.objects.get(pk=batch_id)
        except PayoutBatch.DoesNotExist as exc:
            raise CommandError(f"no payout batch {batch_id}") from exc
