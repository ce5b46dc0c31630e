"""Stream wake-ups through a real daemon against the sandbox's stream over loopback: a price move or a trade
through a resting order runs a pass at once (the timer is an hour away), a calm market costs no REST request,
garbage wakes nothing, a dropped or silent stream falls back to polling and comes back, ``min_gap`` holds.
Every wait is a condition with a generous deadline."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.exchange.funds import forget_ledgers
from rebalancer.exchange.marketdata import forget as forget_market_data
from rebalancer.job import Job
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY
from rebalancer.state.store import StateStore
from tests.stream.conftest import Streamed, wait_for

D = Decimal
ENV = {"REBALANCER_API_KEY": DEMO_API_KEY, "REBALANCER_SECRET_KEY": DEMO_SECRET_KEY}
TICKER_PATHS = ("/open/api/get_ticker", "/open/api/get_allticker")


def _job(tmp_path: Path, streamed: Streamed, name: str = "s1", min_gap: str = "100ms") -> Job:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""\
version: 1
name: {name}
symbol: btcusdt
exchange: {{url: "{streamed.url}", stream: "{streamed.stream_url}"}}
schedule: {{every: 1h, min_gap: {min_gap}}}
reference: mid
ladder:
  buy: {{levels: 3, first: 0.5%, step: 0.25%, size: "0.01"}}
  sell: {{levels: 3, first: 0.5%, step: 0.25%, size: "0.01"}}
tolerance: {{price: 0.1%, size: 10%}}
limits: {{}}
ownership: symbol
"""
    )
    return load_job(path)


@pytest.fixture
def world(streamed: Streamed) -> Streamed:
    forget_market_data()  # the clients share market data per URL, and the URL outlives the world
    forget_ledgers()
    return streamed


@contextlib.contextmanager
def running(tmp_path: Path, job: Job, **kwargs: float) -> Iterator[Daemon]:
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        daemon = Daemon(store, opener=lambda j: open_exchange(j, ENV), stop_wait=10, **kwargs)  # type: ignore[arg-type]
        daemon.start([job])
        try:
            yield daemon
        finally:
            daemon.stop()


def _sample(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


def _passes(daemon: Daemon, name: str = "s1") -> int:
    return len(daemon.store.history(name, limit=1000))


def _orders(world: Streamed) -> list:
    return world.engine.open_orders(DEMO_API_KEY, "btcusdt")


def _mid(world: Streamed) -> Decimal:
    mid = world.engine.market_view("btcusdt").ticker.mid
    assert mid is not None
    return mid


def _tickers(world: Streamed) -> int:
    counts = world.server.app.request_counts()
    return sum(counts.get(path, 0) for path in TICKER_PATHS)


def _following(daemon: Daemon, name: str = "s1") -> bool:
    feed = daemon.feed(name)
    return feed is not None and feed["source"] == "stream"


def _learnt(daemon: Daemon, name: str = "s1") -> int:
    feed = daemon.feed(name)
    return 0 if feed is None else int(feed["learnt"])


def _settled(daemon: Daemon, world: Streamed) -> None:
    """The first (timer) pass placed the ladder, its orders are what the job watches, and the stream feeds it."""
    wait_for(lambda: len(_orders(world)) == 6 and _learnt(daemon) >= 1, "the first pass placed six orders")
    wait_for(lambda: _following(daemon), "the job follows the stream")


def _handled(daemon: Daemon, frames_before: float) -> float:
    """Wait until the source has handed the job frames after ``frames_before`` (its lag histogram counts them)."""
    count = "rebalancer_stream_frame_lag_seconds_count"
    label = daemon.feed("s1")["stream"]  # type: ignore[index]
    return wait_for(  # type: ignore[no-any-return]
        lambda: (n := _sample(daemon, count, stream=label)) > frames_before and n, "the source handled the frames"
    )


def test_a_price_move_sends_a_batch_at_once_with_prices_from_the_stream(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, _job(tmp_path, world)) as daemon:
        _settled(daemon, world)
        tickers = _tickers(world)
        target = _mid(world) * D("1.003")  # out of the 0.1 % tolerance, short of the first level (0.5 %): no fill
        world.engine.set_price("btcusdt", target)
        moved = _mid(world)
        wait_for(
            lambda: (
                len(_orders(world)) == 6
                and all(o.price < moved for o in _orders(world) if o.side is Side.BUY)
                and max(o.price for o in _orders(world) if o.side is Side.BUY) > moved * D("0.994")
            ),
            "the ladder followed the move",
        )
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="reference") >= 1
        assert daemon.feed("s1")["last_wake"] == "reference"  # type: ignore[index]
        assert _tickers(world) == tickers  # the woken pass read its prices from the stream, not a ticker


def test_a_trade_through_a_resting_order_runs_a_pass_for_trade(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, _job(tmp_path, world)) as daemon:
        _settled(daemon, world)
        best_buy = max(o.price for o in _orders(world) if o.side is Side.BUY)
        passes = _passes(daemon)
        world.control("trade", symbol="btcusdt", side="sell", price=str(_mid(world)), volume="0.01")  # reaches none
        world.control("trade", symbol="btcusdt", side="sell", price=str(best_buy), volume="0.01")  # at the best buy
        wait_for(lambda: _passes(daemon) > passes, "a pass after the trade")
        assert daemon.feed("s1")["last_wake"] == "trade"  # type: ignore[index]
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="trade") == 1


def test_a_calm_market_costs_no_rest_request_and_garbage_wakes_nothing(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, _job(tmp_path, world)) as daemon:
        _settled(daemon, world)
        counts, passes = world.server.app.request_counts(), _passes(daemon)
        stream = daemon.feed("s1")["stream"]  # type: ignore[index]
        garbage = _sample(daemon, "rebalancer_stream_garbage_total", stream=stream)
        for kind in ("json", "text", "binary", "number", "huge", "bomb"):
            world.control("stream/garbage", kind=kind, count="2")
        wait_for(
            lambda: _sample(daemon, "rebalancer_stream_garbage_total", stream=stream) >= garbage + 12,
            "the garbage was counted",
        )
        # Then frames it can read, none of them a reason to wake: a print between the job's orders, twice.
        handled = _handled(daemon, 0)
        for _ in range(2):
            world.control("trade", symbol="btcusdt", side="buy", price=str(_mid(world)), volume="0.01")
        _handled(daemon, handled + 1)
        assert world.server.app.request_counts() == counts  # no REST request of any kind
        assert _passes(daemon) == passes
        assert _sample(daemon, "rebalancer_stream_connected", stream=stream) == 1
        assert _following(daemon)


def test_a_dropped_stream_falls_back_to_polling_then_follows_it_again(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, _job(tmp_path, world)) as daemon:
        _settled(daemon, world)
        assert _sample(daemon, "rebalancer_stream_polling", job="s1") == 0
        stream = daemon.feed("s1")["stream"]  # type: ignore[index]
        reconnects = _sample(daemon, "rebalancer_stream_reconnects_total", stream=stream)
        world.control("stream/drop")
        wait_for(lambda: _sample(daemon, "rebalancer_stream_fallbacks_total", job="s1") >= 1, "a fallback")
        wait_for(
            lambda: _sample(daemon, "rebalancer_stream_reconnects_total", stream=stream) > reconnects, "reconnected"
        )
        wait_for(lambda: _following(daemon), "back on the stream (the snapshot sent on subscribing)")
        assert _sample(daemon, "rebalancer_stream_polling", job="s1") == 0


def test_a_silent_book_falls_back_to_polling_and_wakes_the_job_for_market(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, _job(tmp_path, world), stream_stale_seconds=0.5) as daemon:
        _settled(daemon, world)
        passes = _passes(daemon)
        world.control("stream/stall", channel="market_btcusdt_depth_step0", on="1")
        wait_for(lambda: _sample(daemon, "rebalancer_stream_polling", job="s1") == 1, "polling")
        feed = daemon.feed("s1")
        assert feed is not None and feed["source"] == "polling" and feed["why"].startswith("no book for")
        wait_for(lambda: _passes(daemon) > passes, "a pass for the stale book")
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="market") == 1
        tickers = _tickers(world)
        world.control("stream/stall", channel="market_btcusdt_depth_step0", on="0")
        world.engine.set_price("btcusdt", _mid(world) * D("1.003"))
        wait_for(lambda: _following(daemon), "back on the stream")
        wait_for(lambda: daemon.feed("s1")["last_wake"] == "reference", "the move woke the job")  # type: ignore[index]
        assert _tickers(world) == tickers


def test_wakes_inside_min_gap_make_one_later_pass(tmp_path: Path, world: Streamed) -> None:
    gap = 4
    # The manual-clock market pushes no book while it stands still: a long staleness bound keeps ``market`` out.
    with running(tmp_path, _job(tmp_path, world, min_gap=f"{gap}s"), stream_stale_seconds=60) as daemon:
        _settled(daemon, world)
        best_buy = max(o.price for o in _orders(world) if o.side is Side.BUY)
        # Within the gap after the first pass: a trade at a resting order, then a move. One pass, after the gap.
        world.control("trade", symbol="btcusdt", side="sell", price=str(best_buy), volume="0.01")
        world.engine.set_price("btcusdt", _mid(world) * D("1.003"))
        wait_for(lambda: _passes(daemon) >= 2, "the delayed pass")
        first, second = sorted(daemon.store.history("s1", limit=10), key=lambda r: r.started_at)[:2]
        assert (second.started_at - first.started_at).total_seconds() >= gap
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="trade") == 1
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="reference") == 0
        assert daemon.feed("s1")["last_wake"] == "trade"  # type: ignore[index]
