"""Reads of the ledger: balances, a holder's earnings and next payout, statements and
statement periods, the journal and accounts for finance, payout batches, chain
verification.

A balance is always the sum of postings (there is no stored balance to drift). Holder
balances are reported as what the platform owes (the negated, credit-normal sum).

One module per aggregate: ``accounts``, ``holders`` (who may read whose data, what each
holder is owed), ``earnings`` (a holder's dashboard), ``statements`` (and periods),
``journal``, ``payouts``, ``verification``, ``generations`` (what each generation paid,
for the generation pages), ``opinions`` (what each attribution method would have paid a
generation's holders), ``explanations`` (why a settlement paid what it paid),
``recordings`` (what each recording earned), ``statement_summaries`` (a statement's
page). Selectors never import services.
"""

from ledger.selectors.accounts import (
    account_balance,
    account_balances,
    accounts_with_balances,
    trial_balance,
)
from ledger.selectors.earnings import (
    EARNING_KINDS,
    CurrencySummary,
    EarningsWindow,
    HolderDashboard,
    PayoutEstimate,
    earnings_window,
    holder_currencies,
    holder_dashboard,
    holder_earnings,
    holder_earnings_by_month,
    month_starts,
    payout_estimate,
)
from ledger.selectors.generations import (
    GenerationDetail,
    GenerationRow,
    TrackRow,
    generation_detail,
    generation_rows,
    generations_paid_to,
    generations_paying_user,
    live_settlements,
    scored_run,
)
from ledger.selectors.holders import (
    holder_balance,
    holder_balances,
    holder_payable_balances,
    holder_payable_due,
    holders_visible_to,
    rights_holders_for_user,
)
from ledger.selectors.journal import EntryDetail, journal_entries, journal_entry_detail
from ledger.selectors.payouts import (
    PayoutBatchDetail,
    payout_batch_detail,
    payout_batches,
    payout_reserved_minor,
)
from ledger.selectors.statements import (
    PERIOD_CLOSED,
    PERIOD_CURRENT,
    PERIOD_ENDED,
    PERIOD_FUTURE,
    StatementRow,
    holder_statement_rows,
    statement_compute,
    statement_period_state,
    statement_period_suggestion,
    statement_periods,
    statement_rows_for,
)
from ledger.selectors.verification import (
    VerificationReport,
    ledger_verifications,
    ledger_verify,
)

__all__ = [
    "EARNING_KINDS",
    "PERIOD_CLOSED",
    "PERIOD_CURRENT",
    "PERIOD_ENDED",
    "PERIOD_FUTURE",
    "CurrencySummary",
    "EarningsWindow",
    "EntryDetail",
    "GenerationDetail",
    "GenerationRow",
    "HolderDashboard",
    "PayoutBatchDetail",
    "PayoutEstimate",
    "StatementRow",
    "TrackRow",
    "VerificationReport",
    "account_balance",
    "account_balances",
    "accounts_with_balances",
    "earnings_window",
    "generation_detail",
    "generation_rows",
    "generations_paid_to",
    "generations_paying_user",
    "holder_balance",
    "holder_balances",
    "holder_currencies",
    "holder_dashboard",
    "holder_earnings",
    "holder_earnings_by_month",
    "holder_payable_balances",
    "holder_payable_due",
    "holder_statement_rows",
    "holders_visible_to",
    "journal_entries",
    "journal_entry_detail",
    "ledger_verifications",
    "ledger_verify",
    "live_settlements",
    "month_starts",
    "payout_batch_detail",
    "payout_batches",
    "payout_estimate",
    "payout_reserved_minor",
    "rights_holders_for_user",
    "scored_run",
    "statement_compute",
    "statement_period_state",
    "statement_period_suggestion",
    "statement_periods",
    "statement_rows_for",
    "trial_balance",
]
