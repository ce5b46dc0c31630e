"""Exact decimals from untrusted market data: JSON numbers or strings, finite, in a sane range, never floats."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from rebalancer.numbers import NumberOutOfBounds, bounded_decimal

LARGEST = Decimal("1e15")
"""No price or volume of a real market reaches this; a larger one is a broken frame."""
FINEST_PLACES = 18
"""No exchange quotes more decimal places than this."""
_FINEST = Decimal(1).scaleb(-FINEST_PLACES)


class BadNumber(ValueError):
    """A value that is not a usable price or volume; the message says why."""


def market_decimal(value: object, what: str, *, positive: bool) -> Decimal:
    """``value`` (a JSON number or numeric string) as an exact Decimal; ``BadNumber`` naming ``what`` otherwise.

    Refused: booleans, NaN and infinities, negatives (and zero when ``positive``), values of ``LARGEST`` or more and
    values with more than ``FINEST_PLACES`` decimal places (however written: ``1e-9999999`` too), and values the
    bounded reader refuses (more than 100 digits, an exponent beyond ±60: ``0e-9999999``).
    """
    if type(value) is Decimal and value.is_finite() and _FINEST <= value < LARGEST:
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= -FINEST_PLACES:
            return value  # the common case, at once: at most 15 + 18 digits, within every bound below
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise BadNumber(f"{what} is not a number")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise BadNumber(f"{what} {str(value)[:40]!r} is not a number") from None
    if not number.is_finite():
        raise BadNumber(f"{what} is not a finite number")
    if number < 0 or (positive and number == 0):
        raise BadNumber(f"{what} {number} must be {'positive' if positive else 'zero or more'}")
    if number >= LARGEST:
        raise BadNumber(f"{what} {str(value)[:40]} is absurdly large")
    if number and number.adjusted() < -FINEST_PLACES:  # before normalizing: that turns 1e-9999999 into 0
        raise BadNumber(f"{what} {str(value)[:40]} has more than {FINEST_PLACES} decimal places")
    try:
        bounded_decimal(number)
    except NumberOutOfBounds as exc:
        raise BadNumber(f"{what}: {exc}") from None
    exponent = number.normalize().as_tuple().exponent
    if isinstance(exponent, int) and exponent < -FINEST_PLACES:
        raise BadNumber(f"{what} {str(value)[:40]} has more than {FINEST_PLACES} decimal places")
    return number
