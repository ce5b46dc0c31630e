"""The depth parser's fast path agrees with its careful one: whatever levels it is given, the fast path either hands
them to the careful path (None) or returns exactly what the careful path returns; it never accepts a level the
careful path refuses. And the frame reader's bounds are those of ``rebalancer.numbers`` (the one reader of outside
numbers), at their edges: 100 characters, and at most 60 places either side of the point, for the magnitude and for
the last digit (``loads`` checks the usual number in one inlined step)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rebalancer.numbers import MAX_EXPONENT, MAX_NUMBER_CHARS, NumberOutOfBounds, bounded_decimal
from rebalancer.stream.frames import (
    FrameError,
    _careful_levels,
    _careful_number,
    _ms,
    _plain_levels,
    loads,
    number,
    parse_message,
)
from tests.depth import examples

EDGES = [
    Decimal(0),
    Decimal("-0"),
    Decimal("0E-50"),
    Decimal("0E-60"),
    Decimal("0E-61"),
    Decimal("0E+61"),
    Decimal("-1"),
    Decimal("1e-60"),
    Decimal("9.99e-61"),
    Decimal("1e-61"),
    Decimal("1.5e-60"),
    Decimal("9.999e60"),
    Decimal("1e61"),
    Decimal("1" * 100),
    Decimal("1." + "0" * 59 + "1"),
    Decimal("1" * 101 + "e-60"),
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal("30003.00"),
    Decimal("0.0447"),
]
STRINGS = [
    "30003.00",
    "0.0447",
    " 1.5",
    "1.5 ",
    "1_000",
    "1e5",
    "1E-61",
    "1.5e-60",
    "+2",
    "-2",
    ".5",
    "5.",
    "0",
    "",
    "NaN",
    "Infinity",
    "0x10",
    "1" * 61,
    "1" * 62,
    "0." + "0" * 58 + "1",
    "0." + "0" * 59 + "1",
    "0." + "0" * 60 + "1",
    "1e" + "0" * 97 + "1",
    "1e" + "0" * 98 + "1",
    "١٢",
]

decimals = st.one_of(
    st.sampled_from(EDGES),
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=None),
)
texts = st.one_of(
    st.sampled_from(STRINGS),
    st.text(alphabet="0123456789.+-eE _", max_size=70),
    decimals.filter(lambda d: d.is_finite()).map(lambda d: format(d, "f")),
)
numbers: st.SearchStrategy[Any] = st.one_of(
    decimals, texts, st.integers(-5, 10**70), st.booleans(), st.none(), st.floats(allow_nan=False)
)
pairs = st.lists(numbers, min_size=2, max_size=2)
levels = st.one_of(
    st.lists(pairs, max_size=25),
    st.lists(st.lists(decimals, min_size=2, max_size=2), max_size=25),
    st.lists(st.lists(texts, min_size=2, max_size=2), max_size=25),
    st.lists(st.one_of(pairs, st.lists(numbers, max_size=3), st.tuples(decimals, decimals), st.text()), max_size=6),
    st.sampled_from([None, "x", {"a": 1}, ()]),
)


def careful(value: object) -> tuple[tuple[Decimal, Decimal], ...] | str:
    try:
        return _careful_levels(value, "asks")
    except FrameError as exc:
        return f"refused: {exc}"


@settings(max_examples=examples(1500))
@given(levels)
@example([[Decimal("1e-60"), Decimal("9.999e60")]])
@example([[Decimal("9.99e-61"), Decimal(1)]])
@example([[Decimal(1), Decimal("1e61")]])
@example([[Decimal("1.5e-60"), Decimal(1)]])  # in magnitude, but its last digit is at the 61st place
@example([[Decimal("1" * 101 + "e-60"), Decimal(1)]])  # 101 digits
@example([[Decimal("1e60"), Decimal("1e-60")]])  # each in bounds; their sum has 121 digits: the careful path
@example([[Decimal(1), Decimal(0)]])
@example([[Decimal("NaN"), Decimal(1)]])
@example([["1" * 61, "1"], ["0." + "0" * 58 + "1", "2"]])
@example([["1_000", "1"]])
@example([[" 1", "1"]])
def test_the_fast_path_returns_what_the_careful_one_does(value: Any) -> None:
    fast = _plain_levels(value)
    if fast is not None:
        expected = careful(value)
        assert fast == expected
        assert [tuple(map(type, level)) for level in fast] == [(Decimal, Decimal)] * len(fast)
        assert [str(p) + str(v) for p, v in fast] == [str(p) + str(v) for p, v in expected]  # exponents too


@pytest.mark.parametrize(
    ("side", "ok"),
    [
        ("[[30003.00, 0.0447], [30004.5, 1]]", True),
        ('[["30003.00", "0.0447"], ["30004.5", "1"]]', True),
        ("[[1e-60, 1], [9.999e60, 1]]", True),
        ('[["1e-60", "1"], ["9.999e60", "1"]]', True),
        ('[["1e-61", "1"]]', False),
        ('[["1e61", "1"]]', False),
        ('[["1", "1e-61"]]', False),
        ("[[1.5e-60, 1]]", False),
        ('[["1.5e-60", "1"]]', False),
        ("[[1, 0e-61]]", False),
        ("[[1, 0e-60]]", True),
        ("[[1, 0], [2, 0.0]]", True),
        ("[[0, 1]]", False),
        ("[[1, -0.5]]", False),
        ('[["1_000", "1"]]', False),
        ('[["1", "NaN"]]', False),
        ('[[" 1 ", "2"]]', True),
    ],
)
def test_a_depth_side_within_or_beyond_the_bounds(side: str, ok: bool) -> None:
    text = '{"channel":"market_btcusdt_depth_step0","ts":1,"tick":{"asks":' + side + "}}"
    if ok:
        depth = parse_message(loads(text))
        assert len(depth.asks) >= 1  # type: ignore[union-attr]
    else:
        with pytest.raises(FrameError):
            parse_message(loads(text))


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("1" + "0" * 60 + ".0", True),  # 1e60
        ("1" + "0" * 61 + ".0", False),  # 1e61
        ("9" * 61 + ".0", True),
        ("0." + "0" * 59 + "1", True),  # 1e-60
        ("0." + "0" * 60 + "1", False),  # 1e-61
        ("1." + "0" * 60, True),  # one, written to the 60th place
        ("1." + "0" * 61, False),  # one, written to the 61st place: the last digit is beyond the bound
        ("1e60", True),
        ("1e61", False),
        ("1E-60", True),
        ("-1e-61", False),
        ("1.5e-60", False),
        ("0e-60", True),
        ("0e-61", False),  # a zero written at the 61st place, as the bounded reader has it
        ("0e-999999", False),
        ("0e61", False),
        ("1e" + "0" * 97 + "1", True),  # 100 characters: ten
        ("1e" + "0" * 98 + "1", False),  # 101 characters
        ("1" * 61, True),  # an int of 61 digits is read (as ints are); as a price it is out of range
        ("1" * MAX_NUMBER_CHARS, True),
        ("1" * (MAX_NUMBER_CHARS + 1), False),
    ],
)
def test_numbers_at_the_readers_bounds(number: str, ok: bool) -> None:
    text = '{"p": ' + number + "}"
    if ok:
        assert loads(text)["p"] == (int(number) if number.isdigit() else Decimal(number))
    else:
        with pytest.raises(FrameError, match=r"out of range|characters"):
            loads(text)


def test_the_bounds_are_the_bounded_readers() -> None:
    """One definition: the stream reads numbers within the bounds of ``rebalancer.numbers``."""
    assert (MAX_EXPONENT, MAX_NUMBER_CHARS) == (60, 100)
    assert number("1e60", "p") == Decimal("1e60") and number("1e-60", "p") == Decimal("1e-60")
    for beyond in ("1e61", "1e-61", "0e-61"):
        with pytest.raises(FrameError, match="out of range"):
            number(beyond, "p")


def bounded(text: str) -> object:
    try:
        value = bounded_decimal(text)
    except NumberOutOfBounds:
        return "refused"
    return value if value.is_finite() else "refused"


def framed(text: str) -> object:
    try:
        value = loads('{"p": ' + text + "}")["p"]
    except FrameError:
        return "refused"
    return Decimal(value)


json_numbers = st.from_regex(r"-?(0|[1-9][0-9]{0,70})(\.[0-9]{1,70})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)


@settings(max_examples=examples(1500))
@given(json_numbers)
@example("1" + "0" * 60 + ".0")
@example("1." + "0" * 61)
@example("0e-61")
@example("1.5e-60")
def test_a_json_number_in_a_frame_is_read_as_the_bounded_reader_reads_it(text: str) -> None:
    """Every JSON number with a fraction or exponent (ints are read as ints, bounded where they are used) is
    refused by the frame reader exactly when the bounded reader refuses it, and otherwise read as the same value."""
    if "." not in text and "e" not in text.lower():
        text += ".0"
    assert framed(text) == bounded(text)
    if bounded(text) != "refused":
        assert str(framed(text)) == str(bounded(text))  # the exponent too


@pytest.mark.parametrize(
    "side",
    [
        [[Decimal("30003.00"), Decimal("0.0447")], [Decimal("30004.5"), Decimal("1")]],
        [["30003.00", "0.0447"], ["30004.5", "1"]],
    ],
)
def test_a_plain_book_takes_the_fast_path(side: list[list[Any]]) -> None:
    assert _plain_levels(side) == ((Decimal("30003.00"), Decimal("0.0447")), (Decimal("30004.5"), Decimal(1)))


def answer(read: Callable[[object, str], object], value: object) -> object:
    try:
        result = read(value, "x")
    except FrameError as exc:
        return f"refused: {exc}"
    return (type(result), str(result))


@settings(max_examples=examples(1500))
@given(st.one_of(numbers, st.integers(-(10**45), 10**45)))
@example(Decimal("1e61"))
@example(Decimal("-9.999e60"))
@example(Decimal("1e-60"))
@example(Decimal("-1e-61"))
@example(Decimal("1.5e-60"))
@example(Decimal("0E-99"))
@example(Decimal("1" * 101 + "e-60"))
@example(10**61 - 1)
@example(10**61)
@example(True)
def test_a_number_or_a_time_read_at_once_is_read_as_the_careful_check_reads_it(value: Any) -> None:
    assert answer(number, value) == answer(_careful_number, value)
    assert answer(_ms, value) == answer(lambda v, what: _ms(_careful_number(v, what), what), value)
