"""The stream client against the sandbox's stream over real loopback websockets: subscriptions, depth and trades,
heartbeats, dropped connections, stalled channels, garbage. Every wait is a condition with a generous deadline."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from rebalancer.models import Side
from rebalancer.sandbox.engine import DEMO_API_KEY
from rebalancer.stream.client import Received, StreamHub, shared_hub, subscribe
from rebalancer.stream.frames import Depth, SubAck, Trade, Trades
from tests.stream.conftest import Streamed, wait_for

DEPTH = "market_btcusdt_depth_step0"
TRADES = "market_btcusdt_trade_ticker"
D = Decimal


class Collector:
    """A subscriber that keeps every frame it is given (called from the hub's thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: list[Received] = []

    def __call__(self, frame: Received) -> None:
        with self.lock:
            self.frames.append(frame)

    def of(self, kind: type) -> list[object]:
        with self.lock:
            return [f.message for f in self.frames if isinstance(f.message, kind)]


@pytest.fixture
def hub(streamed: Streamed) -> Iterator[StreamHub]:
    hub = StreamHub(streamed.stream_url, backoff=(0.05, 0.5), seed=1)
    yield hub
    hub.close()


def _book(streamed: Streamed) -> Depth:
    bids, asks = streamed.engine.depth("btcusdt")
    return Depth("btcusdt", 0, tuple(bids), tuple(asks))


def _same_book(depth: object, streamed: Streamed) -> bool:
    want = _book(streamed)
    return isinstance(depth, Depth) and (depth.bids, depth.asks) == (want.bids[:150], want.asks[:150])


def test_subscribe_acks_then_depth_and_trades_flow(streamed: Streamed, hub: StreamHub) -> None:
    got = Collector()
    hub.subscribe("BTCUSDT", got)
    wait_for(lambda: len(got.of(SubAck)) >= 2 and got.of(Depth), "two acks and the book")
    assert {a.channel for a in got.of(SubAck)} == {DEPTH, TRADES}  # type: ignore[attr-defined]
    assert all(a.status == "ok" for a in got.of(SubAck))  # type: ignore[attr-defined]
    assert _same_book(got.of(Depth)[-1], streamed)

    streamed.engine.advance(1)  # the market steps: a new book is pushed
    wait_for(lambda: _same_book(got.of(Depth)[-1], streamed), "the stepped book")

    price = (streamed.engine.mid("btcusdt") - 40).quantize(D("0.01"))
    order_id = streamed.engine.place(DEMO_API_KEY, "btcusdt", Side.BUY, price, D("0.0100"))
    wait_for(lambda: any(price in dict(d.bids) for d in got.of(Depth)), "the placed order in the book")  # type: ignore[attr-defined]
    streamed.engine.fill(order_id, "0.0040")
    trades = wait_for(lambda: got.of(Trades), "the fill printed as a trade")
    fill = streamed.engine.recent_fills()[-1]
    assert trades[-1] == Trades(
        "btcusdt",
        trades[-1].ts_ms,  # type: ignore[attr-defined]
        (Trade(str(fill.trade_id), Side.SELL, price, D("0.0040"), fill.time),),  # the crowd sold to our buy
    )
    stats = hub.stats()
    assert stats.connected and stats.garbage == 0 and stats.reconnects == 0
    assert stats.lag_ms is not None and 0 <= stats.lag_ms < 10_000


def test_price_move_and_crowd_trade_via_controls_are_pushed_at_once(streamed: Streamed, hub: StreamHub) -> None:
    got = Collector()
    hub.subscribe("btcusdt", got)
    wait_for(lambda: got.of(Depth), "the book")
    streamed.control("price", symbol="btcusdt", price="31000")
    wait_for(lambda: any(d.asks and d.asks[0][0] > 31000 for d in got.of(Depth)), "the moved book")  # type: ignore[attr-defined]
    answer = streamed.control("trade", symbol="btcusdt", side="buy", price="31000.50", volume="0.25")
    trades = wait_for(lambda: got.of(Trades), "the printed trade")
    (trade,) = trades[0].trades  # type: ignore[attr-defined]
    assert (trade.id, trade.side, trade.price, trade.volume) == (
        str(answer["trade_id"]),
        Side.BUY,
        D("31000.50"),
        D("0.25"),
    )
    assert streamed.engine.recent_fills() == []  # a crowd trade fills nothing


def test_pings_are_answered_and_the_connection_stays(streamed: Streamed, hub: StreamHub) -> None:
    hub.subscribe("btcusdt", Collector())
    wait_for(lambda: hub.stats().pings >= 8, "eight pings (0.2 s apart) answered")
    stats = hub.stats()
    assert stats.connected and stats.reconnects == 0


def test_a_client_that_does_not_pong_is_cut(streamed: Streamed) -> None:
    with connect(streamed.stream_url, compression=None, open_timeout=10) as ws:
        ws.send(json.dumps({"event": "sub", "params": {"channel": DEPTH, "cb_id": "1"}}))
        pings = 0
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = ws.recv(timeout=20)
                assert isinstance(frame, bytes)
                pings += "ping" in json.loads(gzip.decompress(frame))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert pings >= 1


def test_an_unknown_channel_is_refused_in_its_ack_and_other_paths_are_404(streamed: Streamed) -> None:
    with connect(streamed.stream_url, compression=None, open_timeout=10) as ws:
        ws.send("garbage from the client is ignored")
        ws.send(json.dumps({"event": "sub", "params": {"channel": "market_dogeusdt_depth_step0", "cb_id": "x"}}))
        while True:
            message = json.loads(gzip.decompress(ws.recv(timeout=20)))  # type: ignore[arg-type]
            if "event_rep" in message:
                break
        assert (message["channel"], message["status"]) == ("market_dogeusdt_depth_step0", "error")
    with pytest.raises(Exception, match="404"):
        connect(streamed.stream_url.replace("/kline-api/ws", "/other"), open_timeout=10)


def test_a_channel_is_asked_for_once_per_connection(streamed: Streamed, hub: StreamHub) -> None:
    # A subscriber arriving while the connection opens is named by the connect's "sub" and by its own: the second
    # ask must not reach the server (it would answer twice and could push every frame twice).
    btc, eth = Collector(), Collector()
    hub.subscribe("btcusdt", btc)
    wait_for(lambda: len(btc.of(SubAck)) >= 2, "subscribed")
    hub._call(hub._send_event, "sub", [DEPTH, TRADES])  # the late second ask of the race
    hub.subscribe("ethusdt", eth)  # asked after it on the same connection: its acks come after any btc ack
    wait_for(lambda: len(eth.of(SubAck)) >= 2, "the second symbol subscribed")
    assert len(btc.of(SubAck)) == 2


def test_a_dropped_connection_reconnects_and_subscribes_again(streamed: Streamed, hub: StreamHub) -> None:
    got = Collector()
    hub.subscribe("btcusdt", got)
    wait_for(lambda: len(got.of(SubAck)) >= 2, "subscribed")
    acks, reconnects = len(got.of(SubAck)), hub.stats().reconnects
    assert streamed.control("stream/drop")["dropped"] == 1
    wait_for(lambda: hub.stats().reconnects > reconnects and hub.stats().connected, "reconnected")
    wait_for(lambda: len(got.of(SubAck)) >= acks + 2, "subscribed again")
    streamed.engine.advance(1)
    wait_for(lambda: _same_book(got.of(Depth)[-1], streamed), "the book after reconnecting")
    assert hub.stats().last_error.startswith("connection closed")


def test_a_stalled_channel_ages_while_the_others_flow(streamed: Streamed, hub: StreamHub) -> None:
    btc, eth = Collector(), Collector()
    hub.subscribe("btcusdt", btc)
    hub.subscribe("ethusdt", eth)
    wait_for(lambda: btc.of(Depth) and eth.of(Depth), "both books")
    streamed.control("stream/stall", channel=DEPTH)
    btc_before = len(btc.of(Depth))

    def eth_moves_and_btc_ages() -> bool:
        streamed.engine.advance(1)
        wait_for(lambda: (hub.age("market_ethusdt_depth_step0") or 9) < 0.5, "eth's book flowing")
        return (hub.age(DEPTH) or 0) > 1.0

    wait_for(eth_moves_and_btc_ages, "btc's depth stalled for a second while eth's flows")
    assert len(btc.of(Depth)) == btc_before
    assert hub.stats().connected and hub.stats().reconnects == 0
    streamed.control("stream/stall", channel=DEPTH, on="0")
    streamed.engine.advance(1)
    wait_for(lambda: (hub.age(DEPTH) or 9) < 0.5, "btc's book flowing again")
    assert hub.age("market_xrpusdt_depth_step0") is None  # not followed


@pytest.mark.parametrize(
    ("kind", "oversized"),
    [("binary", 0), ("json", 0), ("text", 0), ("number", 0), ("bomb", 1), ("huge", 1)],
)
def test_garbage_frames_are_counted_and_ignored(streamed: Streamed, hub: StreamHub, kind: str, oversized: int) -> None:
    got = Collector()
    hub.subscribe("btcusdt", got)
    wait_for(lambda: got.of(Depth), "the book")
    frames = len(got.frames)
    streamed.control("stream/garbage", kind=kind, count="3")
    wait_for(lambda: hub.stats().garbage == 3, "three garbage frames counted")
    assert hub.stats().oversized == 3 * oversized
    assert len(got.frames) == frames  # nothing delivered
    streamed.engine.advance(1)
    wait_for(lambda: _same_book(got.of(Depth)[-1], streamed), "the book still flowing")
    assert hub.stats().connected and hub.stats().reconnects == 0


def test_a_ping_flood_is_answered_without_harm(streamed: Streamed, hub: StreamHub) -> None:
    hub.subscribe("btcusdt", Collector())
    wait_for(lambda: hub.stats().connected, "connected")
    before = hub.stats().pings
    streamed.control("stream/garbage", kind="pings", count="5")
    wait_for(lambda: hub.stats().pings >= before + 500, "five hundred pings answered")
    assert hub.stats().reconnects == 0 and hub.stats().garbage == 0


def test_a_frame_beyond_the_wire_bound_costs_a_reconnect_not_the_client(streamed: Streamed) -> None:
    hub = StreamHub(streamed.stream_url, backoff=(0.05, 0.5), max_bytes=100_000)  # the library refuses > 400 kB
    try:
        got = Collector()
        hub.subscribe("btcusdt", got)
        wait_for(lambda: got.of(Depth), "the book")
        streamed.control("stream/garbage", kind="huge")
        wait_for(lambda: hub.stats().oversized == 1 and hub.stats().reconnects == 1, "counted, reconnected")
        wait_for(lambda: hub.stats().connected, "connected again")
    finally:
        hub.close()


def test_one_shared_connection_per_url_closes_with_its_last_subscriber(streamed: Streamed) -> None:
    first, second = Collector(), Collector()
    one = subscribe(streamed.stream_url, "btcusdt", first)
    two = subscribe(streamed.stream_url, "btcusdt", second)
    hub = shared_hub(streamed.stream_url)
    assert one.hub is two.hub is hub
    wait_for(lambda: first.of(Depth) and second.of(Depth), "both subscribers fed")
    wait_for(lambda: len(streamed.server.stream.status()["clients"]) == 1, "one connection")  # type: ignore[union-attr]
    one.close()
    streamed.engine.advance(1)
    wait_for(lambda: _same_book(second.of(Depth)[-1], streamed), "the other still fed")
    two.close()
    wait_for(lambda: streamed.server.stream.status()["clients"] == [], "connection closed")  # type: ignore[union-attr]
    assert shared_hub(streamed.stream_url) is not hub


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1/kline-api/ws", "ws://ws.example.com/kline-api/ws", "wss://", "ws://[::1/x", "ftp://x"],
)
def test_bad_stream_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        StreamHub(url)


def test_plain_ws_to_another_host_only_when_insecure() -> None:
    hub = StreamHub("ws://ws.example.com/kline-api/ws", insecure=True)
    hub.close()
    for url in ("ws://127.0.0.1:1/kline-api/ws", "ws://localhost/x", "ws://[::1]:5/x", "wss://ws.example.com/x"):
        StreamHub(url).close()


def test_a_failing_subscriber_does_not_starve_the_others(streamed: Streamed, hub: StreamHub) -> None:
    def broken(frame: Received) -> None:
        raise RuntimeError("a subscriber's bug")

    got = Collector()
    hub.subscribe("btcusdt", broken)
    hub.subscribe("btcusdt", got)
    wait_for(lambda: got.of(Depth), "the book")
    streamed.engine.advance(1)
    wait_for(lambda: _same_book(got.of(Depth)[-1], streamed), "the stepped book")
    assert hub.stats().connected and hub.stats().reconnects == 0
