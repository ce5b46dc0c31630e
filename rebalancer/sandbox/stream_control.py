"""The controls of the sandbox's market stream, under ``/sandbox/`` beside the others (``control``):

- ``GET /sandbox/stream``: the stream's URL, each client's channels, the stalled channels.
- ``POST /sandbox/stream/drop``: cut every stream connection without a close frame.
- ``POST /sandbox/stream/stall?channel=C&on=1``: stop sending channel C (``on=0`` resumes); the socket stays open.
- ``POST /sandbox/stream/garbage?kind=K&count=N``: send N (1–100) garbage frames to every client; K is ``binary``,
  ``json``, ``text``, ``bomb`` (gzip bomb), ``huge`` (over 1 MiB), ``number`` (a 1000-digit price) or ``pings``
  (a flood of 100 pings).
- ``POST /sandbox/trade?symbol=S&side=buy|sell&price=P&volume=V``: print a crowd trade (``side`` is the taker's)
  on the stream at once; it fills nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from werkzeug.wrappers import Request

from rebalancer.models import Side
from rebalancer.sandbox.book import Reject
from rebalancer.sandbox.feed import GARBAGE_KINDS
from rebalancer.sandbox.stream import StreamServer

MAX_GARBAGE = 100
MAX_NUMBER_CHARS = 40


class StreamApp(Protocol):
    """What these controls need of the app: the stream served beside it, if any."""

    stream: StreamServer | None


def _stream(app: StreamApp) -> StreamServer:
    if app.stream is None:
        raise Reject("100004", "this sandbox serves no market stream")
    return app.stream


def _status(app: StreamApp, request: Request) -> Any:
    return _stream(app).status()


def _drop(app: StreamApp, request: Request) -> Any:
    return {"dropped": _stream(app).drop()}


def _stall(app: StreamApp, request: Request) -> Any:
    stream = _stream(app)
    name, on = request.args.get("channel", ""), request.args.get("on", "1")
    if not name or len(name) > 100:
        raise Reject("100004", "channel must name a channel, e.g. market_btcusdt_depth_step0")
    if on not in ("0", "1"):
        raise Reject("100004", "on must be 1 (stall) or 0 (resume)")
    stream.stall(name, on == "1")
    return {"stalled": sorted(stream.stalled)}


def _garbage(app: StreamApp, request: Request) -> Any:
    stream = _stream(app)
    kind, raw = request.args.get("kind", ""), request.args.get("count", "1")
    if kind not in GARBAGE_KINDS:
        raise Reject("100004", f"kind must be one of {', '.join(GARBAGE_KINDS)}")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 3 or not 1 <= int(raw) <= MAX_GARBAGE:
        raise Reject("100004", f"count must be a whole number from 1 to {MAX_GARBAGE}")
    return {"clients": stream.send_garbage(kind, int(raw))}


def _number(text: str, what: str) -> Decimal:
    try:
        value = Decimal(text) if len(text) <= MAX_NUMBER_CHARS else Decimal("NaN")
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0 or abs(value.adjusted()) > 20:
        raise Reject("100004", f"{what} must be a positive decimal number in range")
    return value


def _trade(app: StreamApp, request: Request) -> Any:
    stream = _stream(app)
    side = request.args.get("side", "").upper()
    if side not in ("BUY", "SELL"):
        raise Reject("100004", "side must be buy or sell (the taker's side)")
    price = _number(request.args.get("price", ""), "price")
    volume = _number(request.args.get("volume", ""), "volume")
    trade_id = stream.print_trade(request.args.get("symbol", ""), Side(side), price, volume)
    return {"trade_id": trade_id}


STREAM_ACTIONS: dict[tuple[str, str], Callable[[Any, Request], Any]] = {
    ("GET", "/sandbox/stream"): _status,
    ("POST", "/sandbox/stream/drop"): _drop,
    ("POST", "/sandbox/stream/stall"): _stall,
    ("POST", "/sandbox/stream/garbage"): _garbage,
    ("POST", "/sandbox/trade"): _trade,
}
