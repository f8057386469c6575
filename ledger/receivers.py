"""What the ledger does when attribution finishes a run (attribution sends, never imports us).

A succeeded run is settled in the transaction that stored its scores: the settlement's journal
entry and the run's scores commit together. `generation_settle` is idempotent, so a repeated
signal books nothing twice.
"""

from attribution.models import AttributionRun
from ledger.services import generation_settle


def settle_succeeded_run(sender, *, run: AttributionRun, **kwargs) -> None:
    generation_settle(attribution_run=run)  # marks the generation settled too
