"""Money as integers: currency minor units, the finer accrual scale, exact allocation.

Units
-----
*Minor units* are a currency's smallest unit of payment (cents for USD, yen for JPY); a
``Generation``'s revenue is in minor units. A single generation's royalty for one track is
often a small fraction of a cent, so **the ledger accrues in accrual units**:

    1 minor unit = ``ACCRUAL_SCALE`` (1,000,000) accrual units

so every ``Posting.amount`` is an integer number of millionths of a minor unit (for USD,
10^-8 dollars). Payouts are made in whole minor units (``accrual_to_minor_floor``); the
sub-minor remainder stays in the rights holder's payable account and carries forward, so
nothing is ever rounded away.

Invariant
---------
``allocate(total, weights)`` returns integers that sum to ``total`` exactly, each part
within one unit of its exact proportional share (largest-remainder method, ties broken by
the lower index). It is the only place in the ledger where a total is divided.

No floats: every function here accepts and returns ``int`` (or ``Decimal`` for display).
"""

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

ACCRUAL_SCALE = 1_000_000
"""Accrual units per currency minor unit (the ledger's posting scale)."""

# ISO 4217 minor-unit exponents for the currencies we expect; anything else defaults to 2.
_MINOR_DIGITS = {
    "BHD": 3,
    "CLP": 0,
    "ISK": 0,
    "JOD": 3,
    "JPY": 0,
    "KRW": 0,
    "KWD": 3,
    "OMR": 3,
    "TND": 3,
    "VND": 0,
}


def currency_minor_digits(currency: str) -> int:
    """Number of decimal digits of the currency's minor unit (USD 2, JPY 0, KWD 3)."""
    assert len(currency) == 3 and currency.isalpha() and currency.isupper(), currency
    return _MINOR_DIGITS.get(currency, 2)


def minor_to_accrual(amount_minor: int) -> int:
    """Minor units -> accrual units (exact)."""
    assert isinstance(amount_minor, int), type(amount_minor)
    return amount_minor * ACCRUAL_SCALE


def accrual_to_minor_floor(amount: int) -> tuple[int, int]:
    """Split a non-negative accrual amount into (whole minor units, accrual remainder)."""
    assert isinstance(amount, int) and amount >= 0, amount
    return divmod(amount, ACCRUAL_SCALE)


def minor_to_decimal(amount_minor: int, currency: str) -> Decimal:
    """Minor units as a Decimal in major units, for display and exports (e.g. 1234 -> 12.34)."""
    assert isinstance(amount_minor, int), type(amount_minor)
    digits = currency_minor_digits(currency)
    return Decimal(amount_minor).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def decimal_to_minor(amount: Decimal, currency: str) -> int:
    """Major units as an exact Decimal -> minor units (``12.34`` USD -> 1234). Refuses an
    amount finer than the currency's minor unit (``12.345`` USD) instead of rounding it."""
    assert isinstance(amount, Decimal), type(amount)
    scaled = amount.scaleb(currency_minor_digits(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is finer than the currency's minor unit")
    return int(scaled)


def accrual_to_decimal(amount: int, currency: str) -> Decimal:
    """Accrual units as an exact Decimal in major units (12,345,678 micro-cents -> 0.12345678)."""
    assert isinstance(amount, int), type(amount)
    digits = currency_minor_digits(currency) + 6  # ACCRUAL_SCALE = 10**6
    return Decimal(amount).scaleb(-digits).quantize(Decimal(1).scaleb(-digits))


def accrual_to_text(amount: int, currency: str) -> str:
    """Accrual units as plain decimal text in major units, for pages, files and JSON:
    ``0.00000005``, never ``str(Decimal)``'s ``5E-8`` (nor ``0E-8`` for zero)."""
    return format(accrual_to_decimal(amount, currency), "f")


CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
"""Symbols shown before an amount; any other currency is written with its ISO code."""


def money_display(amount: Decimal, currency: str) -> str:
    """An exact amount in major units as people read it: the currency's symbol (or code)
    and the currency's minor digits, rounded half up (``$10.01``, ``-€0.25``,
    ``CHF 3.10``). A non-zero amount too small to show is written ``< $0.01``, never as
    a zero it is not. The exact value belongs beside it (the pages put it in a title)."""
    assert isinstance(amount, Decimal), type(amount)
    digits = currency_minor_digits(currency)
    quantum = Decimal(1).scaleb(-digits)
    rounded = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    symbol = CURRENCY_SYMBOLS.get(currency)
    prefix = symbol if symbol else f"{currency}\N{NO-BREAK SPACE}"
    if rounded == 0 and amount != 0:
        return f"{'> -' if amount < 0 else '< '}{prefix}{quantum}"
    sign = "-" if rounded < 0 else ""
    return f"{sign}{prefix}{abs(rounded):,.{digits}f}"


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` into ``len(weights)`` integer parts proportional to ``weights``.

    Largest remainder (Hamilton) method: every part first gets ``floor(total * w / W)``;
    the units left over go one each to the parts with the largest remainders, ties broken
    by the lower index. The result sums to ``total`` exactly and is deterministic.
    A zero weight always gets zero. A negative total is split as ``-allocate(-total)``.
    """
    assert isinstance(total, int), type(total)
    if not weights:
        raise ValueError("allocate needs at least one weight")
    if any(not isinstance(w, int) or w < 0 for w in weights):
        raise ValueError("weights must be non-negative integers")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise ValueError("weights must not all be zero")
    if total < 0:
        return [-part for part in allocate(-total, weights)]

    parts: list[int] = []
    remainders: list[int] = []
    for w in weights:
        quotient, remainder = divmod(total * w, weight_sum)
        parts.append(quotient)
        remainders.append(remainder)
    leftover = total - sum(parts)
    assert 0 <= leftover < len(weights)
    if leftover:
        order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
        for i in order[:leftover]:
            parts[i] += 1
    assert sum(parts) == total
    return parts
