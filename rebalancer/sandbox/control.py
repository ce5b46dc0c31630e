"""The sandbox's inspection and control endpoints, under ``/sandbox/`` (unsigned; the app admits loopback
only).

- ``GET /sandbox/state``: clock, every symbol's mid, ticker and top of book, every account's balances and open
  orders (never the secrets), recent fills.
- ``POST /sandbox/advance?seconds=N``: run N one-second ticks of the market (at most an hour's per call).
- ``POST /sandbox/price?symbol=S&price=P``: put a symbol's mid at a price (crossed orders fill).
- ``GET /sandbox/faults`` / ``POST /sandbox/faults`` (JSON object body): read or change the fault settings.
- ``GET /sandbox/requests``: the recent /open/api requests with their HTTP status and answer code.
- ``GET /sandbox/request-counts``: how many requests each /open/api path received since the world was loaded.
- ``/sandbox/stream...`` and ``/sandbox/trade``: the market stream's controls and faults (``stream_control``).

Answers use the same envelope as /open/api; a refused control input is HTTP 400 with code ``100004`` and says
why. Inputs are bounded so that no request can stall or crash the server: ``seconds`` up to an hour, a faults body
of at most 64 KiB nested at most 4 deep, ``latency`` up to a minute.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from rebalancer.models import format_decimal
from rebalancer.sandbox.book import Reject
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.openapi import envelope
from rebalancer.sandbox.stream_control import STREAM_ACTIONS

TOP_LEVELS = 10
SHOWN_FILLS = 100
MAX_ADVANCE_SECONDS = 3600
MAX_FAULTS_BODY = 64 * 1024
MAX_FAULTS_DEPTH = 4


class SandboxApp(Protocol):
    """What the controls need of the app that serves them (``rebalancer.sandbox.app.SandboxApp``)."""

    engine: Engine
    faults: Faults

    def save(self) -> None:
        """Save the world, if the app keeps one on disk."""

    def request_log(self) -> list[dict[str, Any]]:
        """The most recent /open/api requests, oldest first."""

    def request_counts(self) -> dict[str, int]:
        """How many /open/api requests each path received since the last reset."""


def state(engine: Engine) -> dict[str, Any]:
    """A readable picture of the world, for people and tests; secrets are left out."""
    with engine.lock:
        symbols: dict[str, Any] = {}
        for spec in engine.specs():
            rules = spec.rules
            ticker = engine.ticker(spec.symbol)
            bids, asks = engine.depth(spec.symbol)
            symbols[spec.symbol] = {
                "mid": rules.format_price(engine.mid(spec.symbol)),
                "bid": None if ticker.bid is None else rules.format_price(ticker.bid),
                "ask": None if ticker.ask is None else rules.format_price(ticker.ask),
                "bids": [[format_decimal(p), format_decimal(q)] for p, q in bids[:TOP_LEVELS]],
                "asks": [[format_decimal(p), format_decimal(q)] for p, q in asks[:TOP_LEVELS]],
            }
        accounts: dict[str, Any] = {}
        for api_key in sorted(engine.accounts):
            balances = engine.balances(api_key)
            orders = [
                {
                    "id": o.id,
                    "symbol": s,
                    "side": o.side.value,
                    "price": format_decimal(o.price),
                    "volume": format_decimal(o.volume),
                    "deal_volume": format_decimal(o.deal_volume),
                    "status": int(o.status),
                }
                for s in sorted(engine.markets)
                for o in engine.open_order_records(api_key, s)
            ]
            accounts[api_key] = {
                "balances": {
                    c: {"available": format_decimal(b.available), "locked": format_decimal(b.locked)}
                    for c, b in balances.coins.items()
                },
                "open_orders": orders,
            }
        fills = [f.to_dict() for f in engine.recent_fills()[-SHOWN_FILLS:]]
        return {
            "seed": engine.seed,
            "clock": engine.clock,
            "clock_ms": engine.clock_ms,
            "symbols": symbols,
            "accounts": accounts,
            "fills": fills,
        }


def _advance(app: SandboxApp, request: Request) -> Any:
    raw = request.args.get("seconds", "")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10:
        raise Reject("100004", f"seconds must be a whole number from 0 to {MAX_ADVANCE_SECONDS}")
    if int(raw) > MAX_ADVANCE_SECONDS:
        raise Reject("100004", f"seconds must be at most {MAX_ADVANCE_SECONDS} per call; call again for more")
    app.engine.advance(int(raw))
    app.save()
    return {
        "clock_ms": app.engine.clock_ms,
        "mids": {s.symbol: str(app.engine.mid(s.symbol)) for s in app.engine.specs()},
    }


def _price(app: SandboxApp, request: Request) -> Any:
    symbol, raw = request.args.get("symbol", ""), request.args.get("price", "")
    try:
        price = Decimal(raw)
    except InvalidOperation as exc:
        raise Reject("100004", "price must be a decimal number") from exc
    app.engine.set_price(symbol, price)
    app.save()
    return {"symbol": symbol, "mid": str(app.engine.mid(symbol))}


def _faults(app: SandboxApp, request: Request) -> Any:
    if request.method == "POST":
        if (request.content_length or 0) > MAX_FAULTS_BODY:
            raise Reject("100004", f"the fault settings body is larger than {MAX_FAULTS_BODY // 1024} KiB")
        body = request.stream.read(MAX_FAULTS_BODY + 1)
        if len(body) > MAX_FAULTS_BODY:
            raise Reject("100004", f"the fault settings body is larger than {MAX_FAULTS_BODY // 1024} KiB")
        try:
            changes = json.loads(body.decode("utf-8") or "{}")
        except RecursionError:
            raise Reject("100004", f"bad fault settings: nested deeper than {MAX_FAULTS_DEPTH}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise Reject("100004", f"bad fault settings: not JSON ({exc})") from None
        if _depth(changes) > MAX_FAULTS_DEPTH:
            raise Reject("100004", f"bad fault settings: nested deeper than {MAX_FAULTS_DEPTH}")
        if not isinstance(changes, dict):
            raise Reject("100004", "bad fault settings: the body must be a JSON object")
        try:
            app.faults.update(changes)
        except (ValueError, TypeError, KeyError, OverflowError) as exc:
            raise Reject("100004", f"bad fault settings: {exc}") from None
    return app.faults.to_dict()


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), counted without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            level += 1
            deepest = max(deepest, level)
            stack.extend((child, level) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


ACTIONS: dict[tuple[str, str], Callable[[SandboxApp, Request], Any]] = {
    ("GET", "/sandbox/state"): lambda app, request: state(app.engine),
    ("POST", "/sandbox/advance"): _advance,
    ("POST", "/sandbox/price"): _price,
    ("GET", "/sandbox/faults"): _faults,
    ("POST", "/sandbox/faults"): _faults,
    ("GET", "/sandbox/requests"): lambda app, request: app.request_log(),
    ("GET", "/sandbox/request-counts"): lambda app, request: app.request_counts(),
    **STREAM_ACTIONS,
}


def handle(app: SandboxApp, request: Request) -> Response:
    """Answer one /sandbox/ request (the caller has checked that it comes from loopback)."""
    action = ACTIONS.get((request.method, request.path))
    if action is None:
        known = any(path == request.path for _, path in ACTIONS)
        return envelope("405" if known else "404", "unknown control", None, 405 if known else 404)
    app.engine.catch_up()
    try:
        return envelope("0", "suc", action(app, request))
    except Reject as exc:
        return envelope(exc.code, exc.msg, None, 400)
