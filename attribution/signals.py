"""Signals attribution sends to the layers above it (which attribution never imports).

``run_succeeded(sender=AttributionRun, run=run)`` is sent inside the transaction that stores a
run's scores. Receivers run in that transaction, so what they write (the ledger's settlement)
commits together with the scores or not at all; a receiver that raises rolls both back.
"""

from django.dispatch import Signal

run_succeeded = Signal()
