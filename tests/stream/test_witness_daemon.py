"""The stream as a witness of no fill, through a real daemon against the sandbox's stream over loopback: an order the
job cancelled in a calm market is forgotten without an ``order_info`` request; a trade at its price, a dropped
stream, or a fill printed just before our cancel sends the read, and the fill is learnt. A trade channel stalled
while the connection stays up hides a fill from the witness: the audited read catches it, and the stream is
distrusted."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancer.core.witness import SETTLE_MS
from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.streamfed import Witness
from rebalancer.exchange.funds import forget_ledgers
from rebalancer.exchange.marketdata import forget as forget_market_data
from rebalancer.models import Order, Side
from rebalancer.stream.frames import TRADES, channel
from tests.daemonkit import running
from tests.stream.conftest import Streamed, wait_for
from tests.stream.test_stream_wakes import _following, _job, _mid, _orders, _sample, _settled

D = Decimal
ORDER_INFO = "/open/api/order_info"
OPEN_ORDERS = ("/open/api/v2/new_order", "/open/api/new_order")
BATCH = "/open/api/mass_replaceV2"


@pytest.fixture
def calm(streamed: Streamed) -> Streamed:
    forget_market_data()  # the clients share market data per URL, and the URL outlives the world
    forget_ledgers()
    return streamed


def _count(world: Streamed, *paths: str) -> int:
    counts = world.server.app.request_counts()
    return sum(counts.get(path, 0) for path in paths)


def _witness(daemon: Daemon) -> Witness:
    witness = daemon.streams.witness("s1")
    assert witness is not None
    return witness


def _move(world: Streamed) -> list[Order]:
    """Move the market out of the tolerance, short of any order: the woken pass cancels the lowest buy and the
    lowest sell (the other levels line up with the new ladder); the orders before the move."""
    old = _orders(world)
    world.engine.set_price("btcusdt", _mid(world) * D("1.003"))
    return old


def _replaced(daemon: Daemon, world: Streamed, old: list[Order]) -> list[Order]:
    """Wait until the lowest buy and sell of ``old`` were cancelled and replaced, and the stream had time to tell
    any trade; those."""
    gone = _cancelled(daemon, world, old)
    assert sorted(o.price for o in gone) == sorted([_lowest(old, Side.BUY).price, _lowest(old, Side.SELL).price])
    return gone


def _cancelled(daemon: Daemon, world: Streamed, old: list[Order]) -> list[Order]:
    """Wait until some of ``old`` were cancelled and replaced, and the stream had time to tell any trade; those."""
    wait_for(lambda: len(_orders(world)) == 6 and {o.id for o in old} - {o.id for o in _orders(world)}, "moved")
    gone = [o for o in old if o.id not in {n.id for n in _orders(world)}]
    witness = _witness(daemon)
    wait_for(lambda: {o.id for o in gone} <= set(witness.cancelled), "the witness saw our cancel")
    done = max(witness.cancelled[o.id] for o in gone) + SETTLE_MS
    wait_for(lambda: witness.now_ms() >= done, "the cancel settled")
    return gone


def _filled_then_cancelled(daemon: Daemon, world: Streamed) -> tuple[Order, list[Order]]:
    """Move the market; the lowest buy is listed unfilled by the move's pass, filled 0.004 while that pass's batch
    waits at the sandbox, then cancelled by it. That buy, and the orders the batch cancelled."""
    faults = world.server.app.faults
    faults.endpoints, faults.latency = {BATCH}, 2.0  # the batch waits at the sandbox before it cancels
    reads = _count(world, *OPEN_ORDERS)
    old = _move(world)
    buy = _lowest(old, Side.BUY)
    wait_for(lambda: _count(world, *OPEN_ORDERS) > reads, "the move's pass read the book, its batch waits")
    world.engine.fill(int(buy.id), "0.004")
    gone = _replaced(daemon, world, old)
    faults.latency = 0.0
    return buy, gone


def _lowest(orders: list[Order], side: Side) -> Order:
    return min((o for o in orders if o.side is side), key=lambda o: o.price)


def _watched(daemon: Daemon) -> set[str]:
    return set(daemon.store.watched_orders("s1"))


def test_orders_cancelled_in_a_calm_market_are_forgotten_without_an_order_info_read(
    tmp_path: Path, calm: Streamed
) -> None:
    with running(tmp_path, [_job(tmp_path, calm, min_gap="2s")]) as daemon:
        _settled(daemon, calm)
        infos = _count(calm, ORDER_INFO)
        gone = _replaced(daemon, calm, _move(calm))
        daemon.run_pass_now("s1")
        assert _count(calm, ORDER_INFO) == infos
        assert _witness(daemon).skipped == len(gone) == 2
        assert not _watched(daemon) & {o.id for o in gone}, "forgotten"
        assert not daemon.store.fills("s1")
        wait_for(lambda: _sample(daemon, "rebalancer_order_info_skipped_total", job="s1") == 2, "the metric")


def test_a_trade_at_a_cancelled_orders_price_sends_its_order_info_read(tmp_path: Path, calm: Streamed) -> None:
    with running(tmp_path, [_job(tmp_path, calm, min_gap="2s")]) as daemon:
        _settled(daemon, calm)
        infos = _count(calm, ORDER_INFO)
        gone = _replaced(daemon, calm, _move(calm))
        buy = next(o for o in gone if o.side is Side.BUY)
        calm.control("trade", symbol="btcusdt", side="buy", price=str(buy.price), volume="0.01")  # a BUY taker at it
        wait_for(lambda: not _watched(daemon) & {o.id for o in gone}, "the pass after the trade (it reaches our buys)")
        assert _count(calm, ORDER_INFO) == infos + 1  # only the buy the trade reached; not the sell
        assert _witness(daemon).skipped == 1


def test_a_dropped_stream_sends_every_read(tmp_path: Path, calm: Streamed) -> None:
    with running(tmp_path, [_job(tmp_path, calm, min_gap="2s")]) as daemon:
        _settled(daemon, calm)
        infos = _count(calm, ORDER_INFO)
        gone = _replaced(daemon, calm, _move(calm))
        fallbacks = _sample(daemon, "rebalancer_stream_fallbacks_total", job="s1")
        calm.control("stream/drop")
        wait_for(lambda: _sample(daemon, "rebalancer_stream_fallbacks_total", job="s1") > fallbacks, "a fallback")
        wait_for(lambda: _following(daemon), "back on the stream")
        daemon.run_pass_now("s1")
        wait_for(lambda: not _watched(daemon) & {o.id for o in gone}, "the cancelled orders forgotten")
        assert _count(calm, ORDER_INFO) == infos + 2
        assert _witness(daemon).skipped == 0


def test_a_fill_printed_just_before_our_cancel_is_learnt(tmp_path: Path, calm: Streamed) -> None:
    with running(tmp_path, [_job(tmp_path, calm, min_gap="5s")]) as daemon:
        _settled(daemon, calm)
        infos = _count(calm, ORDER_INFO)
        buy, gone = _filled_then_cancelled(daemon, calm)  # its trade printed on the stream
        wait_for(lambda: not _watched(daemon) & {o.id for o in gone}, "the pass after the cancel")
        (fill,) = daemon.store.fills("s1")
        assert (fill.order_id, fill.volume) == (buy.id, D("0.004"))
        assert _count(calm, ORDER_INFO) == infos + 1
        assert _witness(daemon).skipped == 1


@pytest.fixture
def stalled_trades(calm: Streamed) -> Iterator[Streamed]:
    """The sandbox stops pushing btcusdt's trades; the connection and the depth frames go on."""
    calm.control("stream/stall", channel=channel("btcusdt", TRADES), on="1")
    try:
        yield calm
    finally:
        calm.control("stream/stall", channel=channel("btcusdt", TRADES), on="0")


def test_an_audit_catches_a_fill_a_stalled_trade_channel_hid_and_distrusts_the_stream(
    tmp_path: Path, stalled_trades: Streamed, caplog: pytest.LogCaptureFixture
) -> None:
    world = stalled_trades
    caplog.set_level(logging.WARNING, logger="rebalancer")
    with running(tmp_path, [_job(tmp_path, world, min_gap="5s")]) as daemon:
        _settled(daemon, world)
        _witness(daemon).audit_every = 1  # every read the witness would save is audited
        infos = _count(world, ORDER_INFO)
        buy, gone = _filled_then_cancelled(daemon, world)  # its trade never pushed
        daemon.run_pass_now("s1")  # no trade wakes it: the stream printed none
        wait_for(lambda: not _watched(daemon) & {o.id for o in gone}, "the pass after the cancel")
        (fill,) = daemon.store.fills("s1")
        assert (fill.order_id, fill.volume) == (buy.id, D("0.004"))
        assert _count(world, ORDER_INFO) == infos + 2  # both audited: the sell (clean) and the buy (caught)
        witness = _witness(daemon)
        assert witness.trust.distrusted and witness.skipped == 0
        (line,) = [r for r in caplog.records if r.getMessage().startswith("market stream distrusted")]
        assert (line.__dict__["job"], line.__dict__["order"]) == ("s1", buy.id)
        assert line.__dict__["stream"] == daemon.feed("s1")["stream"]  # type: ignore[index]
        wait_for(
            lambda: _sample(daemon, "rebalancer_order_info_audits_total", job="s1", result="missed_fill") == 1,
            "the metric",
        )

        witness.audit_every = 10**9  # no more audits: a distrusted witness reads all the same
        infos = _count(world, ORDER_INFO)
        gone = _cancelled(daemon, world, _move(world))
        daemon.run_pass_now("s1")
        wait_for(lambda: not _watched(daemon) & {o.id for o in gone}, "the cancelled orders forgotten")
        assert _count(world, ORDER_INFO) == infos + len(gone)
        assert witness.skipped == 0 and len(daemon.store.fills("s1")) == 1
