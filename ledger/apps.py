from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"

    def ready(self) -> None:
        from attribution.selectors import holder_generations_register
        from attribution.signals import run_succeeded
        from catalog.earnings import catalog_earnings_register
        from ledger.receivers import settle_succeeded_run
        from ledger.selectors.generations import generations_paid_to
        from ledger.selectors.recordings import catalog_earnings_read

        run_succeeded.connect(settle_succeeded_run, dispatch_uid="ledger.settle_succeeded_run")
        # A rights holder's users see the generations that paid the holder.
        holder_generations_register(generations_paid_to)
        # My catalog shows what each recording earned, in the ledger's currency.
        catalog_earnings_register(catalog_earnings_read)
