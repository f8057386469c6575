"""Accounts: created on first use, under the ledger lock, and never changed."""

from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection

from ledger.models import Account
from ledger.services.db import int_array


@dataclass(frozen=True)
class AccountRef:
    """What posting needs of an account (lighter than a model instance; accounts are
    immutable, so nothing goes stale)."""

    pk: int
    key: str
    currency: str

    @classmethod
    def of(cls, account: Account) -> "AccountRef":
        return cls(account.pk, account.key, account.currency)


def accounts_ensure(*, specs: Sequence[tuple[str, str, int | None]]) -> dict[str, AccountRef]:
    """Get or create the accounts ``(kind, currency, rights_holder_id)``; returns them by key.

    Call under ``ledger_lock`` (creation is then race-free). Accounts are immutable.
    """
    keys = {Account.make_key(kind, cur, holder): (kind, cur, holder) for kind, cur, holder in specs}
    found = _accounts_load(list(keys.values()))
    missing = [
        Account(key=key, kind=kind, currency=cur, rights_holder_id=holder)
        for key, (kind, cur, holder) in keys.items()
        if key not in found
    ]
    if missing:
        Account.objects.bulk_create(missing)
        found.update(_accounts_load([(m.kind, m.currency, m.rights_holder_id) for m in missing]))
    return found


def _accounts_load(specs: Sequence[tuple[str, str, int | None]]) -> dict[str, AccountRef]:
    other_keys = [Account.make_key(k, c, h) for k, c, h in specs if h is None]
    holders_by_currency: dict[str, list[int]] = {}
    for _, currency, holder in specs:
        if holder is not None:
            holders_by_currency.setdefault(currency, []).append(holder)
    rows = list(Account.objects.filter(key__in=other_keys).values_list("pk", "key", "currency"))
    for currency, holder_ids in holders_by_currency.items():
        if connection.vendor == "postgresql":  # one array parameter instead of N
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT id, key, currency FROM ledger_account WHERE kind = %s "
                    "AND currency = %s AND rights_holder_id = ANY(%s::bigint[])",
                    [Account.Kind.HOLDER_PAYABLE, currency, int_array(holder_ids)],
                )
                rows += cursor.fetchall()
        else:
            rows += Account.objects.filter(
                kind=Account.Kind.HOLDER_PAYABLE, currency=currency, rights_holder_id__in=holder_ids
            ).values_list("pk", "key", "currency")
    return {key: AccountRef(pk, key, currency) for pk, key, currency in rows}
