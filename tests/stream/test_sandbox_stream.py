"""The sandbox's side of the stream: its own clock while watched, its controls' input checks, the URL that
`rebalancer sandbox` prints and the shared world publishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from websockets.sync.client import connect

from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.host import embedded_sandbox_stream
from rebalancer.sandbox.share import read_address
from rebalancer.sandbox.stream import MAX_PENDING_BYTES
from rebalancer.stream.client import Received, StreamHub
from rebalancer.stream.frames import Depth
from tests.conftest import Sandbox
from tests.stream.conftest import Streamed, wait_for


@pytest.fixture
def hub_for() -> Iterator[list[StreamHub]]:
    hubs: list[StreamHub] = []
    yield hubs
    for hub in hubs:
        hub.close()


def _follow(url: str, hubs: list[StreamHub], symbol: str = "btcusdt") -> list[Depth]:
    books: list[Depth] = []

    def keep(frame: Received) -> None:
        if isinstance(frame.message, Depth):
            books.append(frame.message)

    hub = StreamHub(url, backoff=(0.05, 0.5))
    hubs.append(hub)
    hub.subscribe(symbol, keep)
    return books


def test_the_world_walks_on_its_own_clock_while_watched_the_same_way_for_a_seed(
    streamed: Streamed, hub_for: list[StreamHub]
) -> None:
    engine = Engine.create(seed=11, clock="real")
    streamed.server.reset(engine, Faults(rate_limits=False))
    start_ms = engine.clock_ms
    books = _follow(streamed.stream_url, hub_for)
    wait_for(lambda: engine.clock_ms - start_ms >= 2000 and len(books) >= 3, "two steps of its own, pushed")
    assert streamed.server.app.request_counts() == {}  # no REST request moved it
    with engine.lock:
        ticks, mids = (engine.clock_ms - start_ms) // 1000, {s: engine.mid(s) for s in engine.markets}
    twin = Engine.create(seed=11, clock="manual")
    twin.advance(ticks)
    assert {s: twin.mid(s) for s in twin.markets} == mids


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("stream/garbage", {"kind": "nope"}, "kind must be one of binary, json"),
        ("stream/garbage", {"kind": "json", "count": "0"}, "count must be a whole number from 1 to 100"),
        ("stream/garbage", {"kind": "json", "count": "101"}, "count must be"),
        ("stream/garbage", {"kind": "json", "count": "9" * 5000}, "count must be"),
        ("stream/stall", {"channel": ""}, "channel must name a channel"),
        ("stream/stall", {"channel": "x" * 101}, "channel must name a channel"),
        ("stream/stall", {"channel": "market_btcusdt_ticker", "on": "yes"}, "on must be 1"),
        ("trade", {"symbol": "btcusdt", "side": "hold", "price": "1", "volume": "1"}, "side must be buy or sell"),
        ("trade", {"symbol": "btcusdt", "side": "buy", "price": "-1", "volume": "1"}, "price must be a positive"),
        ("trade", {"symbol": "btcusdt", "side": "buy", "price": "1e999", "volume": "1"}, "price must be"),
        ("trade", {"symbol": "btcusdt", "side": "buy", "price": "NaN", "volume": "1"}, "price must be"),
        ("trade", {"symbol": "btcusdt", "side": "buy", "price": "1" * 50, "volume": "1"}, "price must be"),
        ("trade", {"symbol": "btcusdt", "side": "buy", "price": "1", "volume": "zero"}, "volume must be"),
        ("trade", {"symbol": "dogeusdt", "side": "buy", "price": "1", "volume": "1"}, "unknown symbol"),
    ],
)
def test_stream_controls_refuse_bad_input(streamed: Streamed, path: str, params: dict[str, str], says: str) -> None:
    answer = requests.post(f"{streamed.url}/sandbox/{path}", params=params, timeout=10)
    assert answer.status_code == 400
    assert answer.json()["code"] == "100004" and says in answer.json()["msg"], answer.json()


def test_the_stream_status_shows_clients_and_stalls(streamed: Streamed, hub_for: list[StreamHub]) -> None:
    _follow(streamed.stream_url, hub_for)
    streamed.control("stream/stall", channel="market_btcusdt_trade_ticker")
    both = [["market_btcusdt_depth_step0", "market_btcusdt_trade_ticker"]]
    status = wait_for(lambda: (s := streamed.control("stream", "GET"))["clients"] == both and s, "the client listed")
    assert status["url"] == streamed.stream_url
    assert status["stalled"] == ["market_btcusdt_trade_ticker"]


def test_a_sandbox_without_a_stream_says_so(sandbox: Sandbox) -> None:
    answer = requests.post(f"{sandbox.url}/sandbox/stream/drop", timeout=10)
    assert answer.status_code == 400 and "serves no market stream" in answer.json()["msg"]


def test_the_sandbox_command_prints_its_stream_url_and_serves_it(tmp_path: Path, hub_for: list[StreamHub]) -> None:
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "rebalancer", "sandbox", "--port", "0", "--reset", "--ping-every", "0.5"]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as process:
        try:
            assert process.stdout is not None
            lines = dict(process.stdout.readline().strip().split(": ", 1) for _ in range(4))
            assert lines["stream"].startswith("ws://127.0.0.1:") and lines["stream"].endswith("/kline-api/ws")
            books = _follow(lines["stream"], hub_for)
            wait_for(lambda: len(books) >= 2, "the served world's book, stepping on its own clock")
            assert read_address(tmp_path) is not None and read_address(tmp_path).stream == lines["stream"]  # type: ignore[union-attr]
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(30)
    assert process.returncode == 0


def test_the_shared_world_publishes_its_stream(tmp_path: Path, hub_for: list[StreamHub]) -> None:
    with embedded_sandbox_stream(tmp_path) as (url, stream):
        assert url.startswith("http://127.0.0.1:") and stream.startswith("ws://127.0.0.1:")
        address = read_address(tmp_path)
        assert address is not None and (address.url, address.stream) == (url, stream)
        books = _follow(stream, hub_for, "ethusdt")
        wait_for(lambda: books, "the shared world's book")
        for hub in hub_for:
            hub.close()
    assert read_address(tmp_path) is None


def test_a_client_that_does_not_read_is_cut(streamed: Streamed) -> None:
    stream = streamed.server.stream
    assert stream is not None
    stream.max_pending_bytes = 4 << 20
    try:
        with connect(streamed.stream_url, compression=None, max_size=None, max_queue=1, open_timeout=10) as ws:
            ws.send(json.dumps({"event": "sub", "params": {"channel": "market_btcusdt_depth_step0", "cb_id": "1"}}))
            wait_for(lambda: streamed.control("stream", "GET")["clients"] == [["market_btcusdt_depth_step0"]], "sub")
            streamed.control("stream/garbage", kind="huge", count="20")  # 30 MB that this client never reads
            wait_for(lambda: streamed.control("stream", "GET")["clients"] == [], "the slow client cut")
    finally:
        stream.max_pending_bytes = MAX_PENDING_BYTES
