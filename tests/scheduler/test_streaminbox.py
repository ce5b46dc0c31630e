"""``rebalancer.scheduler.streaminbox``: what the stream's threads hand the wake source, taken all at once."""

from __future__ import annotations

import threading
from decimal import Decimal

from rebalancer.core.wake import Book, Prints
from rebalancer.models import Side
from rebalancer.scheduler.streaminbox import Inbox
from rebalancer.stream.client import Received
from rebalancer.stream.frames import Depth, Other, Trade, Trades

D = Decimal
KEY = ("ws://127.0.0.1:1/kline-api/ws", "btcusdt")


def _depth(bid: str, ask: str, ts: int) -> Received:
    return Received(Depth("btcusdt", ts, ((D(bid), D(1)),), ((D(ask), D(1)),)), "", ts + 5)


def _trades(*prices: str, ts: int) -> Received:
    trades = tuple(Trade(str(i), Side.BUY, D(p), D(1), ts) for i, p in enumerate(prices))
    return Received(Trades("btcusdt", ts, trades), "", ts + 7)


def test_the_newest_book_and_every_trade_folded_are_taken_at_once() -> None:
    inbox = Inbox(clock=lambda: 100.0)
    inbox.frame(KEY, _depth("99", "101", 1))
    inbox.frame(KEY, _trades("100", "98", ts=2))
    inbox.frame(KEY, _depth("98", "100", 3))
    inbox.frame(KEY, _trades("103", ts=4))
    inbox.frame(KEY, Received(Other("market_btcusdt_kline_1min"), "", 9))  # not followed: ignored
    taken = inbox.take(0)
    assert taken is not None and list(taken.arrived) == [KEY]
    arrived = taken.arrived[KEY]
    assert arrived.book == Book(D(98), D(100), 3)
    assert arrived.prints == Prints(D(98), D(103), D(103), 4)
    assert arrived.lag_ms == [5, 7, 5, 7]
    again = inbox.take(0)
    assert again is not None and not again.arrived and not again.lost and not again.due


def test_held_back_wakes_come_back_when_due_and_lost_connections_are_told() -> None:
    now = [100.0]
    inbox = Inbox(clock=lambda: now[0])
    inbox.delay(100_500, "later")
    inbox.delay(100_000, "now")
    inbox.lost("ws://127.0.0.1:1/kline-api/ws")
    taken = inbox.take(0)
    assert taken is not None and taken.due == ["now"] and taken.lost == {"ws://127.0.0.1:1/kline-api/ws"}
    now[0] = 100.5
    taken = inbox.take(0)
    assert taken is not None and taken.due == ["later"]


def test_close_wakes_a_waiting_taker() -> None:
    inbox = Inbox()
    answers: list[object] = []
    taker = threading.Thread(target=lambda: answers.append(inbox.take(3600)))
    taker.start()
    inbox.close()
    taker.join(timeout=30)
    assert answers == [None]
