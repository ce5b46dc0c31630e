"""rebalancer.numbers.bounded_decimal: the bounds at their edges, and its short cuts agreeing with the full check."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.numbers import MAX_EXPONENT, MAX_NUMBER_CHARS, NumberOutOfBounds, bounded_decimal


def within(number: Decimal) -> bool:
    """The bounds, said the long way: digits, exponent and magnitude of a finite number."""
    if not number.is_finite():
        return True
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    return len(digits) <= MAX_NUMBER_CHARS and abs(exponent) <= MAX_EXPONENT and abs(number.adjusted()) <= MAX_EXPONENT


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("1" + "0" * 59, True),  # 60 characters: the short cut
        ("1" + "0" * 60, True),  # 1e60: the full check
        ("1" + "0" * 61, False),
        ("-" + "9" * 59, True),
        ("0." + "0" * 57 + "1", True),  # 60 characters, 1e-58
        ("0." + "0" * 59 + "1", True),  # 1e-60
        ("0." + "0" * 60 + "1", False),
        ("0." + "0" * 61, False),  # zero, but written to the 61st place
        ("1e60", True),
        ("1E61", False),
        ("1e-60", True),
        ("1e-61", False),
        (" 42.5 ", True),
        ("1" * (MAX_NUMBER_CHARS + 1), False),
        ("NaN", True),  # non-finite numbers pass through, for the caller to refuse in its own words
        ("Infinity", True),
        (10**60 - 1, True),
        (10**60, True),
        (10**61, False),
        (-(10**61), False),
        (True, True),
        (Decimal("1E+60"), True),
        (Decimal("1E+61"), False),
        (Decimal("1E-61"), False),
    ],
)
def test_bounds_at_their_edges(value: str | int | Decimal, ok: bool) -> None:
    if ok:
        number = bounded_decimal(value)
        assert number == Decimal(value.strip() if isinstance(value, str) else value) or not number.is_finite()
        assert type(number) is Decimal
    else:
        with pytest.raises(NumberOutOfBounds):
            bounded_decimal(value)


numbers = st.builds(
    lambda sign, digits, point, exponent: f"{sign}{digits[:point]}.{digits[point:]}{exponent}".replace(".e", "e"),
    st.sampled_from(["", "-", "+"]),
    st.text("0123456789", min_size=1, max_size=80),
    st.integers(0, 80),
    st.sampled_from(["", "e5", "E-3", "e61", "e-70", "e0"]),
)


@given(numbers)
def test_the_short_cuts_agree_with_the_full_check(text: str) -> None:
    reference = Decimal(text)
    if len(text) > MAX_NUMBER_CHARS or not within(reference):
        with pytest.raises(NumberOutOfBounds):
            bounded_decimal(text)
    else:
        assert bounded_decimal(text) == reference
        assert bounded_decimal(reference) == reference
    if reference == reference.to_integral_value() and abs(reference) < 10**80:
        integer = int(reference)
        if within(Decimal(integer)):
            assert bounded_decimal(integer) == integer
        else:
            with pytest.raises(NumberOutOfBounds):
                bounded_decimal(integer)
