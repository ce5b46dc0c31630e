"""limits (price ceiling and floor) on their own: each side checks only its own limit, sub-1 limits, no limit set,
the words with a missing limit, and split_orders (pending cancels stay within, order kept) against a simple model."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import limits
from rebalancer.job import Limits
from rebalancer.models import Order, OrderStatus, Side
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL
SUB_1 = Limits(price_ceiling=D("0.00012"), price_floor=D("0.00010"))


@pytest.mark.parametrize(
    ("limit", "side", "price", "breaks"),
    [
        (SUB_1, B, "0.00012", True),
        (SUB_1, B, "0.000119999", False),
        (SUB_1, B, "0.5", True),
        (SUB_1, S, "0.00010", True),
        (SUB_1, S, "0.000100001", False),
        (SUB_1, S, "0.00000001", True),
        # each side answers only to its own limit: a buy below the floor and a sell above the ceiling are fine
        (SUB_1, B, "0.00000001", False),
        (SUB_1, S, "0.5", False),
        (Limits(price_floor=D("0.0001")), B, "1000", False),
        (Limits(price_ceiling=D("0.0001")), S, "0.00000001", False),
        (Limits(), B, "1E+9", False),
        (Limits(), S, "0", False),
    ],
)
def test_breaches_table(limit: Limits, side: Side, price: str, breaks: bool) -> None:
    assert limits.breaches(limit, side, D(price)) is breaks


def test_the_words_show_the_limit_as_plain_decimals_or_none() -> None:
    assert limits.why(SUB_1, B) == "at or above the price ceiling 0.00012"
    assert limits.why(SUB_1, S) == "at or below the price floor 0.00010"
    assert limits.why(Limits(price_ceiling=D("3E+4")), B) == "at or above the price ceiling 30000"
    assert limits.why(Limits(price_ceiling=D(1)), S) == "at or below the price floor (none)"
    assert limits.why(Limits(price_floor=D(1)), B) == "at or above the price ceiling (none)"


def test_split_orders_keeps_pending_cancels_within_and_the_given_order() -> None:
    rows = [
        Order("1", B, D("0.00013"), D(1)),
        Order("2", B, D("0.00013"), D(1), status=OrderStatus.CANCEL_PENDING),
        Order("3", S, D("0.00011"), D(1)),
        Order("4", S, D("0.00009"), D(1), D("0.5"), OrderStatus.PARTIALLY_FILLED),
        Order("5", B, D("0.00011"), D(1), status=OrderStatus.INITIAL),
        Order("6", S, D("0.0001"), D(1), status=OrderStatus.CANCEL_PENDING),
    ]
    within, beyond = limits.split_orders(SUB_1, rows)
    assert [o.id for o in within] == ["2", "3", "5", "6"]
    assert [o.id for o in beyond] == ["1", "4"]
    assert limits.split_orders(Limits(), rows) == (rows, [])
    assert limits.split_orders(SUB_1, []) == ([], [])


_statuses = st.sampled_from(list(OrderStatus))


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([B, S]), st.integers(1, 30), _statuses), max_size=10),
    st.one_of(st.none(), st.integers(1, 30)),
    st.one_of(st.none(), st.integers(1, 30)),
)
def test_split_orders_matches_the_rule_in_words(
    rows: list[tuple[Side, int, OrderStatus]], ceiling: int | None, floor: int | None
) -> None:
    """Prices in hundredths of a unit; an order is beyond when it rests on the book and is a buy at or above the
    ceiling or a sell at or below the floor. Both lists keep the input order and together hold every order once."""
    limit = Limits(
        price_ceiling=None if ceiling is None else D(ceiling) / 100,
        price_floor=None if floor is None else D(floor) / 100,
    )
    orders = [Order(str(i), side, D(p) / 100, D(1), D(0), status) for i, (side, p, status) in enumerate(rows)]
    within, beyond = limits.split_orders(limit, orders)
    expected = []
    for side, p, status in rows:
        resting = status in (OrderStatus.INITIAL, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)
        if side is B:
            expected.append(resting and ceiling is not None and p >= ceiling)
        else:
            expected.append(resting and floor is not None and p <= floor)
    assert [o.id for o in beyond] == [o.id for o, out in zip(orders, expected, strict=True) if out]
    assert [o.id for o in within] == [o.id for o, out in zip(orders, expected, strict=True) if not out]
