"""The depth parser's fast path agrees with its careful one: whatever levels it is given, the fast path either hands
them to the careful path (None) or returns exactly what the careful path returns; it never accepts a level the
careful path refuses. And the bounds of the frame reader hold at their edges (``loads`` checks each number in one
inlined step)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

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
    Decimal("-1"),
    Decimal("1e-40"),
    Decimal("9.99e-41"),
    Decimal("1e-41"),
    Decimal("9.999e40"),
    Decimal("1e41"),
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
    "1E-41",
    "+2",
    "-2",
    ".5",
    "5.",
    "0",
    "",
    "NaN",
    "Infinity",
    "0x10",
    "1" * 41,
    "1" * 42,
    "0." + "0" * 38 + "1",
    "0." + "0" * 39 + "1",
    "١٢",
]

decimals = st.one_of(
    st.sampled_from(EDGES),
    st.decimals(allow_nan=True, allow_infinity=True, places=None),
    st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=None),
)
texts = st.one_of(
    st.sampled_from(STRINGS),
    st.text(alphabet="0123456789.+-eE _", max_size=45),
    decimals.filter(lambda d: d.is_finite()).map(lambda d: format(d, "f")),
)
numbers: st.SearchStrategy[Any] = st.one_of(
    decimals, texts, st.integers(-5, 10**50), st.booleans(), st.none(), st.floats(allow_nan=False)
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
@example([[Decimal("1e-40"), Decimal("9.999e40")]])
@example([[Decimal("9.99e-41"), Decimal(1)]])
@example([[Decimal(1), Decimal("1e41")]])
@example([[Decimal(1), Decimal(0)]])
@example([[Decimal("NaN"), Decimal(1)]])
@example([["1" * 41, "1"], ["0." + "0" * 38 + "1", "2"]])
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
        ("[[1e-40, 1], [9.999e40, 1]]", True),
        ('[["1e-41", "1"]]', False),
        ('[["1e41", "1"]]', False),
        ('[["1", "1e-41"]]', False),
        ("[[1, 0], [2, 0.0]]", True),
        ("[[0, 1]]", False),
        ("[[1, -0.5]]", False),
        ('[["1_000", "1"]]', False),
        ('[["1", "NaN"]]', False),
        ('[[" 1 ", "2"]]', True),
    ],
)
def test_a_depth_side_within_or_beyond_the_bounds(side: str, ok: bool) -> None:
    obj = loads('{"channel":"market_btcusdt_depth_step0","ts":1,"tick":{"asks":' + side + "}}")
    if ok:
        depth = parse_message(obj)
        assert len(depth.asks) >= 1  # type: ignore[union-attr]
    else:
        with pytest.raises(FrameError):
            parse_message(obj)


@pytest.mark.parametrize(
    ("number", "ok"),
    [
        ("1" + "0" * 40 + ".0", True),
        ("1" + "0" * 41 + ".0", False),
        ("0." + "0" * 39 + "1", True),
        ("0." + "0" * 40 + "1", False),
        ("1e40", True),
        ("1e41", False),
        ("1E-40", True),
        ("-1e-41", False),
        ("0e-999999", True),
        ("1." + "0" * 62, True),
        ("1." + "0" * 63, False),
        ("1" * 64, True),
        ("1" * 65, False),
    ],
)
def test_numbers_at_the_readers_bounds(number: str, ok: bool) -> None:
    text = '{"p": ' + number + "}"
    if ok:
        assert loads(text)["p"] == (int(number) if number.isdigit() else Decimal(number))
    else:
        with pytest.raises(FrameError, match=r"out of range|characters"):
            loads(text)


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
@example(Decimal("1e41"))
@example(Decimal("-9.999e40"))
@example(Decimal("1e-40"))
@example(Decimal("-1e-41"))
@example(Decimal("0E-99"))
@example(10**41 - 1)
@example(10**41)
@example(True)
def test_a_number_or_a_time_read_at_once_is_read_as_the_careful_check_reads_it(value: Any) -> None:
    assert answer(number, value) == answer(_careful_number, value)
    assert answer(_ms, value) == answer(lambda v, what: _ms(_careful_number(v, what), what), value)
