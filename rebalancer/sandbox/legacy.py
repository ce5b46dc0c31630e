"""The old /open/api paths some deployments still document alone: ``new_order`` and ``all_order`` (the v2 reads
under their first names; rows keep their ``tradeList``), ``market`` (every symbol's last price), ``get_trades``
(recent trades of a symbol) and ``get_records`` (candles).

The sandbox's market has no crowd trades: ``get_trades`` lists the accounts' fills and ``get_records`` builds
candles from them, with one candle at the mid when nothing traded in the last period.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from rebalancer.sandbox.book import Reject
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.openapi import known_rules

MAX_PERIOD_MINUTES = 43_200
"""The longest candle ``get_records`` serves: a month of 30 days."""
KEPT_TRADES = 100


def market(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET market: every symbol's last price, by symbol."""
    return {
        spec.symbol: spec.rules.format_price(engine.ticker(spec.symbol).last or engine.mid(spec.symbol))
        for spec in engine.specs()
    }


def get_trades(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET get_trades: the symbol's latest trades, newest first (``amount``, ``price``, ``id``, ``type``)."""
    rules = known_rules(engine, params)
    fills = [f for f in reversed(engine.recent_fills()) if f.symbol == rules.symbol][:KEPT_TRADES]
    return [
        {
            "amount": rules.format_volume(f.volume),
            "price": rules.format_price(f.price),
            "id": f.trade_id,
            "type": f.side.value.lower(),
            "ds": f.time,
        }
        for f in fills
    ]


def get_records(engine: Engine, params: Mapping[str, str], api_key: str | None, faults: Faults) -> Any:
    """GET get_records: candles of ``period`` minutes, oldest first, as ``[seconds, open, high, low, close, vol]``."""
    rules = known_rules(engine, params)
    raw = params.get("period", "")
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_PERIOD_MINUTES:
        raise Reject("100004", f"period must be 1 to {MAX_PERIOD_MINUTES} minutes")
    span = int(raw) * 60_000
    candles: dict[int, list[Decimal]] = {}
    for fill in engine.recent_fills():
        if fill.symbol != rules.symbol:
            continue
        start = fill.time - fill.time % span
        candle = candles.get(start)
        if candle is None:
            candles[start] = [fill.price, fill.price, fill.price, fill.price, fill.volume]
        else:
            candle[1], candle[2] = max(candle[1], fill.price), min(candle[2], fill.price)
            candle[3], candle[4] = fill.price, candle[4] + fill.volume
    now = engine.now_ms()
    current = now - now % span
    if current not in candles:
        mid = engine.mid(rules.symbol)
        candles[current] = [mid, mid, mid, mid, Decimal(0)]
    return [
        [start // 1000, *(rules.format_price(p) for p in candle[:4]), rules.format_volume(candle[4])]
        for start, candle in sorted(candles.items())
    ]
