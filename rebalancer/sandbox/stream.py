"""The sandbox's market stream at ``ws://127.0.0.1:PORT/kline-api/ws``, beside its REST server.

Werkzeug's server cannot speak websockets, so the stream has its own loopback port, served by the ``websockets``
library in its own thread and asyncio loop. It speaks the protocol of ``MARKET_STREAM.md``: subscriptions are
acknowledged (``subed``, status ``ok``, or ``error`` for a channel it does not serve), every server frame is gzipped
JSON in a binary frame, a ``{"ping": ms}`` goes out every ``ping_every`` seconds and a client that has not answered
with a ``pong`` ``pong_timeout`` seconds after a ping is disconnected.

What it pushes follows the engine (``Engine.listeners``): a ``depth_step0`` frame of a symbol whenever its market
steps or its orders change (changes within one turn of the loop make one frame), a ``trade_ticker`` frame for the
fills of accounts' orders and for trades printed through the controls, each at once. While a client follows any
channel on a real-clock world, the market steps itself (``Engine.catch_up`` every ``tick_every`` s): a seed walks
the same whoever watches. Faults: ``drop`` (connections cut, no close frame), ``stall``, ``garbage`` (see ``feed``).

``start`` only binds the port (so the URL can be published at once) and waits on it in a small thread: the
``websockets`` library is imported and the loop started when the first client knocks. Every process that serves the
embedded sandbox's world serves its stream, yet a ``plan`` of a job without a stream never pays for either.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import select
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from rebalancer.models import Side
from rebalancer.sandbox import feed
from rebalancer.sandbox.engine import Engine
from rebalancer.stream.frames import DEPTH, TICKER, TRADES, FrameError, channel, kind_of, symbol_of

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

log = logging.getLogger("rebalancer.sandbox.stream")
_server_log = log.getChild("server")  # its "server listening/closing" lines are noise in every sandbox command
_server_log.setLevel(logging.WARNING)

MAX_CLIENT_MESSAGE = 64 * 1024
MAX_PENDING_BYTES = 64 << 20
"""A client with this much still queued for it reads too slowly: it is cut, as live servers do."""
SERVED_KINDS = (DEPTH, TRADES, TICKER)
RECENT_TRADES = 200


@dataclass(eq=False)
class _Client:
    ws: ServerConnection
    channels: set[str] = field(default_factory=set)
    awaiting_since: float | None = None  # monotonic time of the oldest unanswered ping
    pending: int = 0  # bytes handed to the connection and not yet written


class StreamServer:
    """The stream of one served world; ``start()``, ``url``, ``attach(engine)`` on a reset, ``stop()``."""

    def __init__(
        self,
        engine: Engine,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ping_every: float = 5.0,
        pong_timeout: float | None = None,
        tick_every: float = 0.25,
    ) -> None:
        self.engine = engine
        self.host, self.port = host, port
        self.ping_every = ping_every
        self.pong_timeout = ping_every if pong_timeout is None else pong_timeout
        self.tick_every = tick_every
        self.stalled: set[str] = set()
        self.max_pending_bytes = MAX_PENDING_BYTES
        self._clients: set[_Client] = set()
        self._dirty: set[str] = set()
        self._flush_due = False
        self._last_fill = engine.next_trade_id - 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None  # bound by start(); served from the first knock on
        self._door: threading.Thread | None = None
        self._bell: tuple[socket.socket, socket.socket] | None = None  # wakes the door when the stream stops
        self._door_lock = threading.Lock()  # serving starts whole, or not at all once stopping
        self._stopping = False

    @property
    def url(self) -> str:
        """``ws://127.0.0.1:PORT/kline-api/ws`` (once started)."""
        if self._listener is None:
            raise RuntimeError("the sandbox stream is not started")
        return f"ws://{self.host}:{self.port}{feed.PATH}"

    def start(self) -> StreamServer:
        """Bind the port and wait there for the first client in a daemon thread, which then serves the stream;
        OSError when the port cannot be taken. Returns self."""
        if self._listener is not None:
            return self
        listener = _listen(self.host, self.port)
        self.port = listener.getsockname()[1]
        self._listener, self._bell, self._stopping = listener, socket.socketpair(), False
        self._door = threading.Thread(target=self._await_first_client, name="rebalancer-sandbox-stream", daemon=True)
        self._door.start()
        self.attach(self.engine)
        return self

    def _await_first_client(self) -> None:
        """(door thread) Once a client knocks, serve on the bound socket; return at once when the stream stops."""
        listener, bell = self._listener, self._bell
        assert listener is not None and bell is not None
        with contextlib.suppress(OSError, ValueError):  # the sockets closed under it: stopped
            knocked, _, _ = select.select([listener, bell[0]], [], [])
            if bell[0] in knocked:
                return
        with self._door_lock:
            if self._stopping:
                return
            try:
                self._serve_on(listener)
            except Exception as exc:  # no caller to raise to: say so, and refuse clients rather than leave them waiting
                log.error("the sandbox stream could not be served", extra={"error": f"{type(exc).__name__}: {exc}"})
                listener.close()

    def _serve_on(self, listener: socket.socket) -> None:
        """Serve the stream on ``listener`` in its own thread and loop; returns once it accepts connections."""
        ready = threading.Event()
        failed: list[BaseException] = []
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._main, args=(loop, ready, failed, listener), name="rebalancer-sandbox-stream", daemon=True
        )
        thread.start()
        ready.wait()
        if failed:
            thread.join()
            raise failed[0]
        self._loop, self._thread = loop, thread

    def attach(self, engine: Engine) -> None:
        """Follow ``engine`` (a fresh world) instead of the one followed so far."""
        with self._lock:
            old, self.engine = self.engine, engine
            with contextlib.suppress(ValueError):
                old.listeners.remove(self._changed)
            with engine.lock:
                self._last_fill = engine.next_trade_id - 1
                if self._changed not in engine.listeners:
                    engine.listeners.append(self._changed)

    def stop(self) -> None:
        """Close every connection, stop serving and stop following the engine."""
        with contextlib.suppress(ValueError):
            self.engine.listeners.remove(self._changed)
        with self._door_lock:
            self._stopping = True
        door, bell, listener = self._door, self._bell, self._listener
        if bell is not None:
            with contextlib.suppress(OSError):
                bell[1].send(b"x")
        if door is not None:
            door.join(10)
        loop, thread, stop = self._loop, self._thread, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(10)
        for sock in (listener, *(bell or ())):
            if sock is not None:
                sock.close()
        self._loop = self._thread = self._door = None
        self._listener = self._bell = None

    # --- faults and controls (any thread) --------------------------------------------------------------------

    def drop(self) -> int:
        """Cut every connection without a close frame, as a network failure does; how many were cut."""
        clients = self._current()

        def cut() -> None:
            for client in clients:
                client.ws.transport.abort()

        self._soon(cut)
        return len(clients)

    def stall(self, name: str, on: bool) -> None:
        """Stop (``on``) or resume sending channel ``name``; its socket and the other channels go on."""
        with self._lock:
            (self.stalled.add if on else self.stalled.discard)(name)

    def send_garbage(self, kind: str, count: int = 1) -> int:
        """Send ``count`` garbage frames of ``kind`` (``feed.GARBAGE_KINDS``) to every client; how many clients."""
        frames = feed.garbage(kind) * count
        clients = self._current()

        def send() -> None:
            for client in clients:
                for frame in frames:
                    self._send(client, frame)

        self._soon(send)
        return len(clients)

    def print_trade(self, symbol: str, taker: Side, price: Decimal, volume: Decimal) -> int:
        """Push a crowd trade of ``symbol`` at once (it fills nothing); its trade id."""
        with self.engine.lock:
            self.engine.rules(symbol)
            trade_id = self.engine.next_trade_id
            self.engine.next_trade_id += 1
            ts_ms = self.engine.now_ms()
        entry = feed.trade_entry(trade_id, taker, price, volume, ts_ms)
        text = feed.trades_text(symbol, [(trade_id, ts_ms, entry)], feed.wall_ms())
        self._soon(lambda: self._push(symbol, TRADES, text))
        return trade_id

    def status(self) -> dict[str, Any]:
        """Clients, what each follows, and the stalled channels."""
        return {
            "url": self.url,
            "clients": [sorted(c.channels) for c in self._current()],
            "stalled": sorted(self.stalled),
            "ping_every": self.ping_every,
        }

    def _current(self) -> list[_Client]:
        with self._lock:
            return list(self._clients)

    def _soon(self, action: Any) -> None:
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(action)

    # --- the loop --------------------------------------------------------------------------------------------

    def _main(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        failed: list[BaseException],
        listener: socket.socket,
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(ready, failed, listener))
        except BaseException as exc:  # a start that failed otherwise than binding: start() raises it, never a :0 URL
            if ready.is_set():
                raise
            failed.append(exc)
        finally:
            ready.set()
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    async def _serve(self, ready: threading.Event, failed: list[BaseException], listener: socket.socket) -> None:
        from websockets.asyncio.server import serve

        self._stop = asyncio.Event()
        try:
            server: Server = await serve(
                self._handle,
                sock=listener,
                process_request=_only_the_stream_path,
                ping_interval=None,  # the protocol's own JSON pings are the heartbeat
                compression=None,
                max_size=MAX_CLIENT_MESSAGE,
                logger=_server_log,
            )
        except OSError as exc:
            failed.append(exc)
            ready.set()
            return
        ready.set()
        clock = asyncio.create_task(self._clock())
        await self._stop.wait()
        clock.cancel()
        server.close()
        await server.wait_closed()

    async def _handle(self, ws: ServerConnection) -> None:
        from websockets.exceptions import ConnectionClosed

        client = _Client(ws)
        with self._lock:
            self._clients.add(client)
        pinger = asyncio.create_task(self._ping(client))
        try:
            async for message in ws:
                self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            pinger.cancel()
            with self._lock:
                self._clients.discard(client)

    async def _ping(self, client: _Client) -> None:
        while True:
            await asyncio.sleep(self.ping_every)
            waited = client.awaiting_since
            if waited is not None and time.monotonic() - waited > self.pong_timeout:
                await client.ws.close(1008, "no pong")
                return
            self._send(client, feed.packed(json.dumps({"ping": feed.wall_ms()})))
            if client.awaiting_since is None:
                client.awaiting_since = time.monotonic()

    async def _clock(self) -> None:
        while True:
            await asyncio.sleep(self.tick_every)
            if self.engine.clock == "real" and any(c.channels for c in self._current()):
                await asyncio.to_thread(self.engine.catch_up)

    def _on_message(self, client: _Client, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except (ValueError, RecursionError):
            return  # a client's garbage is ignored, as live servers do
        if not isinstance(message, dict):
            return
        if "pong" in message:
            client.awaiting_since = None
            return
        if "ping" in message:
            self._send(client, feed.packed(json.dumps({"pong": message["ping"]})))
            return
        params = message.get("params")
        if not isinstance(params, dict) or not isinstance(params.get("channel"), str):
            return
        name, cb_id = params["channel"], str(params.get("cb_id", ""))[:100]
        event = message.get("event")
        now = feed.wall_ms()
        if event == "sub":
            served = self._served(name)
            if served:
                client.channels.add(name)
            self._send(client, feed.packed(feed.ack_text("subed", name, cb_id, "ok" if served else "error", now)))
            if served:
                self._snapshot(client, name)
        elif event == "unsub":
            client.channels.discard(name)
            self._send(client, feed.packed(feed.ack_text("unsubed", name, cb_id, "ok", now)))
        elif event == "req":
            self._send(client, feed.packed(self._rep(name, cb_id)))

    def _served(self, name: str) -> bool:
        try:
            symbol, kind = symbol_of(name), kind_of(name)
        except FrameError:
            return False
        return kind in SERVED_KINDS and symbol in self.engine.markets

    def _snapshot(self, client: _Client, name: str) -> None:
        """What a new subscriber gets at once: the book (depth) or the day's ticker; trades wait for the next."""
        symbol, kind = symbol_of(name), kind_of(name)
        if kind == DEPTH:
            self._send(client, feed.packed(feed.depth_text(self.engine, symbol, feed.wall_ms())))
        elif kind == TICKER:
            self._send(client, feed.packed(feed.ticker_text(self.engine, symbol, feed.wall_ms())))

    def _rep(self, name: str, cb_id: str) -> str:
        if not self._served(name) or kind_of(name) != TRADES:
            return json.dumps({"event_rep": "rep", "channel": name, "cb_id": cb_id, "status": "error", "data": []})
        symbol = symbol_of(name)
        fills = [f for f in self.engine.recent_fills() if f.symbol == symbol][-RECENT_TRADES:]
        data = "[" + ",".join(feed.fill_entry(f) for f in fills) + "]"
        return f'{{"event_rep":"rep","channel":"{name}","cb_id":{json.dumps(cb_id)},"status":"ok","data":{data}}}'

    def _send(self, client: _Client, frame: bytes | str) -> None:
        if client.ws.transport.is_closing():
            return
        if client.pending + len(frame) > self.max_pending_bytes:
            client.ws.transport.abort()
            return
        client.pending += len(frame)

        def sent(task: asyncio.Future[None]) -> None:
            client.pending -= len(frame)
            _ignore_closed(task)

        asyncio.ensure_future(client.ws.send(frame)).add_done_callback(sent)

    def _push(self, symbol: str, kind: str, text: str) -> None:
        name = channel(symbol, kind)
        if name in self.stalled:
            return
        targets = [c for c in self._current() if name in c.channels]
        if targets:
            frame = feed.packed(text)
            for client in targets:
                self._send(client, frame)

    def _changed(self, symbol: str) -> None:
        """Engine listener (engine thread, engine lock held): note the symbol and flush in the loop, soon."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._mark, symbol)

    def _mark(self, symbol: str) -> None:
        self._dirty.add(symbol)
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        symbols, self._dirty = sorted(self._dirty), set()
        engine = self.engine
        with engine.lock:
            fresh = [f for f in engine.recent_fills() if f.trade_id > self._last_fill]
            wanted = {name for c in self._current() for name in c.channels} - self.stalled
            texts = [
                (s, feed.depth_text(engine, s, feed.wall_ms()))
                for s in symbols
                if s in engine.markets and channel(s, DEPTH) in wanted
            ]
        if fresh:
            self._last_fill = max(f.trade_id for f in fresh)
        for symbol, text in texts:
            self._push(symbol, DEPTH, text)
        by_symbol: dict[str, list[tuple[int, int, str]]] = {}
        for fill in fresh:
            by_symbol.setdefault(fill.symbol, []).append((fill.trade_id, fill.time, feed.fill_entry(fill)))
        for symbol, entries in sorted(by_symbol.items()):
            self._push(symbol, TRADES, feed.trades_text(symbol, entries, feed.wall_ms()))


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket as the event loop's own ``create_server`` makes it: its protocol is TCP (not 0), so
    the loop turns Nagle's algorithm off on the connections it accepts (else small frames wait ~40 ms)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(100)
    except OSError:
        listener.close()
        raise
    return listener


def _ignore_closed(task: asyncio.Future[None]) -> None:
    from websockets.exceptions import ConnectionClosed

    if not task.cancelled():
        exc = task.exception()
        if exc is not None and not isinstance(exc, ConnectionClosed):
            log.warning("stream send failed", extra={"error": str(exc)})


def _only_the_stream_path(connection: ServerConnection, request: Request) -> Response | None:
    if request.path.split("?", 1)[0] != feed.PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, f"the stream is at {feed.PATH}\n")
    return None
