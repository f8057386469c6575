from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.money import (
    ACCRUAL_SCALE,
    accrual_to_decimal,
    accrual_to_minor_floor,
    allocate,
    minor_to_decimal,
    money_display,
)

weights_st = st.lists(st.integers(min_value=0, max_value=10**15), min_size=1, max_size=60).filter(
    lambda ws: sum(ws) > 0
)


@given(total=st.integers(min_value=-(10**18), max_value=10**18), weights=weights_st)
def test_allocate_sums_exactly_and_each_part_is_within_one_unit(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == total
    assert len(parts) == len(weights)
    weight_sum = sum(weights)
    for part, w in zip(parts, weights, strict=True):
        exact = Decimal(total) * w / weight_sum
        assert abs(Decimal(part) - exact) < 1
        if w == 0:
            assert part == 0


@given(total=st.integers(min_value=0, max_value=10**12), weights=weights_st)
def test_allocate_is_deterministic_and_scales(total, weights):
    assert allocate(total, weights) == allocate(total, weights)
    # Scaling every weight by the same factor changes nothing.
    assert allocate(total, [w * 7 for w in weights]) == allocate(total, weights)


def test_allocate_largest_remainder_and_tie_break_by_index():
    assert allocate(10, [1, 1, 1]) == [4, 3, 3]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(100, [1, 2, 3]) == [17, 33, 50]  # remainders .67 .33 0 -> first gets it
    assert allocate(-10, [1, 1, 1]) == [-4, -3, -3]
    assert allocate(0, [5, 0]) == [0, 0]


@pytest.mark.parametrize("weights", [[], [0, 0], [1, -1]])
def test_allocate_rejects_bad_weights(weights):
    with pytest.raises(ValueError):
        allocate(10, weights)


def test_allocate_refuses_floats():
    with pytest.raises(AssertionError):
        allocate(10.0, [1, 2])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        allocate(10, [1.5, 2])  # type: ignore[list-item]


def test_accrual_conversions():
    assert accrual_to_minor_floor(12 * ACCRUAL_SCALE + 345) == (12, 345)
    assert accrual_to_decimal(12_345_678, "USD") == Decimal("0.12345678")
    assert minor_to_decimal(1234, "USD") == Decimal("12.34")
    assert minor_to_decimal(1234, "JPY") == Decimal("1234")
    assert minor_to_decimal(1234, "KWD") == Decimal("1.234")


@given(minor=st.integers(min_value=-(10**15), max_value=10**15))
def test_decimal_to_minor_inverts_minor_to_decimal(minor):
    from ledger.money import decimal_to_minor

    for currency in ("USD", "JPY", "KWD"):
        assert decimal_to_minor(minor_to_decimal(minor, currency), currency) == minor


def test_decimal_to_minor_refuses_sub_minor_amounts():
    from ledger.money import decimal_to_minor

    assert decimal_to_minor(Decimal("12.3"), "USD") == 1230
    with pytest.raises(ValueError, match="finer"):
        decimal_to_minor(Decimal("12.345"), "USD")
    with pytest.raises(ValueError, match="finer"):
        decimal_to_minor(Decimal("1.5"), "JPY")


def test_accrual_text_is_plain_decimal_notation():
    from ledger.money import accrual_to_text

    assert str(accrual_to_decimal(5, "USD")) == "5E-8"  # what str() alone would show
    assert accrual_to_text(5, "USD") == "0.00000005"
    assert accrual_to_text(0, "USD") == "0.00000000"
    assert accrual_to_text(-1_000_500_000, "USD") == "-10.00500000"
    assert accrual_to_text(7, "JPY") == "0.000007"


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        ("10.00500000", "USD", "$10.01"),  # half up
        ("10.00499999", "USD", "$10.00"),
        ("1234567.5", "EUR", "€1,234,567.50"),
        ("-5.00000000", "USD", "-$5.00"),
        ("0.00000001", "USD", "< $0.01"),  # never a zero it is not
        ("-0.00000001", "USD", "> -$0.01"),
        ("0", "GBP", "£0.00"),
        ("1234.4", "JPY", "¥1,234"),
        ("3.1", "CHF", "CHF\N{NO-BREAK SPACE}3.10"),
        ("1.2345", "KWD", "KWD\N{NO-BREAK SPACE}1.235"),
    ],
)
def test_money_display_rounds_to_the_currencys_digits(amount, currency, shown):
    assert money_display(Decimal(amount), currency) == shown
