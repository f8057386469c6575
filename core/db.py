"""Database plumbing for the hash chains: one lock serialises every append.

The journal (``ledger``) and the audit trail (``core``) are both chains whose next row is
computed from the current tip, so each append must see the tip no other transaction is
about to replace. One transaction-scoped advisory lock covers both chains: a settlement
appends to the journal and to the audit trail in one transaction, and a run that records
its success in the audit trail then settles, so two locks would be taken in either order
and could deadlock.
"""

from django.db import connection

# Any constant works; it only has to be the same for every writer of a chain.
CHAIN_ADVISORY_LOCK_KEY = 0x4C454447  # "LEDG"


def chain_lock() -> None:
    """Serialise appends to the hash chains until the end of the current transaction.

    SQLite needs nothing: its transactions take the database's write lock up front
    (``transaction_mode = IMMEDIATE`` in the settings).
    """
    assert connection.in_atomic_block, "take the chain lock inside transaction.atomic"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_ADVISORY_LOCK_KEY])
