"""The /open/api endpoints of the sandbox: each turns checked parameters into the ``data`` of the envelope.

A handler takes the engine, the received parameters (raw strings), the caller's API key (None for public
endpoints) and the fault settings, and returns JSON-safe data or raises ``Reject`` with the template's code.
Numbers are rendered as strings with the symbol's decimal places, as the exchanges do; ids, statuses and times
are JSON integers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from werkzeug.wrappers import Response

from rebalancer.models import ZERO, Side, SymbolRules, format_decimal, quantize
from rebalancer.numbers import bounded_decimal
from rebalancer.sandbox.book import Reject, SimOrder
from rebalancer.sandbox.checks import int_param, required
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.market import fmt_amount

MAX_BATCH = 1000
DEPTH_TYPES = frozenset(f"step{i}" for i in range(6))

_COMPACT = json.JSONEncoder(separators=(",", ":"))
Handler = Callable[[Engine, Mapping[str, str], "str | None", Faults], Any]


READ_UNKNOWN_SYMBOL = "1"
"""The code live deployments answer a read of an unknown symbol with."""
CANCEL_UNKNOWN_SYMBOL = "8"
"""The code live deployments answer a cancel on an unknown symbol with (cancel failed)."""


def known_rules(engine: Engine, params: Mapping[str, str], code: str = READ_UNKNOWN_SYMBOL) -> SymbolRules:
    """The rules of the request's ``symbol``; an unknown symbol is ``Reject(code)``, as live deployments answer."""
    symbol = required(params, "symbol")
    try:
        return engine.rules(symbol)
    except Reject:
        raise Reject(code, f"unknown symbol {symbol[:40]!r}") from None


def envelope_body(code: str, msg: str | None, data: Any) -> bytes:
    """The documented answer's body: ``code`` as text, ``msg``, ``data``, compact JSON in UTF-8."""
    return _COMPACT.encode({"code": code, "msg": msg, "data": data}).encode("utf-8")


def envelope(code: str, msg: str | None, data: Any, status: int = 200) -> Response:
    """The documented answer as a Werkzeug response (the controls' answers)."""
    return Response(envelope_body(code, msg, data), status=status, mimetype="application/json")


def order_row(order: SimOrder, rules: SymbolRules) -> dict[str, Any]:
    """An order as new_order and order_info list it."""
    deal_funds = sum((f.price * f.volume for f in order.fills), Decimal(0))
    avg = quantize(deal_funds / order.deal_volume, rules.price_precision, up=False) if order.deal_volume else ZERO
    return {
        "id": order.id,
        "side": order.side.value,
        "side_msg": order.side.value,
        "type": 1,
        "price": rules.format_price(order.price),
        "volume": rules.format_volume(order.volume),
        "deal_volume": rules.format_volume(order.deal_volume),
        "remain_volume": rules.format_volume(order.remaining),
        "avg_price": rules.format_price(avg),
        "total_price": fmt_amount(order.price * order.volume),
        "deal_price": fmt_amount(deal_funds),
        "fee": "0",
        "fee_coin": rules.quote,
        "status": int(order.status),
        "status_msg": order.status.name,
        "created_at": order.created_at,
        "baseCoin": rules.base,
        "countCoin": rules.quote,
        "source": 3,
        "source_msg": "API",
        "tradeList": [trade_row(order, i, rules) for i in range(len(order.fills))],
    }


def trade_row(order: SimOrder, index: int, rules: SymbolRules) -> dict[str, Any]:
    """One fill of an order as order_info's trade_list shows it."""
    fill = order.fills[index]
    return {
        "id": fill.trade_id,
        "price": rules.format_price(fill.price),
        "volume": rules.format_volume(fill.volume),
        "deal_price": fmt_amount(fill.price * fill.volume),
        "fee": "0",
        "ctime": fill.time,
        "type": fill.side.value,
    }


def symbols(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET common/symbols: every symbol's coins, precisions and minimum volume."""
    return [
        {
            "symbol": spec.symbol,
            "base_coin": spec.rules.base,
            "count_coin": spec.rules.quote,
            "price_precision": spec.price_precision,
            "amount_precision": spec.amount_precision,
            "limit_volume_min": format_decimal(spec.min_volume),
        }
        for spec in engine.specs()
    ]


def ticker(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET get_ticker: best bid/ask (resting orders included), last, the day's high, low, volume, change."""
    rules = known_rules(engine, params)
    symbol = rules.symbol
    view = engine.market_view(symbol)
    t = view.ticker
    assert t.bid is not None and t.ask is not None and t.last is not None
    rose = ((t.last - view.open) / view.open).quantize(Decimal("1E-8"))
    rose = abs(rose) if rose == 0 else rose  # never "-0.00000000"
    return {
        "buy": rules.format_price(t.bid),
        "sell": rules.format_price(t.ask),
        "last": rules.format_price(t.last),
        "high": rules.format_price(view.high),
        "low": rules.format_price(view.low),
        "vol": rules.format_volume(view.volume),
        "rose": format_decimal(rose),
        "time": t.time,
    }


def all_tickers(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET get_allticker: every symbol's ticker in one answer (``data.ticker`` rows with their ``symbol``)."""
    rows = [{"symbol": spec.symbol, **ticker(engine, {"symbol": spec.symbol}, None, faults)} for spec in engine.specs()]
    return {"date": engine.now_ms(), "ticker": rows}


def page_params(params: Mapping[str, str], faults: Faults) -> tuple[int, int]:
    """The ``page`` (from 1) and ``pageSize`` (capped by the server) of a paged read."""
    return int_param(params, "page", 1), min(int_param(params, "pageSize", 10), faults.max_page_size)


def depth(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET market_dept: levels best first, the accounts' resting orders merged into the crowd's."""
    rules = known_rules(engine, params)
    symbol = rules.symbol
    if required(params, "type") not in DEPTH_TYPES:
        raise Reject("100004", "type must be step0 to step5")
    bids, asks = engine.depth(symbol)

    def render(levels: list[tuple[Decimal, Decimal]]) -> list[list[str]]:
        return [[rules.format_price(p), rules.format_volume(q)] for p, q in levels]

    return {"tick": {"asks": render(asks), "bids": render(bids), "time": engine.now_ms()}}


def account(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET user/account: every coin's available (``normal``) and ``locked`` amount."""
    assert api_key is not None
    coins = engine.balances(api_key).coins
    return {
        "coin_list": [
            {"coin": coin, "normal": fmt_amount(b.available), "locked": fmt_amount(b.locked)}
            for coin, b in coins.items()
        ]
    }


def open_orders(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET v2/new_order: one page of the account's open orders, newest first, and the total count."""
    assert api_key is not None
    rules = known_rules(engine, params)
    symbol = rules.symbol
    page, size = page_params(params, faults)
    count, chunk = engine.open_order_page(api_key, symbol, (page - 1) * size, page * size)
    rows = [order_row(o, rules) for o in chunk]
    if faults.duplicate_ids and rows:
        rows = [{**row, "id": rows[0]["id"]} for row in rows]
    return {"count": count, "resultList": rows}


def order_info(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET order_info: one order of the account, whatever its status, with its fills; an id it does not know is
    ``order_info: null`` with code 0 (as live deployments answer)."""
    assert api_key is not None
    rules = known_rules(engine, params)
    symbol = rules.symbol
    raw_id = required(params, "order_id")
    if not raw_id.isascii() or not raw_id.isdigit():
        raise Reject("100004", "order_id must be an integer")
    try:
        order = engine.order_record(api_key, symbol, int(raw_id))
    except Reject:
        return {"order_info": None, "trade_list": []}  # as a live deployment answers an id it does not know
    if faults.order_info_without_status:
        return {"order_info": {k: v for k, v in order_row(order, rules).items() if k not in ("status", "status_msg")}}
    return {
        "order_info": order_row(order, rules),
        "trade_list": [trade_row(order, i, rules) for i in range(len(order.fills))],
    }


def cancel_all(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """POST cancel_order_all: cancel up to 2000 open orders of the account on the symbol."""
    assert api_key is not None
    engine.cancel_all(api_key, known_rules(engine, params, CANCEL_UNKNOWN_SYMBOL).symbol)
    return {}


def _json_list(text: str, name: str) -> list[Any]:
    def no_constants(word: str) -> Any:
        raise ValueError(word)

    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=no_constants)
    except ValueError as exc:
        raise Reject("100004", f"{name} is not valid JSON") from exc
    if not isinstance(value, list):
        raise Reject("100004", f"{name} must be a JSON array")
    if len(value) > MAX_BATCH:
        raise Reject("100004", f"{name} holds more than {MAX_BATCH} items")
    return value


def _cancel_ids(text: str | None) -> list[int]:
    ids: list[int] = []
    for item in _json_list(text, "mass_cancel") if text else []:
        if isinstance(item, int) and not isinstance(item, bool) and item > 0:
            ids.append(item)
        elif isinstance(item, str) and item.isascii() and item.isdigit():
            ids.append(int(item))
        else:
            raise Reject("100004", "mass_cancel ids must be integers or numeric strings")
    return ids


def _decimal(value: Any, missing_code: str, name: str) -> Decimal:
    if value is None or value == "":
        raise Reject(missing_code, f"{name} missing")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise Reject("100004", f"{name} must be a decimal number")
    try:
        number = bounded_decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise Reject("100004", f"{name} must be a decimal number") from exc
    if not number.is_finite():
        raise Reject("100004", f"{name} must be a decimal number")
    return number


def _placement(item: Any) -> tuple[Side, Decimal, Decimal]:
    if not isinstance(item, dict):
        raise Reject("100004", "each mass_place item must be an object")
    side = item.get("side")
    if side not in ("BUY", "SELL"):
        raise Reject("100004", "side must be BUY or SELL")
    kind = str(item.get("type", ""))
    if kind == "2":
        raise Reject("100004", "market orders (type 2) are not supported: send limit orders (type 1)")
    if kind != "1":
        raise Reject("100004", "type must be 1 (limit)")
    return (
        Side(side),
        _decimal(item.get("price"), "24", "price"),
        _decimal(item.get("volume"), "23", "volume"),
    )


def _shape(results: list[tuple[str, str, int | None]], faults: Faults, ids_as_text: bool) -> list[dict[str, Any]]:
    """Results in the answer shape the faults ask for; a failed placement has no id (``"order_id": ""``)."""
    if faults.answer_shape == "per_order":
        return [
            {"order_id": "" if oid is None else (str(oid) if ids_as_text else oid), "code": code, "msg": msg}
            for code, msg, oid in results
        ]
    groups: dict[str, dict[str, Any]] = {}
    for code, msg, oid in results:
        group = groups.setdefault(code, {"code": code, "msg": msg, "order_id": []})
        if oid is not None:
            group["order_id"].append(oid)
    for group in groups.values():
        if not group["order_id"]:
            group["order_id"] = ""
    return list(groups.values())


def mass_replace(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """POST mass_replaceV2: the cancels first, then the placements, as one step; answers per item."""
    assert api_key is not None
    symbol = required(params, "symbol")
    engine.rules(symbol)
    cancel_ids = _cancel_ids(params.get("mass_cancel"))
    items = _json_list(params["mass_place"], "mass_place") if params.get("mass_place") else []
    if any(not isinstance(item, dict) for item in items):
        raise Reject("100004", "each mass_place item must be an object")
    cancels: list[tuple[str, str, int | None]] = []
    places: list[tuple[str, str, int | None]] = []
    with engine.batch():
        for order_id in cancel_ids:
            try:
                engine.cancel(api_key, symbol, order_id)
                cancels.append(("0", "Success", order_id))
            except Reject as exc:
                cancels.append((exc.code, exc.msg, order_id))
        for item in items:
            try:
                side, price, volume = _placement(item)
                if faults.applies_to("/open/api/mass_replaceV2") and faults.roll(faults.reject_place):
                    raise Reject(faults.reject_code, faults.rejection(api_key))
                places.append(("0", "Success", engine.place(api_key, symbol, side, price, volume)))
            except Reject as exc:
                places.append((exc.code, exc.msg, None))
    if faults.answer_shape == "null":
        return None
    return {"mass_place": _shape(places, faults, True), "mass_cancel": _shape(cancels, faults, False)}


def create_order(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """POST create_order: place one limit order (``type`` 1); answers ``{"order_id": id}``."""
    assert api_key is not None
    symbol = required(params, "symbol")
    engine.rules(symbol)
    side, price, volume = _placement({name: params.get(name) for name in ("side", "type", "price", "volume")})
    if faults.applies_to("/open/api/create_order") and faults.roll(faults.reject_place):
        raise Reject(faults.reject_code, faults.rejection(api_key))
    return {"order_id": engine.place(api_key, symbol, side, price, volume)}


def cancel_order(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """POST cancel_order: cancel one open order of the account (``22`` when it is not open)."""
    assert api_key is not None
    symbol = known_rules(engine, params, CANCEL_UNKNOWN_SYMBOL).symbol
    raw_id = required(params, "order_id")
    if not raw_id.isascii() or not raw_id.isdigit():
        raise Reject("100004", "order_id must be an integer")
    engine.cancel(api_key, symbol, int(raw_id))
    return {}
