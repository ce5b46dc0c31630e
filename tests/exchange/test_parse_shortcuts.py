"""The parser's short cuts for JSON integers (ids, statuses, counts, creation times) give what the general reading
gives the same number as a Decimal: the same value, or a refusal of both (Hypothesis)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rebalancer.errors import BadResponse
from rebalancer.exchange.parse import _integer, created_at_ms, order_id, parse_order
from rebalancer.models import OrderStatus

edges = [
    0,
    -1,
    10**30,
    10**30 + 1,
    10**30 + 10**3,
    2 * 10**30,
    -2 * 10**30,
    -(10**30),
    -(10**30) - 1,
    10**11 - 1,
    10**11,
    10**16 - 1,
    10**16,
    10**60,
    10**200,
]
integers = st.one_of(st.sampled_from(edges), st.integers(), st.integers(min_value=-(10**70), max_value=10**70))


def read(reader: object, value: object) -> object:
    try:
        return reader(value, "v2/new_order", "count")  # type: ignore[operator]
    except BadResponse:
        return BadResponse


@given(integers)
def test_an_integer_field_reads_as_its_decimal_would(value: int) -> None:
    assert read(_integer, value) == read(_integer, Decimal(value))
    assert read(order_id, value) == read(order_id, Decimal(value))


@given(integers)
def test_a_creation_time_reads_as_its_decimal_would(value: int) -> None:
    assert created_at_ms(value) == created_at_ms(Decimal(value))


@given(st.sampled_from(["BUY", "SELL", " buy ", "Sell", "HOLD", ""]), st.sampled_from([*range(-1, 9), "1", None]))
def test_side_and_status_read_as_before(side: str, status: object) -> None:
    row = {"id": 7, "side": side, "status": status, "price": "1", "volume": "2", "deal_volume": "0"}
    try:
        order = parse_order(row, "order_info")
    except BadResponse as error:
        text = str(error)
        assert ("side is not BUY or SELL" in text) or ("status is unknown" in text)
        assert side.strip().upper() not in ("BUY", "SELL") or status not in (*range(7), "1", None)
        return
    assert order.side.value == side.strip().upper() and type(order.status) is OrderStatus
    assert order.status == (OrderStatus(int(status)) if status is not None else OrderStatus.NEW)
