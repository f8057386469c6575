"""Writes to the ledger: settlements, reversals, periods and statements, payouts.

Invariants asserted here (and enforced again by the database, see ``ledger.models``):
every entry balances to zero per currency; entries are appended to the hash chain one at a
time (all ledger writes take one lock: a PostgreSQL transaction-level advisory lock; on
SQLite the IMMEDIATE transaction already serialises writers); one settlement per
(generation, attribution run); no money is created or lost by rounding (``money.allocate``).

Every service runs in ``transaction.atomic`` and writes an audit row in the same
transaction (``ledger_verification_run`` reads outside it and records the result after).

One module per aggregate: ``accounts``, ``journal``, ``settlements``, ``statements``
(periods and statements), ``payouts``, ``verification``; ``db`` holds the lock and the
bulk inserts they share.
"""

from ledger.selectors.payouts import payout_minimum_minor  # the payout policy, read here too
from ledger.services.accounts import AccountRef, accounts_ensure
from ledger.services.db import LEDGER_ADVISORY_LOCK_KEY, ledger_lock
from ledger.services.journal import Line, journal_entry_reverse
from ledger.services.payouts import (
    payout_batch_create,
    payout_batch_file_export,
    payout_batch_mark_paid,
    payout_line_fail,
)
from ledger.services.settlements import (
    PERCENT_QUANTUM,
    generation_settle,
    generation_settle_many,
)
from ledger.services.statements import (
    statement_generate,
    statement_period_close,
    statement_period_create,
)
from ledger.services.verification import ledger_verification_run

__all__ = [
    "LEDGER_ADVISORY_LOCK_KEY",
    "PERCENT_QUANTUM",
    "AccountRef",
    "Line",
    "accounts_ensure",
    "generation_settle",
    "generation_settle_many",
    "journal_entry_reverse",
    "ledger_lock",
    "ledger_verification_run",
    "payout_batch_create",
    "payout_batch_file_export",
    "payout_batch_mark_paid",
    "payout_line_fail",
    "payout_minimum_minor",
    "statement_generate",
    "statement_period_close",
    "statement_period_create",
]
