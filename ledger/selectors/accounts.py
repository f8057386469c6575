"""Accounts and their balances (debit-positive sums of their postings), and the
trial balance."""

from django.db.models import BigIntegerField, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from ledger.models import Account, Posting


def account_balance(*, account: Account) -> int:
    """Debit-positive sum of the account's postings (accrual units)."""
    return account.postings.aggregate(total=Sum("amount"))["total"] or 0


def trial_balance() -> dict[str, int]:
    """Sum of all postings per currency; zero for every currency when the ledger balances."""
    rows = Posting.objects.values("currency").annotate(total=Sum("amount"))
    return {row["currency"]: row["total"] for row in rows.order_by("currency")}


def account_balances(*, currency: str | None = None) -> dict[str, int]:
    """Debit-positive balance of every account, by key."""
    qs = Account.objects.all()
    if currency:
        qs = qs.filter(currency=currency)
    rows = qs.annotate(total=Sum("postings__amount")).values_list("key", "total")
    return {key: total or 0 for key, total in rows}


def accounts_with_balances() -> QuerySet[Account]:
    """Every account with ``balance``: the debit-positive sum of its postings."""
    return (
        Account.objects.select_related("rights_holder")
        .annotate(
            balance=Coalesce(Sum("postings__amount"), Value(0), output_field=BigIntegerField())
        )
        .order_by("key")
    )
