"""Template filters for ledger amounts: exact decimals from integers, never floats.

``{{ amount|money:currency }}`` accrual units -> ``$10.01``, exact value in the title
(``10.00500000 USD``); ``{{ amount|minor_money:currency }}`` the same from minor units;
``{{ decimal|decimal_money:currency }}`` the same from an exact Decimal in major units;
``{{ amount|accrual:currency }}`` accrual units -> exact major units (``12.34500000``);
``{{ amount|minor:currency }}`` minor units -> major units (``12.34``);
``{{ fraction|percent }}`` a Decimal fraction -> ``12.34 %``;
``{{ score|fixed:digits }}`` a float in fixed notation (never ``9.2e-05``);
``{{ amount|negate }}`` flips the sign (holder payables are credits: owed = -balance);
``{{ timestamp|utc_minute }}`` shortens a statement's canonical UTC timestamp.
"""

from decimal import Decimal

from django import template
from django.utils.html import format_html

from ledger.money import (
    accrual_to_decimal,
    accrual_to_text,
    minor_to_decimal,
    money_display,
)

register = template.Library()


def _money_html(exact: Decimal, currency: str):
    text = format(exact, "f")
    return format_html(
        '<span class="money" title="exactly {} {}" data-exact="{}" data-currency="{}">{}</span>',
        text,
        currency,
        text,
        currency,
        money_display(exact, currency),
    )


@register.filter
def money(amount: int | None, currency: str):
    return _money_html(accrual_to_decimal(int(amount or 0), currency), currency)


@register.filter
def minor_money(amount: int | None, currency: str):
    return _money_html(minor_to_decimal(int(amount or 0), currency), currency)


@register.filter
def decimal_money(amount: Decimal | None, currency: str):
    """An exact Decimal in major units (a selector's display value), as ``money``."""
    return _money_html(Decimal(amount or 0), currency)


@register.filter
def accrual(amount: int | None, currency: str) -> str:
    return accrual_to_text(amount or 0, currency)


@register.filter
def minor(amount: int | None, currency: str) -> str:
    return str(minor_to_decimal(amount or 0, currency))


@register.filter
def percent(fraction: Decimal | str | None, places: int = 2) -> str:
    """A share given as a fraction (``Decimal("0.123456")``) as ``12.35 %``."""
    value = Decimal(str(fraction or 0)) * 100
    return f"{value.quantize(Decimal(1).scaleb(-int(places))):f}\N{NO-BREAK SPACE}%"


@register.filter
def fixed(value: float | None, digits: int = 6) -> str:
    """A score in fixed notation with ``digits`` decimals: the same on every row of a
    table, so scores line up and compare at a glance."""
    if value is None:
        return "—"
    return f"{float(value):.{int(digits)}f}"


@register.filter
def negate(amount: int | None) -> int:
    return -(amount or 0)


@register.filter
def utc_minute(timestamp: str) -> str:
    """A canonical ledger timestamp (``2026-11-22T06:20:49.123456Z``) to the minute."""
    return timestamp[:16].replace("T", " ")
