"""Stream wake-ups through a real daemon against the sandbox's stream over loopback: a price move or a trade
through a resting order runs a pass at once (the timer is an hour away), a calm market costs no REST request,
garbage wakes nothing, a dropped or silent stream falls back to polling and comes back, ``min_gap`` holds.
Every wait is a condition with a generous deadline."""

from __future__ import annotations

import html
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancer.daemon.scheduler import Daemon
from rebalancer.exchange.funds import forget_ledgers
from rebalancer.exchange.marketdata import forget as forget_market_data
from rebalancer.job import Job
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.sandbox.engine import DEMO_API_KEY
from rebalancer.scheduler.pages import StatusPages
from rebalancer.state.store import StateStore
from tests.daemonkit import running
from tests.stream.conftest import Streamed, wait_for

D = Decimal
TICKER_PATHS = ("/open/api/get_ticker", "/open/api/get_allticker")


def _job(
    tmp_path: Path,
    streamed: Streamed,
    name: str = "s1",
    min_gap: str = "100ms",
    symbol: str = "btcusdt",
    stale: str = "600s",
    extra: str = "",
) -> Job:
    """A stream job. The manual-clock market pushes no book while it stands still, so its staleness bound
    (``stream_stale``) is long unless a test is about staleness: a slow machine must not turn a quiet book into a
    ``market`` wake."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"""\
version: 1
name: {name}
symbol: {symbol}
exchange: {{url: "{streamed.url}", stream: "{streamed.stream_url}", stream_stale: {stale}}}
schedule: {{every: 1h, min_gap: {min_gap}}}
reference: mid
ladder:
  buy: {{levels: 3, first: 0.5%, step: 0.25%, size: "0.01"}}
  sell: {{levels: 3, first: 0.5%, step: 0.25%, size: "0.01"}}
tolerance: {{price: 0.1%, size: 10%}}
limits: {{}}
ownership: symbol
{extra}"""
    )
    return load_job(path)


@pytest.fixture
def world(streamed: Streamed) -> Streamed:
    forget_market_data()  # the clients share market data per URL, and the URL outlives the world
    forget_ledgers()
    return streamed


def _sample(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


def _passes(daemon: Daemon, name: str = "s1") -> int:
    return len(daemon.store.history(name, limit=1000))


def _orders(world: Streamed, symbol: str = "btcusdt") -> list:
    return world.engine.open_orders(DEMO_API_KEY, symbol)


def _mid(world: Streamed, symbol: str = "btcusdt") -> Decimal:
    mid = world.engine.market_view(symbol).ticker.mid
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


def test_a_price_move_sends_a_batch_at_once_with_prices_from_the_stream(
    tmp_path: Path, world: Streamed, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="rebalancer.daemon")  # a pass with nothing to do is logged at debug
    with running(tmp_path, [_job(tmp_path, world)]) as daemon:
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
        assert _last_wake(daemon, "s1") == "reference"
        assert _tickers(world) == tickers  # the woken pass read its prices from the stream, not a ticker
    lines = [r.__dict__ for r in caplog.records if r.getMessage() == "pass"]
    pairs = [(r["wake"], r["prices"]) for r in lines]
    assert pairs[0][0] == "timer" and ("reference", "stream") in pairs
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        recorded = [(r.wake, r.prices) for r in reversed(store.history("s1"))]
    assert recorded == pairs, "the store keeps what each pass line said"


def test_a_trade_through_a_resting_order_runs_a_pass_for_trade(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, [_job(tmp_path, world)]) as daemon:
        _settled(daemon, world)
        best_buy = max(o.price for o in _orders(world) if o.side is Side.BUY)
        passes = _passes(daemon)
        world.control("trade", symbol="btcusdt", side="sell", price=str(_mid(world)), volume="0.01")  # reaches none
        world.control("trade", symbol="btcusdt", side="sell", price=str(best_buy), volume="0.01")  # at the best buy
        wait_for(lambda: _passes(daemon) > passes, "a pass after the trade")
        assert _last_wake(daemon, "s1") == "trade"
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="trade") == 1


def test_a_calm_market_costs_no_rest_request_and_garbage_wakes_nothing(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, [_job(tmp_path, world)]) as daemon:
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
    with running(tmp_path, [_job(tmp_path, world)]) as daemon:
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
    # Two jobs on one symbol of one stream, each with its own bound: only the one with the short bound polls.
    calm = _job(tmp_path, world, "calm", stale="600s", extra="paused: true\n")
    with running(tmp_path, [_job(tmp_path, world, stale="500ms"), calm]) as daemon:
        _settled(daemon, world)
        passes = _passes(daemon)
        world.control("stream/stall", channel="market_btcusdt_depth_step0", on="1")
        wait_for(lambda: _sample(daemon, "rebalancer_stream_polling", job="s1") == 1, "polling")
        feed = daemon.feed("s1")
        assert feed is not None and feed["source"] == "polling" and feed["why"].startswith("no book for")
        wait_for(lambda: _passes(daemon) > passes, "a pass for the stale book")
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="market") == 1
        last = daemon.store.history("s1", limit=1)[0]
        assert (last.wake, last.prices) == ("market", "rest"), "the stale book's pass read its prices over REST"
        assert daemon.feed("calm") == {"source": "stream", "why": "", "stream": feed["stream"], "learnt": 0}
        assert _sample(daemon, "rebalancer_stream_polling", job="calm") == 0
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="calm", reason="market") == 0
        pages = StatusPages(daemon, daemon.holder, feeds=daemon.feed)
        assert "market · polling (no book for" in _page(pages, "/")
        tickers = _tickers(world)
        world.control("stream/stall", channel="market_btcusdt_depth_step0", on="0")
        world.engine.set_price("btcusdt", _mid(world) * D("1.003"))
        wait_for(lambda: _following(daemon), "back on the stream")
        wait_for(lambda: _last_wake(daemon, "s1") == "reference", "the move woke the job")
        assert daemon.store.history("s1", limit=1)[0].prices == "stream"
        assert _tickers(world) == tickers
        assert "reference · stream" in _page(pages, "/") and "reference · stream" in _page(pages, "/jobs/s1")


def _last_wake(daemon: Daemon, name: str) -> str | None:
    """Why the job's latest recorded pass ran, as the state store kept it."""
    last = daemon.store.history(name, limit=1)
    return last[0].wake if last else None


def _page(pages: StatusPages, path: str) -> str:
    answer = pages.respond(path)
    assert answer is not None and answer[0] == "200 OK"
    return html.unescape(answer[1].decode())


def test_wakes_inside_min_gap_make_one_later_pass(tmp_path: Path, world: Streamed) -> None:
    gap = 4
    with running(tmp_path, [_job(tmp_path, world, min_gap=f"{gap}s")]) as daemon:
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
        assert _last_wake(daemon, "s1") == "trade"


def test_frames_of_one_symbol_wake_only_its_jobs(tmp_path: Path, world: Streamed) -> None:
    btc, eth = _job(tmp_path, world, "s1"), _job(tmp_path, world, "e1", symbol="ethusdt")
    with running(tmp_path, [btc, eth]) as daemon:
        _settled(daemon, world)
        wait_for(lambda: len(_orders(world, "ethusdt")) == 6 and _learnt(daemon, "e1") >= 1, "eth placed")
        btc_passes = _passes(daemon, "s1")
        for step in (D("1.003"), D("1.006")):
            learnt = _learnt(daemon, "e1")
            world.engine.set_price("ethusdt", _mid(world, "ethusdt") * step)
            wait_for(lambda: _learnt(daemon, "e1") > learnt, "the eth job's pass")  # noqa: B023
        assert _passes(daemon, "s1") == btc_passes
        assert _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="reference") == 0


def test_a_flood_of_books_makes_few_passes_that_end_at_the_last_price(tmp_path: Path, world: Streamed) -> None:
    with running(tmp_path, [_job(tmp_path, world, min_gap="500ms")]) as daemon:
        _settled(daemon, world)
        start = _mid(world)
        for i in range(1, 61):  # sixty books, each moving the reference 0.005 %: 0.3 % in all, short of any fill
            world.engine.set_price("btcusdt", start * (1 + D(i) / 20000))
        final = _mid(world)
        wait_for(
            lambda: (
                max(o.price for o in _orders(world) if o.side is Side.BUY) > final * D("0.994")
                and len(_orders(world)) == 6
            ),
            "the ladder followed the last price",
        )
        wakes = _sample(daemon, "rebalancer_stream_wakes_total", job="s1", reason="reference")
        assert 1 <= wakes <= _learnt(daemon)  # once per pass at most: a pass reads the latest book, not each one
        assert _sample(daemon, "rebalancer_stream_connected", stream=daemon.feed("s1")["stream"]) == 1  # type: ignore[index]


def test_stream_sandbox_follows_the_embedded_sandboxs_own_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REBALANCER_STATE_DIR", str(tmp_path / "state"))
    path = tmp_path / "e.yaml"
    path.write_text(
        """\
version: 1
name: e
symbol: btcusdt
exchange: {url: sandbox, stream: sandbox}
schedule: {every: 1h, min_gap: 100ms}
ladder:
  buy: {levels: 2, first: 0.5%, step: 0.25%, size: "0.01"}
  sell: {levels: 2, first: 0.5%, step: 0.25%, size: "0.01"}
tolerance: {price: 0}
"""
    )
    with running(tmp_path, [load_job(path)]) as daemon:
        wait_for(lambda: _learnt(daemon, "e") >= 1 and _following(daemon, "e"), "the first pass, then the stream")
        # The embedded world walks on its own: with no price tolerance, its next step wakes the job.
        wait_for(
            lambda: _sample(daemon, "rebalancer_stream_wakes_total", job="e", reason="reference") >= 1,
            "a wake from the walking market",
        )


def test_a_reload_keeps_following_a_changed_job_and_lets_go_when_its_stream_key_goes(
    tmp_path: Path, world: Streamed
) -> None:
    job = _job(tmp_path, world)
    with running(tmp_path, [job]) as daemon:
        _settled(daemon, world)
        stream = daemon.feed("s1")["stream"]  # type: ignore[index]
        reconnects = _sample(daemon, "rebalancer_stream_reconnects_total", stream=stream)
        changed = _job(tmp_path, world, min_gap="200ms")
        assert daemon.reload([changed]) == {}
        assert _following(daemon)  # the same subscription: no new connection, no wait for a book
        assert daemon.streams.ticker("s1") is not None  # the new version starts from the book already seen
        assert _sample(daemon, "rebalancer_stream_reconnects_total", stream=stream) == reconnects
        assert _sample(daemon, "rebalancer_stream_connected", stream=stream) == 1
        path = tmp_path / "s1.yaml"
        polling = path.read_text().replace(f', stream: "{world.stream_url}", stream_stale: 600s', "")
        path.write_text(polling.replace(", min_gap: 200ms", ""))  # keys only a stream reads go with it
        assert daemon.reload([load_job(path)]) == {}
        assert daemon.streams.state("s1") is None and daemon.streams.stats() == []
