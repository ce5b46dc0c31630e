"""The account's history endpoints of the sandbox: ``v2/all_order`` (orders of every status) and ``all_trade``
(fills), as the template documents them.

Both read a window of time: ``startDate`` and ``endDate`` (``yyyy-MM-dd HH:mm:ss`` in UTC, or a timestamp in
seconds or milliseconds) at most ten minutes apart, one of them alone meaning the ten minutes after or before
it, neither meaning the last ten minutes. ``sort=1`` lists newest first (the default), ``sort=0`` oldest first.
Orders are placed in the window by their creation time, fills by their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rebalancer.models import Side
from rebalancer.sandbox.book import Reject
from rebalancer.sandbox.checks import time_ms
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.market import fmt_amount
from rebalancer.sandbox.openapi import known_rules, order_row, page_params

WINDOW_MS = 10 * 60 * 1000
"""The longest window one history read may ask for, and the window of a read that names none."""

DATE_FORMAT = "%Y-%m-%d %H:%M:%S"


def _instant(params: Mapping[str, str], name: str) -> int | None:
    value = params.get(name, "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():
        if len(value) > 16:
            raise Reject("100004", f"{name} is not a time")
        return time_ms(value)
    try:
        moment = datetime.strptime(value, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise Reject("100004", f"{name} must look like 2026-01-05 10:00:00 (UTC)") from None
    return int(moment.timestamp() * 1000)


def window(params: Mapping[str, str], now_ms: int) -> tuple[int, int]:
    """The (start, end) milliseconds a history read covers, both included; ``100004`` for a wider window."""
    start, end = _instant(params, "startDate"), _instant(params, "endDate")
    if start is None and end is None:
        return now_ms - WINDOW_MS, now_ms
    if start is None:
        assert end is not None
        return end - WINDOW_MS, end
    if end is None:
        return start, start + WINDOW_MS
    if not 0 <= end - start <= WINDOW_MS:
        raise Reject("100004", "startDate and endDate must be in order and at most 10 minutes apart")
    return start, end


def newest_first(params: Mapping[str, str]) -> bool:
    """Whether ``sort`` asks for newest first (``1``, the default) or oldest first (``0``)."""
    value = params.get("sort", "1")
    if value not in ("0", "1"):
        raise Reject("100004", "sort must be 0 or 1")
    return value == "1"


def all_orders(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET v2/all_order (and the old all_order): one page of the account's orders of every status created in
    the window."""
    assert api_key is not None
    rules = known_rules(engine, params)
    start, end = window(params, engine.now_ms())
    page, size = page_params(params, faults)
    orders = [o for o in engine.order_records(api_key, rules.symbol) if start <= o.created_at <= end]
    orders.sort(key=lambda o: o.id, reverse=newest_first(params))
    chunk = orders[(page - 1) * size : page * size]
    return {"count": len(orders), "orderList": [order_row(o, rules) for o in chunk]}


def all_trades(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET all_trade: one page of the account's fills on a symbol made in the window."""
    assert api_key is not None
    rules = known_rules(engine, params)
    start, end = window(params, engine.now_ms())
    page, size = page_params(params, faults)
    fills = sorted(
        (
            (order, fill)
            for order in engine.order_records(api_key, rules.symbol)
            for fill in order.fills
            if start <= fill.time <= end
        ),
        key=lambda pair: pair[1].trade_id,
        reverse=newest_first(params),
    )
    rows = [
        {
            "id": fill.trade_id,
            "side": fill.side.value,
            "type": "买入" if fill.side is Side.BUY else "卖出",
            "price": rules.format_price(fill.price),
            "volume": rules.format_volume(fill.volume),
            "deal_price": fmt_amount(fill.price * fill.volume),
            "fee": "0",
            "feeCoin": rules.quote,
            "ctime": fill.time,
            "bid_id": order.id if fill.side is Side.BUY else None,
            "ask_id": order.id if fill.side is Side.SELL else None,
        }
        for order, fill in fills[(page - 1) * size : page * size]
    ]
    return {"count": len(fills), "resultList": rows}
