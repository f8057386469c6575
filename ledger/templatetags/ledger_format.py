"""Template filters for ledger amounts: exact decimals from integers, never floats.

``{{ amount|accrual:currency }}`` accrual units -> major units (``12.34500000``);
``{{ amount|minor:currency }}`` minor units -> major units (``12.34``);
``{{ amount|negate }}`` flips the sign (holder payables are credits: owed = -balance);
``{{ timestamp|utc_minute }}`` shortens a statement's canonical UTC timestamp.
"""

from django import template

from ledger.money import accrual_to_text, minor_to_decimal

register = template.Library()


@register.filter
def accrual(amount: int | None, currency: str) -> str:
    return accrual_to_text(amount or 0, currency)


@register.filter
def minor(amount: int | None, currency: str) -> str:
    return str(minor_to_decimal(amount or 0, currency))


@register.filter
def negate(amount: int | None) -> int:
    return -(amount or 0)


@register.filter
def utc_minute(timestamp: str) -> str:
    """A canonical ledger timestamp (``2026-11-22T06:20:49.123456Z``) to the minute."""
    return timestamp[:16].replace("T", " ")
