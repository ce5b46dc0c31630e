"""Fuzz: whatever JSON arrives, every parser returns a value or raises an ``ExchangeError`` (``BadResponse`` for a
shape it cannot read); nothing else escapes: no KeyError, TypeError, AttributeError or decimal error."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalancer.errors import BadResponse, ExchangeError
from rebalancer.exchange.parse import (
    created_at_ms,
    decode_json,
    parse_account,
    parse_batch_answer,
    parse_created_order,
    parse_depth,
    parse_envelope,
    parse_order_info,
    parse_orders_page,
    parse_symbols,
    parse_ticker,
)
from rebalancer.exchange.profile import ExchangeProfile

TRICKY_TEXT = [
    "",
    " ",
    "0",
    "-1",
    "1e999999",
    "-0",
    "NaN",
    "Infinity",
    "sNaN",
    "1.5",
    " 7 ",
    "BUY",
    "sell",
    "x",
    "1572833000",
    "2019-11-04T02:03:20Z",
    "2019-11-04 10:03:20+08:00",
    "2019-11-04 10:03:20",
    "9999-12-31T23:59:59+14:00",
]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.sampled_from(TRICKY_TEXT),
    st.text(max_size=6),
)
json_values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=20,
)


def shaped(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with (some of) the keys a parser looks for, holding arbitrary values."""
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, json_values))


ORDER_KEYS = ["id", "side", "price", "volume", "deal_volume", "remain_volume", "status", "created_at"]
orders = st.one_of(shaped(ORDER_KEYS), json_values)
GROUP_KEYS = ["code", "msg", "order_id", "message"]
groups = st.one_of(shaped(GROUP_KEYS), json_values)

PARSERS = {
    "symbols": (
        parse_symbols,
        st.lists(
            st.one_of(
                shaped(
                    [
                        "symbol",
                        "base_coin",
                        "count_coin",
                        "price_precision",
                        "amount_precision",
                        "limit_volume_min",
                    ]
                ),
                json_values,
            ),
            max_size=3,
        ),
    ),
    "ticker": (parse_ticker, shaped(["buy", "sell", "last", "time"])),
    "depth": (
        parse_depth,
        st.fixed_dictionaries(
            {"tick": st.fixed_dictionaries({}, optional={"asks": st.lists(json_values), "bids": json_values})}
        ),
    ),
    "account": (
        parse_account,
        st.fixed_dictionaries({"coin_list": st.lists(shaped(["coin", "normal", "locked"]), max_size=3)}),
    ),
    "orders_page": (
        parse_orders_page,
        st.fixed_dictionaries(
            {},
            optional={
                "count": json_values,
                "resultList": st.lists(orders, max_size=3),
                "orderList": json_values,
            },
        ),
    ),
    "order_info": (
        parse_order_info,
        st.fixed_dictionaries({}, optional={"order_info": st.one_of(st.none(), orders), "trade_list": json_values}),
    ),
    "created_order": (parse_created_order, st.one_of(st.none(), shaped(["order_id"]))),
    "batch": (
        parse_batch_answer,
        st.fixed_dictionaries(
            {},
            optional={
                "mass_place": st.one_of(st.none(), st.lists(groups, max_size=3)),
                "mass_cancel": st.one_of(st.none(), st.lists(groups, max_size=3)),
            },
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parsers_raise_only_exchange_errors(name: str) -> None:
    parser, shapes = PARSERS[name]

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.one_of(shapes, json_values))
    def check(payload: Any) -> None:
        with contextlib.suppress(ExchangeError):
            parser(payload)

    check()


@settings(max_examples=150, deadline=None)
@given(st.one_of(json_values, shaped(["code", "msg", "data", "message"])))
def test_envelope_raises_only_exchange_errors(payload: Any) -> None:
    with contextlib.suppress(ExchangeError):
        parse_envelope(payload, "ep", ExchangeProfile().classify)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_decode_json_raises_only_bad_response(text: str) -> None:
    try:
        value = decode_json(text, "ep")
    except BadResponse:
        return
    assert not isinstance(value, float)


@settings(max_examples=60, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False, places=12))
def test_json_numbers_decode_to_the_exact_decimal(number: Decimal) -> None:
    assert decode_json(f'{{"x": {number:f}}}', "ep")["x"] == number


@settings(max_examples=200, deadline=None)
@given(st.one_of(json_values, st.text(max_size=30)))
def test_created_at_never_raises_and_is_a_plausible_instant(value: Any) -> None:
    stamp = created_at_ms(value)
    assert stamp is None or (isinstance(stamp, int) and 0 <= stamp < 10**16)
