"""Hostile stream frames on their way to the wake-ups: parsed as the stream wake source parses them (``decode``,
``parse_message``, then ``book_of`` / ``prints_of``) and handed to a job's ``Watcher``."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import pytest

from rebalancer.core.plan import compute_plan
from rebalancer.core.wake import Watcher, book_of, prints_of
from rebalancer.models import Order, Ticker
from rebalancer.stream.frames import Depth, FrameError, Trades, decode, parse_message
from rebalancer.vocab import WakeReason
from tests.core.kit import job, side_ladder, snapshot

DEPTH = "market_btcusdt_depth_step0"
TRADES = "market_btcusdt_trade_ticker"
MARKET = frozenset({WakeReason.MARKET})
NOTHING: frozenset[WakeReason] = frozenset()


def _message(obj: dict[str, Any]) -> Any:
    return parse_message(decode(gzip.compress(json.dumps(obj).encode()), max_bytes=1 << 20))


def _watcher() -> Watcher:
    """A job whose last pass at bid 29990 / ask 30010 left exactly its ladder standing."""
    ladder = job(buy=side_ladder(levels=2), sell=side_ladder(levels=2))
    read = snapshot(ticker=Ticker(Decimal("29990"), Decimal("30010"), None))
    plan = compute_plan(ladder, read, None)
    watcher = Watcher(ladder, 3000)
    watcher.learn(read, [Order(str(i), a.side, a.price, a.volume) for i, a in enumerate(plan.actions, start=1)])
    return watcher


def _book(buys: list[list[str]], asks: list[list[str]]) -> frozenset[WakeReason]:
    depth = _message({"channel": DEPTH, "ts": 5, "tick": {"buys": buys, "asks": asks}})
    assert isinstance(depth, Depth)
    return _watcher().on_book(book_of(depth.bids, depth.asks, depth.ts_ms))


@pytest.mark.parametrize(
    ("buys", "asks", "raised"),
    [
        ([["29990", "1"]], [["30010", "1"]], NOTHING),
        ([["30020", "1"]], [["30010", "1"]], MARKET),  # crossed
        ([["29990", "1"]], [], MARKET),  # no asks
        ([], [], MARKET),  # empty
        ([["29990", "1"]], [["30010", "0"]], MARKET),  # the only ask has no volume
        ([["29980", "1"], ["29990", "1"]], [["30020", "1"], ["30010", "1"]], NOTHING),  # unsorted: best taken
    ],
)
def test_a_crossed_or_one_sided_book_raises_market(
    buys: list[list[str]], asks: list[list[str]], raised: frozenset[WakeReason]
) -> None:
    assert _book(buys, asks) == raised


@pytest.mark.parametrize(("price", "says"), [("0", "not positive"), ("-1", "not positive"), ("1e61", "out of range")])
def test_a_trade_at_an_impossible_price_never_reaches_a_watcher(price: str, says: str) -> None:
    frame = {
        "channel": TRADES,
        "ts": 1,
        "tick": {"data": [{"id": 1, "side": "buy", "price": price, "vol": 1, "ts": 1}]},
    }
    with pytest.raises(FrameError, match=says):
        _message(frame)  # the hub counts it as garbage; nothing is handed on


def test_a_trade_frame_folds_into_prints_that_reach_the_resting_orders() -> None:
    # Newest first, as some deployments list them: the last price is the latest trade's.
    data = [{"id": i, "side": "sell", "price": p, "vol": "0.1", "ts": 9 - i} for i, p in enumerate(["29850", "30000"])]
    trades = _message({"channel": TRADES, "ts": 2, "tick": {"data": data}})
    assert isinstance(trades, Trades)
    prints = prints_of((t.price, t.ts_ms) for t in trades.trades)
    assert prints is not None and prints.low == Decimal("29850") and prints.last == Decimal("29850")
    assert _watcher().on_prints(prints) == frozenset({WakeReason.TRADE})  # 29850 is the job's best buy
