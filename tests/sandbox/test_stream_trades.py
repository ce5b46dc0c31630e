"""The sandbox's trade push names the taker as a live venue does: the crowd when it came to an account's resting
order (the order was the maker, the taker on the other side), the account's order when it was marketable on arrival
and took the crowd's levels at once. Real websockets on loopback; every wait is a condition with a deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from rebalancer.models import Side
from rebalancer.sandbox.book import Fill
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.stream.client import Received, StreamHub
from rebalancer.stream.frames import Depth, Trade, Trades

KEY, SECRET = "taker-key", "taker-secret"
DEADLINE = 20.0


def _wait(condition: Callable[[], Any], what: str) -> Any:
    end = time.monotonic() + DEADLINE
    while not (value := condition()):
        if time.monotonic() > end:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        time.sleep(0.01)
    return value


@pytest.fixture
def served() -> Iterator[tuple[SandboxServer, list[Received]]]:
    """A manual-clock world (it moves only when the test moves it) with its stream, and the frames of btcusdt."""
    engine = Engine.create(seed=7, clock="manual")
    engine.add_account(KEY, SECRET, {"usdt": 10**9, "btc": 1000})
    server = SandboxServer(engine, Faults(rate_limits=False), stream=True, ping_every=0.2).start()
    frames: list[Received] = []
    assert server.stream_url is not None
    hub = StreamHub(server.stream_url, backoff=(0.05, 0.5))
    hub.subscribe("btcusdt", frames.append)
    try:
        _wait(lambda: [f for f in frames if isinstance(f.message, Depth)], "the first book")
        yield server, frames
    finally:
        hub.close()
        server.stop()


def _fills(engine: Engine, order_id: int) -> list[Fill]:
    return [f for f in engine.recent_fills() if f.order_id == order_id]


def _printed(frames: list[Received], fills: list[Fill]) -> list[Trade]:
    """The pushed trades of ``fills``, waited for until every one of them has been pushed."""
    ids = {str(f.trade_id) for f in fills}

    def pushed() -> list[Trade]:
        found = [t for f in list(frames) if isinstance(f.message, Trades) for t in f.message.trades if t.id in ids]
        return found if len(found) == len(ids) else []

    return _wait(pushed, "the order's fills pushed")


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_an_order_marketable_on_arrival_is_the_taker_of_its_fills(
    served: tuple[SandboxServer, list[Received]], side: Side
) -> None:
    engine, frames = served[0].engine, served[1]
    bids, asks = engine.depth("btcusdt")
    price, volume = asks[1] if side is Side.BUY else bids[1]  # two crowd levels deep, for less than they hold
    fills = _fills(engine, engine.place(KEY, "btcusdt", side, price, volume))
    assert fills and sum(f.volume for f in fills) == volume  # filled at once, at the crowd's levels
    printed = _printed(frames, fills)
    assert {t.side for t in printed} == {side}  # the order took the levels (before: the other side)
    assert [t.price for t in printed] == [f.price for f in fills]


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_a_resting_order_the_crowd_comes_to_is_the_maker(
    served: tuple[SandboxServer, list[Received]], side: Side
) -> None:
    engine, frames = served[0].engine, served[1]
    price = engine.mid("btcusdt") + (-40 if side is Side.BUY else 40)
    order_id = engine.place(KEY, "btcusdt", side, price, Decimal("0.0040"))
    assert not _fills(engine, order_id)  # it rests
    engine.fill(order_id, "0.0040")
    printed = _printed(frames, _fills(engine, order_id))
    assert {t.side for t in printed} == {Side.SELL if side is Side.BUY else Side.BUY}  # the crowd took it


def test_a_fill_saved_before_the_taker_was_kept_reads_as_a_makers() -> None:
    saved = {"trade_id": 1, "order_id": 2, "symbol": "btcusdt", "side": "BUY", "price": "1", "volume": "1", "time": 3}
    assert Fill.from_dict(saved).taker is False
    taken = Fill(1, 2, "btcusdt", Side.BUY, Decimal(1), Decimal(1), 3, taker=True)
    assert Fill.from_dict(taken.to_dict()) == taken
