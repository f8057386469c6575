from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"

    def ready(self) -> None:
        from attribution.signals import run_succeeded
        from ledger.receivers import settle_succeeded_run

        run_succeeded.connect(settle_succeeded_run, dispatch_uid="ledger.settle_succeeded_run")
