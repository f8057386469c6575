"""``manage.py reconcile_imports``: one pass of the imports' reconciler, as the scheduler runs
every minute.

Sends the check or import of every overdue staged import again (see
``catalog.services.reconcile_imports``); ``--after SECONDS`` overrides the lease, e.g. a few
minutes right after a broker restart, when every import in progress lost its queued step.
"""

from django.core.management.base import BaseCommand, CommandError

from catalog import services


class Command(BaseCommand):
    help = "Send the check or import of every overdue staged import again (bounded, idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--after",
            type=int,
            default=None,
            help="seconds without a sign of life that make an import overdue "
            "(default: CATALOG_IMPORT_RECONCILE_AFTER_SECONDS)",
        )

    def handle(self, *args, after: int | None, **options) -> None:
        if after is not None and after < 0:
            raise CommandError("--after must be 0 or more seconds.")
        report = services.catalog_imports_reconcile(after_seconds=after)
        for batch_id, step in report.resent:
            self.stdout.write(f"import batch {batch_id}: sent {step} again")
        for batch_id in report.failed:
            self.stdout.write(f"import batch {batch_id}: failed after repeated re-sends")
        self.stdout.write(report.summary())
        if report.broker_unreachable:
            raise CommandError("The broker is unreachable; nothing more could be sent.")
