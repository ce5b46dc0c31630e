"""Pure functions from an /open/api answer to model values.

Strict on what matters (a price that is not a number raises ``BadResponse`` naming the endpoint and the
field), lenient on what does not (extra keys, ``msg: null``, numbers as strings or JSON numbers). Nothing here
touches the network; every failure is a ``rebalancer.errors`` exception, never a ``KeyError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

from rebalancer.errors import BadResponse, RejectedError
from rebalancer.exchange.envelope import answer_text as _text
from rebalancer.exchange.envelope import decode_json as decode_json  # re-exported: answers are read through here
from rebalancer.exchange.envelope import message_of
from rebalancer.exchange.envelope import parse_envelope as parse_envelope
from rebalancer.models import (
    Balance,
    Balances,
    BatchAnswer,
    Order,
    OrderStatus,
    ResultGroup,
    Side,
    SymbolRules,
    Ticker,
)
from rebalancer.numbers import NumberOutOfBounds, bounded_decimal

MAX_OPEN_ORDERS = 1_000_000
"""An open-order ``count`` above this is refused: no account keeps that many orders on one symbol."""


@dataclass(frozen=True, slots=True)
class Depth:
    """The order book's top levels: ``(price, quantity)`` pairs, best first."""

    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


def _bad(endpoint: str, what: str) -> NoReturn:
    raise BadResponse(what, endpoint=endpoint)


def _obj(value: object, endpoint: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        _bad(endpoint, f"{what} is not an object")
    return value


def _list(value: object, endpoint: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        _bad(endpoint, f"{what} is not a list")
    return value


def decimal_field(value: object, endpoint: str, field: str, *, optional: bool = False) -> Decimal | None:
    """A finite Decimal from a JSON number or numeric string; ``None`` for null/"" when ``optional``."""
    if optional and (value is None or value == ""):
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, Decimal)):
        _bad(endpoint, f"{field} is not a number: {value!r}"[:200])
    try:
        number = bounded_decimal(value)
    except NumberOutOfBounds as error:
        _bad(endpoint, f"{field} is out of bounds: {error}")
    except (InvalidOperation, ValueError):
        _bad(endpoint, f"{field} is not a number: {value!r}"[:200])
    if not number.is_finite():
        _bad(endpoint, f"{field} is not a finite number: {value!r}"[:200])
    return number


def _money(value: object, endpoint: str, field: str) -> Decimal:
    number = decimal_field(value, endpoint, field)
    assert number is not None
    if number < 0:
        _bad(endpoint, f"{field} is negative: {number}")
    return number


def _integer(value: object, endpoint: str, field: str) -> int:
    if type(value) is int and -_LARGEST_INTEGER <= value <= _LARGEST_INTEGER:
        return value  # what the reading below makes of it, without the Decimal
    number = decimal_field(value, endpoint, field)
    assert number is not None
    if number != number.to_integral_value() or abs(number) > _LARGEST_INTEGER:
        _bad(endpoint, f"{field} is not an integer: {value!r}"[:200])
    return int(number)


_LARGEST_INTEGER = 10**30
"""An integer field (an id, a status, a count, a precision) beyond this either way is refused."""


def order_id(value: object, endpoint: str, field: str = "order id") -> str:
    """An order id as the exchange's decimal text (``504`` and ``"504"`` both give ``"504"``); a text id is shown,
    stored and sent back, so one of over 100 characters (real ids are far shorter), spaces or controls is refused."""
    text = value.strip() if isinstance(value, str) else ""
    if text and len(text) <= 100 and text.isprintable() and " " not in text:
        return text
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return str(_integer(value, endpoint, field))
    _bad(endpoint, f"{field} is not an id: {value!r}"[:200])


def parse_symbols(data: object, endpoint: str = "common/symbols") -> dict[str, SymbolRules]:
    """Every symbol's rules by lower-case symbol name; coins lower-cased, ``limit_volume_min`` optional."""
    out: dict[str, SymbolRules] = {}
    for index, raw in enumerate(_list(data, endpoint, "data")):
        row = _obj(raw, endpoint, f"data[{index}]")
        symbol = _text(row.get("symbol")).strip().lower()
        if not symbol:
            _bad(endpoint, f"data[{index}].symbol is missing")
        where = f"{symbol}."
        price_places = _integer(row.get("price_precision"), endpoint, where + "price_precision")
        amount_places = _integer(row.get("amount_precision"), endpoint, where + "amount_precision")
        if not (0 <= price_places <= 30 and 0 <= amount_places <= 30):
            _bad(endpoint, f"{symbol}: precision out of range")
        min_volume = decimal_field(row.get("limit_volume_min"), endpoint, where + "limit_volume_min", optional=True)
        if min_volume is not None and min_volume <= 0:
            min_volume = None
        out[symbol] = SymbolRules(
            symbol=symbol,
            base=_text(row.get("base_coin")).strip().lower(),
            quote=_text(row.get("count_coin")).strip().lower(),
            price_precision=price_places,
            amount_precision=amount_places,
            min_volume=min_volume,
        )
    return out


def _quote(value: object, endpoint: str, field: str) -> Decimal | None:
    # A missing side, or a zero price, means an empty side of the book.
    number = decimal_field(value, endpoint, field, optional=True)
    if number is None or number == 0:
        return None
    if number < 0:
        _bad(endpoint, f"{field} is negative: {number}")
    return number


def parse_ticker(data: object, endpoint: str = "get_ticker") -> Ticker:
    """Best bid (``buy``), best ask (``sell``), ``last`` and ``time``; an empty side of the book is None."""
    row = _obj(data, endpoint, "data")
    stamp = decimal_field(row.get("time"), endpoint, "time", optional=True)
    return Ticker(
        bid=_quote(row.get("buy"), endpoint, "buy"),
        ask=_quote(row.get("sell"), endpoint, "sell"),
        last=_quote(row.get("last"), endpoint, "last"),
        time=int(stamp) if stamp is not None and abs(stamp) < 10**20 else None,
    )


def parse_all_tickers(data: object, endpoint: str = "get_allticker") -> TickerTable:
    """Every symbol's ticker from ``data.ticker`` (or ``data`` itself when it is the list), by lower-case symbol.

    Rows are ``get_ticker`` objects with a ``symbol``. A row that cannot be read is left out (its symbol's own
    ``get_ticker`` is asked instead), so one odd market does not cost every other its ticker. A row without a
    ``time`` takes the answer's ``date``. Each row is read when its symbol is first asked for (``TickerTable``).
    """
    body = data.get("ticker") if isinstance(data, dict) else data
    rows = _list(body, endpoint, "ticker")
    date = data.get("date") if isinstance(data, dict) else None
    by_symbol: dict[str, Mapping[str, object]] = {}
    for raw in rows:
        if not isinstance(raw, dict):
            continue
        symbol = _text(raw.get("symbol")).strip().lower()
        if symbol:
            by_symbol[symbol] = {"time": date, **raw} if raw.get("time") is None else raw
    return TickerTable(by_symbol, endpoint)


class TickerTable(Mapping[str, Ticker]):
    """The tickers of one ``get_allticker`` answer by lower-case symbol, each row read (``parse_ticker``) the
    first time its symbol is asked for. A daemon reads every symbol of a deployment once a second and its jobs
    ask for a few of them: reading all thousand rows cost it more than the answer's JSON. A row that cannot be
    read is not in the table, as if the answer had left it out."""

    def __init__(self, rows: Mapping[str, Mapping[str, object]], endpoint: str) -> None:
        self._rows = rows
        self._endpoint = endpoint
        self._read: dict[str, Ticker | None] = {}  # None: the row cannot be read

    def __getitem__(self, symbol: str) -> Ticker:
        try:
            ticker = self._read[symbol]
        except KeyError:
            raw = self._rows[symbol]
            try:
                ticker = parse_ticker(raw, self._endpoint)
            except BadResponse:
                ticker = None
            self._read[symbol] = ticker
        if ticker is None:
            raise KeyError(symbol)
        return ticker

    def __iter__(self) -> Iterator[str]:
        return (symbol for symbol in list(self._rows) if symbol in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _levels(value: object, endpoint: str, side: str) -> tuple[tuple[Decimal, Decimal], ...]:
    levels = []
    for index, raw in enumerate(_list(value, endpoint, f"tick.{side}")):
        if not isinstance(raw, list) or len(raw) < 2:
            _bad(endpoint, f"tick.{side}[{index}] is not a [price, qty] pair")
        levels.append(
            (
                _money(raw[0], endpoint, f"tick.{side}[{index}] price"),
                _money(raw[1], endpoint, f"tick.{side}[{index}] qty"),
            )
        )
    return tuple(levels)


def parse_depth(data: object, endpoint: str = "market_dept") -> Depth:
    """The book of ``data.tick``: bids and asks as ``(price, qty)`` pairs, best first as sent."""
    tick = _obj(_obj(data, endpoint, "data").get("tick"), endpoint, "data.tick")
    bids = _levels(tick.get("bids"), endpoint, "bids")
    return Depth(bids=bids, asks=_levels(tick.get("asks"), endpoint, "asks"))


def parse_account(data: object, endpoint: str = "user/account") -> Balances:
    """Balances from ``data.coin_list``: ``normal`` is available, ``locked`` is held by open orders."""
    rows = _list(_obj(data, endpoint, "data").get("coin_list"), endpoint, "coin_list")
    coins: dict[str, Balance] = {}
    for index, raw in enumerate(rows):
        row = _obj(raw, endpoint, f"coin_list[{index}]")
        coin = _text(row.get("coin")).strip().lower()
        if not coin:
            _bad(endpoint, f"coin_list[{index}].coin is missing")
        locked = row.get("locked")
        coins[coin] = Balance(
            available=_money(row.get("normal"), endpoint, f"{coin}.normal"),
            locked=_money(0 if locked is None else locked, endpoint, f"{coin}.locked"),
        )
    return Balances(coins=coins)


SECONDS_MAGNITUDE = 100_000_000_000
"""A numeric ``created_at`` below this is in seconds (in milliseconds it would be 1973), else milliseconds."""


def created_at_ms(value: object) -> int | None:
    """An order's creation time in ms: a number or numeric text (seconds or ms, told apart by magnitude), or date
    text with a zone (``2019-11-04T10:22:11Z``, ``2019-11-04 10:22:11+08:00``).

    Only informative, so anything else is None rather than a failed read: date text without a zone (whose instant
    is unknown), booleans, nested values. None makes an order count as possibly new, the cautious reading.
    """
    if type(value) is int:  # what the reading below makes of an int, without the Decimal
        if not 0 <= value < 10**16:
            return None
        return value * 1000 if value < SECONDS_MAGNITUDE else value
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        return None
    text = value.strip() if isinstance(value, str) else value
    try:
        number = bounded_decimal(text)
    except NumberOutOfBounds:
        return None
    except (InvalidOperation, ValueError):
        return _date_text_ms(str(text))
    if not number.is_finite() or not 0 <= number < 10**16:
        return None
    return int(number * 1000) if number < SECONDS_MAGNITUDE else int(number)


def _date_text_ms(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return int(moment.timestamp() * 1000)


def parse_order(raw: object, endpoint: str, where: str = "order") -> Order:
    """One order row (open-order list or ``order_info``) as an ``Order``; unknown statuses are refused.

    A row without ``status`` (the template docs' own ``order_info`` example, and some deployments) gets the one its
    volumes say (``derived_status``).
    """
    row = _obj(raw, endpoint, where)
    ident = order_id(row.get("id"), endpoint, f"{where}.id")
    where = f"order {ident}"
    raw_side = row.get("side")
    side_text = raw_side.strip().upper() if isinstance(raw_side, str) else ""
    if side_text not in _SIDES:
        _bad(endpoint, f"{where}.side is not BUY or SELL: {raw_side!r}"[:200])
    status: OrderStatus | None = None
    if row.get("status") is not None and row.get("status") != "":
        status_number = _integer(row.get("status"), endpoint, f"{where}.status")
        if status_number not in _STATUSES:
            _bad(endpoint, f"{where}.status is unknown: {status_number}")
        status = _STATUSES[status_number]
    volume = _money(row.get("volume"), endpoint, f"{where}.volume")
    remain = decimal_field(row.get("remain_volume"), endpoint, f"{where}.remain_volume", optional=True)
    deal = row.get("deal_volume")
    if deal is None or deal == "":
        deal_volume = max(volume - remain, Decimal(0)) if remain is not None else Decimal(0)
    else:
        deal_volume = _money(deal, endpoint, f"{where}.deal_volume")
    if status is None:
        status = derived_status(volume, deal_volume, remain)
    return Order(
        id=ident,
        side=_SIDES[side_text],
        price=_money(row.get("price"), endpoint, f"{where}.price"),
        volume=volume,
        deal_volume=deal_volume,
        status=status,
        created_at=created_at_ms(row.get("created_at")),
    )


_STATUSES = {int(status): status for status in OrderStatus}
_SIDES = {side.value: side for side in Side}


def derived_status(volume: Decimal, deal: Decimal, remain: Decimal | None) -> OrderStatus:
    """The status an order's volumes say when its row has none: filled when all of it dealt; cancelled when
    nothing remains (``remain_volume`` 0) though not all of it dealt; else partially filled or new (open).

    What matters is kept exact: the dealt volume (the fills ledger learns it whatever the status). An order closed
    with some volume left cannot be told from an open one by volumes alone, so it reads as open, the cautious
    side: an open-order list filters nothing it should keep, and ``order_info`` still reports its fills.
    """
    if volume > 0 and deal >= volume:
        return OrderStatus.FILLED
    if remain is not None and remain <= 0:
        return OrderStatus.CANCELLED
    return OrderStatus.PARTIALLY_FILLED if deal > 0 else OrderStatus.NEW


def parse_orders_page(data: object, endpoint: str = "v2/new_order") -> tuple[int, tuple[Order, ...]]:
    """One page of open orders: the total ``count`` the server reports and the page's rows (all statuses).

    The rows are under ``resultList`` or, on some deployments, ``orderList``; the caller filters by status.
    Rows sharing one id make the whole page a ``BadResponse``: which of them is the truth cannot be told, and
    keeping one would hide an order that stands.
    """
    body = _obj(data, endpoint, "data")
    rows_value = body.get("resultList")
    if rows_value is None:
        rows_value = body.get("orderList")
    rows = _list(rows_value, endpoint, "resultList")
    count_value = body.get("count")
    missing = count_value is None or count_value == ""
    count = len(rows) if missing else _integer(count_value, endpoint, "count")
    if count < 0:
        _bad(endpoint, f"count is negative: {count}")
    if count > MAX_OPEN_ORDERS:
        _bad(endpoint, f"count {count} is beyond any real order book (at most {MAX_OPEN_ORDERS})")
    orders = tuple(parse_order(row, endpoint, f"resultList[{i}]") for i, row in enumerate(rows))
    seen: set[str] = set()
    for order in orders:
        if order.id in seen:
            _bad(endpoint, f"the page lists order {order.id} more than once")
        seen.add(order.id)
    return count, orders


def parse_order_info(data: object, endpoint: str = "order_info") -> Order:
    """The order of an ``order_info`` answer (``data.order_info``).

    Live deployments answer an id they do not know with code 0 and ``"order_info": null``: that is the order not
    found (``OrderNotFound``, a ``RejectedError`` as code 22 would be), never an order. An answer without the key
    at all is a ``BadResponse``.
    """
    body = _obj(data, endpoint, "data")
    if "order_info" in body and body["order_info"] is None:
        raise OrderNotFound("the exchange does not know this order (order_info: null)", endpoint=endpoint)
    info = body.get("order_info")
    if info is None:
        _bad(endpoint, "the answer has no order_info")
    return parse_order(info, endpoint, "order_info")


class OrderNotFound(RejectedError):
    """``order_info`` of an id the exchange does not know (``order_info: null`` with code 0)."""


def parse_created_order(data: object, endpoint: str = "create_order") -> str:
    """The id of the order a ``create_order`` answer reports (``data.order_id``, a number or numeric text)."""
    if not isinstance(data, Mapping) or data.get("order_id") in (None, ""):
        _bad(endpoint, "the answer has no order_id; the order may stand: read the open orders back")
    return order_id(data["order_id"], endpoint, "order_id")


def _group(raw: object, endpoint: str, where: str) -> ResultGroup:
    entry = _obj(raw, endpoint, where)
    ids_value = entry.get("order_id")
    if ids_value is None or ids_value == "":
        ids: tuple[str, ...] = ()
    elif isinstance(ids_value, list):
        present = [item for item in ids_value if item is not None and item != ""]
        ids = tuple(order_id(item, endpoint, f"{where}.order_id") for item in present)
    else:
        ids = (order_id(ids_value, endpoint, f"{where}.order_id"),)
    code = _text(entry.get("code")).strip()
    if not code:
        _bad(endpoint, f"{where} has no code")
    message = message_of(entry)
    return ResultGroup(code=code, message=message, order_ids=ids)


def parse_batch_answer(data: object, endpoint: str = "mass_replaceV2") -> BatchAnswer:
    """The result groups of a mass_replaceV2 answer, as filed by the exchange (all four documented shapes).

    Grouped entries (``order_id`` an array) and per-order entries (a scalar) both become ``ResultGroup``
    values; a failure with ``"order_id": ""`` or none at all becomes a group without ids. An answer with neither
    ``mass_place`` nor ``mass_cancel`` (``data: null`` included) says nothing of what happened: ``BadResponse``,
    never an empty success.
    """
    body = _obj(data, endpoint, "data") if data is not None else {}
    if body.get("mass_place") is None and body.get("mass_cancel") is None:
        _bad(endpoint, "the answer has neither mass_place nor mass_cancel")
    return BatchAnswer(
        place=tuple(
            _group(raw, endpoint, f"mass_place[{i}]")
            for i, raw in enumerate(_list(body.get("mass_place"), endpoint, "mass_place"))
        ),
        cancel=tuple(
            _group(raw, endpoint, f"mass_cancel[{i}]")
            for i, raw in enumerate(_list(body.get("mass_cancel"), endpoint, "mass_cancel"))
        ),
    )
