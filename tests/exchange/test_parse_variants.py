"""Answer shapes seen on live deployments and in third-party clients: each is read, or refused in one clear line."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from rebalancer.errors import BadResponse, RejectedError
from rebalancer.exchange.parse import (
    OrderNotFound,
    created_at_ms,
    decode_json,
    parse_batch_answer,
    parse_created_order,
    parse_order_info,
    parse_orders_page,
)
from rebalancer.models import OrderStatus, Side


def body(value: Any) -> Any:
    """A payload as it arrives: JSON text decoded with exact decimals."""
    return decode_json(json.dumps(value), "test")


ROW = {"id": 504, "side": "BUY", "price": "6400.00", "volume": "0.5", "deal_volume": "0", "status": 1}


def test_lower_case_side_is_read() -> None:
    order = parse_order_info(body({"order_info": {**ROW, "side": "sell"}, "trade_list": []}))
    assert order.side is Side.SELL and order.status is OrderStatus.NEW


ONE = "reading one order (/open/api/order_info): "


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"trade_list": []}, ONE + "the answer has no order_info"),
        (None, ONE + "data is not an object"),
        ({"order_info": {**ROW, "price": ""}}, ONE + "order 504.price is not a number"),
        ({"order_info": {**ROW, "side": None}}, ONE + "order 504.side is not BUY or SELL: None"),
        ({"order_info": {**ROW, "side": ["BUY"]}}, ONE + "order 504.side is not BUY or SELL"),
        ({"order_info": {**ROW, "status": "filled"}}, ONE + "order 504.status is not a number"),
        ({"order_info": "504"}, ONE + "order_info is not an object"),
    ],
)
def test_order_info_shapes_that_cannot_be_read_are_one_clear_line(payload: Any, message: str) -> None:
    with pytest.raises(BadResponse) as error:
        parse_order_info(body(payload))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1572833000123, 1572833000123),
        ("1572833000123", 1572833000123),
        (" 1572833000 ", 1572833000000),  # seconds, told apart by magnitude
        (1572833000, 1572833000000),
        (Decimal("1572833000.5"), 1572833000500),
        ("2019-11-04T02:03:20Z", 1572833000000),
        ("2019-11-04 10:03:20+08:00", 1572833000000),
        ("2019-11-04 10:03:20", None),  # no zone: the instant is unknown
        ("yesterday", None),
        ("", None),
        (None, None),
        (True, None),
        ([1572833000], None),
        ({"ms": 1}, None),
        ("NaN", None),
        ("-5", None),
        ("1e999", None),
    ],
)
def test_created_at_as_number_numeric_text_or_date_text(value: Any, expected: int | None) -> None:
    assert created_at_ms(value) == expected


def test_created_at_text_reaches_the_order() -> None:
    order = parse_order_info(body({"order_info": {**ROW, "created_at": "2019-11-04T02:03:20Z"}}))
    assert order.created_at == 1572833000000


@pytest.mark.parametrize(
    ("data", "expected"),
    [({"order_id": 504}, "504"), ({"order_id": " 504 "}, "504"), ({"order_id": "a1b2"}, "a1b2")],
)
def test_create_order_answer(data: Any, expected: str) -> None:
    assert parse_created_order(body(data)) == expected


@pytest.mark.parametrize("data", [None, {}, {"order_id": None}, {"order_id": ""}, [], "504", {"order_id": True}])
def test_create_order_answer_without_an_id_is_one_clear_line(data: Any) -> None:
    with pytest.raises(BadResponse) as error:
        parse_created_order(body(data))
    assert str(error.value).startswith("placing an order (/open/api/create_order): ")


@pytest.mark.parametrize("data", [None, {}, {"mass_place": None, "mass_cancel": None}, {"result": "ok"}])
def test_a_batch_answer_with_neither_list_is_not_an_empty_success(data: Any) -> None:
    with pytest.raises(BadResponse, match="neither mass_place nor mass_cancel"):
        parse_batch_answer(body(data))


def test_a_batch_answer_with_one_empty_list_is_read() -> None:
    answer = parse_batch_answer(body({"mass_cancel": [], "mass_place": None}))
    assert answer.place == () and answer.cancel == ()


def test_an_open_order_page_whose_rows_share_an_id_is_refused() -> None:
    rows = [ROW, {**ROW, "price": "6300.00"}]
    with pytest.raises(BadResponse, match="lists order 504 more than once"):
        parse_orders_page(body({"count": 2, "resultList": rows}))


def test_an_open_order_count_beyond_any_book_is_refused() -> None:
    with pytest.raises(BadResponse, match="beyond any real order book"):
        parse_orders_page(body({"count": 10**15, "resultList": [ROW]}))


def test_order_info_null_is_the_order_not_found_not_an_order() -> None:
    with pytest.raises(OrderNotFound, match=r"does not know this order \(order_info: null\)") as error:
        parse_order_info(body({"order_info": None, "trade_list": []}))
    assert isinstance(error.value, RejectedError)


@pytest.mark.parametrize(
    ("volumes", "status"),
    [
        ({"volume": "2", "deal_volume": "2", "remain_volume": "0"}, OrderStatus.FILLED),
        ({"volume": "2", "deal_volume": "0.5", "remain_volume": "0"}, OrderStatus.CANCELLED),
        ({"volume": "2", "deal_volume": "0", "remain_volume": "0"}, OrderStatus.CANCELLED),
        ({"volume": "2", "deal_volume": "0.5", "remain_volume": "1.5"}, OrderStatus.PARTIALLY_FILLED),
        ({"volume": "2", "deal_volume": "0"}, OrderStatus.NEW),
        ({"volume": "2", "remain_volume": "0.5"}, OrderStatus.PARTIALLY_FILLED),
        ({"volume": "2", "remain_volume": "2"}, OrderStatus.NEW),
    ],
)
def test_a_row_without_status_gets_the_one_its_volumes_say(volumes: dict[str, str], status: OrderStatus) -> None:
    row = {"id": 504, "side": "BUY", "price": "1.00", **volumes}
    order = parse_order_info(body({"order_info": row, "trade_list": []}))
    assert order.status is status
