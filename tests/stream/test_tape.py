"""``rebalancer.stream.tape``: the record is whole only from the trade channel's acknowledgement, across no garbage
frame and no lost connection, and tells the trades, silences and lags of a window."""

from __future__ import annotations

from decimal import Decimal

from rebalancer.core.witness import KEEP_MS, SETTLE_MS
from rebalancer.models import Side
from rebalancer.scheduler.streaminbox import Inbox
from rebalancer.stream.client import Received
from rebalancer.stream.frames import Depth, SubAck, Trade, Trades
from rebalancer.stream.tape import MAX_ENTRIES, Tape

D = Decimal
URL = "ws://127.0.0.1:1/kline-api/ws"
KEY = (URL, "btcusdt")


def test_a_window_of_an_acknowledged_tape_tells_its_trades_and_its_longest_silence() -> None:
    tape = Tape()
    assert not tape.view(0, 10).covered  # nothing acknowledged yet
    tape.acknowledged(1_000)
    tape.heard(1_050, 5, [D("100")])
    tape.heard(3_050, 5, [D("99"), D("101")])
    tape.heard(3_100, 5)
    view = tape.view(1_000, 3_200)
    assert view.covered and list(view.prices) == [D("100"), D("99"), D("101")]
    assert view.longest_silence_ms == 2_000 and not view.lagging
    later = tape.view(3_000, 9_100)
    assert list(later.prices) == [D("99"), D("101")] and later.longest_silence_ms == 6_000  # since the last frame
    assert not tape.view(999, 3_200).covered  # a window that starts before the acknowledgement


def test_garbage_moves_the_start_on_and_a_lost_connection_voids_it_until_acknowledged_again() -> None:
    tape = Tape()
    tape.acknowledged(1_000)
    tape.broken(2_000, lost=False)
    assert not tape.view(1_500, 3_000).covered and tape.view(2_000, 3_000).covered
    tape.broken(4_000, lost=True)
    tape.broken(4_500, lost=False)
    assert not tape.view(5_000, 6_000).covered
    tape.acknowledged(5_000)
    assert tape.view(5_000, 6_000).covered and not tape.view(4_999, 6_000).covered


def test_a_lagging_frame_is_told_and_pruning_moves_the_start_on() -> None:
    tape = Tape()
    tape.acknowledged(0)
    tape.heard(10, SETTLE_MS + 1)
    assert tape.view(0, 20).lagging and not tape.view(11, 20).lagging
    for at in range(MAX_ENTRIES + 1):
        tape.heard(100 + at, 0, [D("1")])
    assert not tape.view(100, 10_000).covered and tape.view(101, 10_000).covered
    tape.heard(KEEP_MS + 10_000, 0)  # the trades before 10 000 are older than the record keeps
    assert not tape.view(100 + MAX_ENTRIES, KEEP_MS + 10_000).covered
    assert tape.view(101 + MAX_ENTRIES, KEEP_MS + 10_000).covered


def test_the_inbox_keeps_each_symbols_tape_from_its_frames() -> None:
    inbox = Inbox(clock=lambda: 50.0)
    inbox.frame(KEY, Received(SubAck("market_btcusdt_depth_step0", "ok"), "", 1_000))
    assert not inbox.tape(KEY).view(1_000, 1_000).covered  # the book's acknowledgement is not the trades'
    inbox.frame(KEY, Received(SubAck("market_btcusdt_trade_ticker", "error"), "", 1_000))
    assert not inbox.tape(KEY).view(1_000, 1_000).covered
    inbox.frame(KEY, Received(SubAck("market_btcusdt_trade_ticker", "ok"), "", 1_000))
    trade = Trade("1", Side.SELL, D("99"), D("1"), 1_100)
    inbox.frame(KEY, Received(Trades("btcusdt", 1_100, (trade,)), "", 1_105))
    inbox.frame(KEY, Received(Depth("btcusdt", 1_200, ((D("98"), D(1)),), ((D("100"), D(1)),)), "", 1_205))
    view = inbox.tape(KEY).view(1_000, 1_300)
    assert view.covered and list(view.prices) == [D("99")]
    inbox.garbage(URL)  # at the inbox's clock, 50 s
    assert not inbox.tape(KEY).view(1_000, 60_000).covered and inbox.tape(KEY).view(50_000, 50_000).covered
    inbox.lost(URL)
    assert not inbox.tape(KEY).view(50_000, 60_000).covered
