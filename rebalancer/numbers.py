"""The one bounded reader of numbers that come from outside (exchange answers, reference sources, requests).

``Decimal`` reads ``1e99999999999`` or a million digits without complaint, and the first arithmetic or
formatting on it then takes minutes or every byte of memory (a MemoryError traceback; a million-digit text in
the state store). Every outside number is read here first: at most ``MAX_NUMBER_CHARS`` characters, and its
exponent and magnitude within ``MAX_EXPONENT`` either way, far beyond any price, volume, time or id.
"""

from __future__ import annotations

from decimal import Decimal

MAX_NUMBER_CHARS = 100
"""The longest number text read: ids, millisecond times and 30-place decimals fit many times over."""

MAX_EXPONENT = 60
"""The largest power of ten, either way, of a number read (and of its last digit): 1e60 and 1e-60 are read."""


_SMALL = 10**MAX_EXPONENT  # an int below this in magnitude has at most 60 digits: within bounds


class NumberOutOfBounds(ValueError):
    """An outside number too long or too large or small to be a price, volume, time or id."""


def bounded_decimal(text: str | int | Decimal) -> Decimal:
    """``text`` as a Decimal, refused (``NumberOutOfBounds``) when it is too long or its exponent too large.

    Non-numbers raise ``InvalidOperation`` as ``Decimal`` does; infinities and NaN pass through for the caller
    to refuse in its own words.
    """
    if isinstance(text, str):
        raw = text.strip()
        if len(raw) > MAX_NUMBER_CHARS:
            raise NumberOutOfBounds(f"a number of {len(raw)} characters (at most {MAX_NUMBER_CHARS})")
        number = Decimal(raw)
        if len(raw) <= MAX_EXPONENT and "e" not in raw and "E" not in raw:
            return number  # at most 60 digits, none past the 60th place: within bounds (the usual case, kept cheap)
    elif type(text) is Decimal:
        number = text  # immutable: no copy needed (a subclass is still converted below)
    else:
        if type(text) is int and -_SMALL < text < _SMALL:
            return Decimal(text)
        if isinstance(text, int) and not isinstance(text, bool) and abs(text).bit_length() > 4 * MAX_NUMBER_CHARS:
            raise NumberOutOfBounds(f"a number of more than {MAX_NUMBER_CHARS} digits")
        number = Decimal(text)
    if number.is_finite():
        _, digits, exponent = number.as_tuple()
        assert isinstance(exponent, int)
        if len(digits) > MAX_NUMBER_CHARS:
            raise NumberOutOfBounds(f"a number of more than {MAX_NUMBER_CHARS} digits")
        if abs(exponent) > MAX_EXPONENT or abs(number.adjusted()) > MAX_EXPONENT:
            raise NumberOutOfBounds(f"a number beyond 1e±{MAX_EXPONENT}: {_shown(text)}")
    return number


def _shown(value: object) -> str:
    shown = str(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
