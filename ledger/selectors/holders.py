"""Whose ledger data a user may read, and what the platform owes each rights holder
(the negated, credit-normal sum of the holder's payable postings)."""

from datetime import datetime

from django.db.models import BigIntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from catalog.models import RightsHolder
from core.roles import FINANCE, user_has_role
from ledger.models import Account, JournalEntry, Posting


def rights_holders_for_user(*, user) -> QuerySet[RightsHolder]:
    return RightsHolder.objects.filter(users=user)


def holders_visible_to(*, user) -> QuerySet[RightsHolder]:
    """Whose ledger data ``user`` may read: finance every holder, anyone else the holders
    they act for (so another holder's statement is simply not found)."""
    if not user.is_authenticated:
        return RightsHolder.objects.none()
    if user_has_role(user, FINANCE):
        return RightsHolder.objects.all()
    return rights_holders_for_user(user=user)


def holder_payable_balances(*, currency: str) -> dict[int, int]:
    """What the platform owes each rights holder in ``currency`` (accrual units)."""
    rows = (
        Posting.objects.filter(
            account__kind=Account.Kind.HOLDER_PAYABLE, account__currency=currency
        )
        .values("account__rights_holder_id")
        .annotate(total=Sum("amount"))
        .values_list("account__rights_holder_id", "total")
    )
    return {holder_id: -total for holder_id, total in rows}


def holder_balances(*, currency: str, holders: QuerySet[RightsHolder]) -> QuerySet[Account]:
    """The payable accounts in ``currency`` of ``holders``, by rights holder id, each with
    ``balance``: what the platform owes the holder (accrual units). A query, so that a
    list of every holder's balance can be paged in the database."""
    return (
        Account.objects.filter(
            kind=Account.Kind.HOLDER_PAYABLE, currency=currency, rights_holder__in=holders
        )
        .annotate(
            balance=Coalesce(-Sum("postings__amount"), Value(0), output_field=BigIntegerField())
        )
        .order_by("rights_holder_id")
    )


def holder_balance(*, rights_holder: RightsHolder, currency: str) -> int:
    """What the platform owes ``rights_holder`` in ``currency`` (accrual units)."""
    key = Account.make_key(Account.Kind.HOLDER_PAYABLE, currency, rights_holder.pk)
    total = Posting.objects.filter(account__key=key).aggregate(total=Sum("amount"))["total"]
    return -(total or 0)


def holder_payable_due(*, currency: str, through: datetime) -> dict[int, int]:
    """What the platform owed each holder for earnings booked before ``through``, as of
    now (accrual units): today's balance less the earnings booked since (settlements after
    ``through`` and reversals of those). Payouts and failed payouts after ``through``
    count, because they settle or restore money earned earlier; a later reversal of an
    earlier settlement counts too. Never more than today's balance."""
    later = (
        Posting.objects.filter(
            account__kind=Account.Kind.HOLDER_PAYABLE,
            account__currency=currency,
            entry__effective_at__gte=through,
        )
        .filter(
            Q(entry__kind=JournalEntry.Kind.SETTLEMENT)
            | Q(
                entry__kind=JournalEntry.Kind.REVERSAL,
                entry__reverses__effective_at__gte=through,
            )
        )
        .values("account__rights_holder_id")
        .annotate(total=Sum("amount"))
        .values_list("account__rights_holder_id", "total")
    )
    earned_later = {holder_id: -total for holder_id, total in later}
    return {
        holder_id: balance - earned_later.get(holder_id, 0)
        for holder_id, balance in holder_payable_balances(currency=currency).items()
    }
