"""``manage.py reconcile_runs``: one pass of the reconciler, as the scheduler runs every minute.

Sends the next step of every overdue attribution run, every model version's artifact
computation that stopped and every unlearning job that stopped, again (see
``attribution.services.reconcile``); ``--after SECONDS`` overrides the lease, e.g. ``--after 0``
right after a broker restart, when every active run lost its queued steps.
"""

from django.core.management.base import BaseCommand, CommandError

from attribution import services
from attribution.services.dispatch import ARTIFACTS_STEP, UNLEARNING_STEP


class Command(BaseCommand):
    help = (
        "Send the next step of every overdue attribution run, every stopped artifact "
        "computation and every stopped unlearning job again (bounded, idempotent)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--after",
            type=int,
            default=None,
            help="seconds without activity that make a run, an artifact computation or an "
            "unlearning job overdue (default: ATTRIBUTION_RECONCILE_AFTER_SECONDS)",
        )

    def handle(self, *args, after: int | None, **options) -> None:
        if after is not None and after < 0:
            raise CommandError("--after must be 0 or more seconds.")
        report = services.attribution_runs_reconcile(after_seconds=after)
        for run_id, step in report.resent:
            self.stdout.write(f"run {run_id}: sent {step} again")
        for run_id in report.failed:
            self.stdout.write(f"run {run_id}: failed after repeated re-sends")
        for model_version_id in report.artifacts_resent:
            self.stdout.write(f"model version {model_version_id}: sent {ARTIFACTS_STEP} again")
        for model_version_id in report.artifacts_failed:
            self.stdout.write(
                f"model version {model_version_id}: artifacts failed after repeated re-sends"
            )
        for unlearning_id in report.unlearnings_resent:
            self.stdout.write(f"unlearning {unlearning_id}: sent {UNLEARNING_STEP} again")
        for unlearning_id in report.unlearnings_failed:
            self.stdout.write(f"unlearning {unlearning_id}: failed after repeated re-sends")
        self.stdout.write(report.summary())
        if report.broker_unreachable:
            raise CommandError("The broker is unreachable; nothing more could be sent.")
