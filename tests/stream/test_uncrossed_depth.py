"""The sandbox's depth push shows the book as its REST ticker does: an account's order that crosses the crowd does
not leave the pushed book crossed until the next tick fills it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from rebalancer.models import Side
from rebalancer.stream.client import Received, StreamHub
from rebalancer.stream.frames import Depth
from tests.stream.conftest import Streamed, wait_for

KEY, SECRET = "crossing-key", "crossing-secret"


@pytest.fixture
def hubs() -> Iterator[list[StreamHub]]:
    made: list[StreamHub] = []
    yield made
    for hub in made:
        hub.close()


@pytest.mark.parametrize("side", [Side.BUY, Side.SELL])
def test_an_order_crossing_the_crowd_never_shows_a_crossed_pushed_book(
    streamed: Streamed, hubs: list[StreamHub], side: Side
) -> None:
    engine = streamed.engine
    engine.add_account(KEY, SECRET, {"usdt": 10**9, "btc": 1000})
    books: list[Depth] = []

    def keep(frame: Received) -> None:
        if isinstance(frame.message, Depth):
            books.append(frame.message)

    hub = StreamHub(streamed.stream_url, backoff=(0.05, 0.5))
    hubs.append(hub)
    hub.subscribe("btcusdt", keep)
    wait_for(lambda: books, "the first book")
    crowd = books[-1]
    # Three crowd levels deep through the other side, for more than they hold: it takes them and the rest rests,
    # crossing the crowd's levels (the manual clock never ticks, so the crowd never fills it).
    through = crowd.asks[:3] if side is Side.BUY else crowd.bids[:3]
    price = through[-1][0]
    engine.place(KEY, "btcusdt", side, price, sum(v for _, v in through) + 1)

    def with_mine() -> Depth | None:
        return next((b for b in books if price in {p for p, _ in (b.bids if side is Side.BUY else b.asks)}), None)

    mine = wait_for(with_mine, "a pushed book with the order in it")
    best_bid, best_ask = mine.bids[0][0], mine.asks[0][0]
    assert best_bid < best_ask, (best_bid, best_ask)
    assert (best_bid if side is Side.BUY else best_ask) == price  # the order is the best of its side
    answer = requests.get(f"{streamed.url}/open/api/get_ticker", params={"symbol": "btcusdt"}, timeout=10).json()
    bid, ask = Decimal(answer["data"]["buy"]), Decimal(answer["data"]["sell"])
    assert (bid, ask) == ((price, price + Decimal("0.01")) if side is Side.BUY else (price - Decimal("0.01"), price))
    assert best_bid <= bid and best_ask >= ask  # nothing the ticker leaves out is pushed
