"""The sandbox stream's frames, as a live deployment sends them: JSON text with numbers as JSON numbers, gzipped.

Depth is the engine's book (the crowd's levels and the accounts' resting orders, best first, at most
``MAX_LEVELS`` a side) as the REST ticker sees it: without the crowd's levels an account's order crosses. Every
fill of an account's order prints as a trade at the order's price and volume; the taker is the crowd, so a filled
buy prints as a ``sell`` and a filled sell as a ``buy``. A trade printed through the controls is the crowd's alone
and fills nothing. Also here: the garbage the ``garbage`` fault sends.
"""

from __future__ import annotations

import functools
import gzip
import json
import time
from decimal import Decimal

from rebalancer.models import Side, format_decimal
from rebalancer.sandbox.book import Fill
from rebalancer.sandbox.engine import Engine
from rebalancer.stream.frames import DEPTH, TRADES, channel

MAX_LEVELS = 150
PATH = "/kline-api/ws"
GARBAGE_KINDS = ("binary", "json", "text", "bomb", "huge", "number", "pings")
BOMB_BYTES = 16 << 20
"""What the ``bomb`` garbage decompresses to (16 MiB of zeros, about 16 KiB on the wire)."""
HUGE_BYTES = 3 << 19
"""The ``huge`` garbage frame's size on the wire (1.5 MiB: over a client's 1 MiB bound, under its hard limit)."""
PING_FLOOD = 100


def wall_ms() -> int:
    """Wall-clock time in milliseconds (a frame's ``ts`` is when it was sent)."""
    return time.time_ns() // 1_000_000


def packed(text: str) -> bytes:
    """``text`` as a live server sends it: gzip-compressed UTF-8 (no timestamp, so the bytes are reproducible)."""
    return gzip.compress(text.encode("utf-8"), mtime=0)


def _levels(levels: list[tuple[Decimal, Decimal]]) -> str:
    return "[" + ",".join(f"[{format_decimal(p)},{format_decimal(q)}]" for p, q in levels[:MAX_LEVELS]) + "]"


def depth_text(engine: Engine, symbol: str, ts_ms: int) -> str:
    """The ``depth_step0`` push of ``symbol``'s book now (``buys`` and ``asks``, best first), as the ticker sees it
    (``Engine.depth``: without the crowd's levels an account's order crosses, as REST depth shows it)."""
    bids, asks = engine.depth(symbol)
    return (
        f'{{"channel":"{channel(symbol, DEPTH)}","ts":{ts_ms},'
        f'"tick":{{"asks":{_levels(asks)},"buys":{_levels(bids)}}}}}'
    )


def trade_entry(trade_id: int, taker: Side, price: Decimal, volume: Decimal, ts_ms: int) -> str:
    """One entry of a ``trade_ticker`` push's ``data``."""
    ds = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts_ms / 1000))
    return (
        f'{{"id":{trade_id},"side":"{taker.value.lower()}","price":{format_decimal(price)},'
        f'"vol":{format_decimal(volume)},"amount":{format_decimal(price * volume)},"ts":{ts_ms},"ds":"{ds}"}}'
    )


def fill_entry(fill: Fill) -> str:
    """A fill of an account's order as the trade it printed: the taker is the account's order when it took the
    crowd's level on arrival, else the crowd, on the other side."""
    taker = fill.side if fill.taker else (Side.SELL if fill.side is Side.BUY else Side.BUY)
    return trade_entry(fill.trade_id, taker, fill.price, fill.volume, fill.time)


def trades_text(symbol: str, entries: list[tuple[int, int, str]], ts_ms: int) -> str:
    """The ``trade_ticker`` push of ``(id, ts, entry)`` trades, in the order given."""
    top_id = max(i for i, _, _ in entries)
    top_ts = max(t for _, t, _ in entries)
    data = ",".join(e for _, _, e in entries)
    return (
        f'{{"channel":"{channel(symbol, TRADES)}","ts":{ts_ms},"tick":{{"id":{top_id},"ts":{top_ts},"data":[{data}]}}}}'
    )


def ticker_text(engine: Engine, symbol: str, ts_ms: int) -> str:
    """The 24 h ``ticker`` push of ``symbol`` (no bid or ask, as on a live deployment)."""
    view = engine.market_view(symbol)
    last = view.ticker.last if view.ticker.last is not None else engine.mid(symbol)
    return json.dumps(
        {
            "channel": channel(symbol, "ticker"),
            "ts": ts_ms,
            "tick": {
                "close": format_decimal(last),
                "open": format_decimal(view.open),
                "high": format_decimal(view.high),
                "low": format_decimal(view.low),
                "vol": format_decimal(view.volume),
                "lower_frame": "0",
            },
        }
    )


def ack_text(event: str, name: str, cb_id: str, status: str, ts_ms: int) -> str:
    """The acknowledgement of a ``sub`` (``subed``) or ``unsub`` (``unsubed``)."""
    return json.dumps({"event_rep": event, "channel": name, "cb_id": cb_id, "ts": ts_ms, "status": status})


@functools.cache
def _bomb() -> bytes:
    return gzip.compress(b'{"channel":"' + b"0" * BOMB_BYTES + b'"}', mtime=0)


def garbage(kind: str) -> list[bytes | str]:
    """The frames one ``garbage`` fault of ``kind`` sends; ValueError naming the kinds for an unknown one."""
    if kind == "binary":
        return [b"\x00\x01 not gzip"]
    if kind == "json":
        return [packed('{"channel": "market_btcusdt_depth_step0", "tick": {')]
    if kind == "text":
        return ["not json at all"]
    if kind == "bomb":
        return [_bomb()]
    if kind == "huge":
        return [b"\x1f\x8b" + bytes(HUGE_BYTES)]
    if kind == "number":
        digits = "9" * 1_000
        return [packed(f'{{"channel":"market_btcusdt_depth_step0","ts":1,"tick":{{"buys":[[{digits},1]]}}}}')]
    if kind == "pings":
        return [packed(json.dumps({"ping": wall_ms() + i})) for i in range(PING_FLOOD)]
    raise ValueError(f"garbage kind must be one of {', '.join(GARBAGE_KINDS)}, not {kind!r}")
