"""The market stream client: one websocket connection per stream URL per process, shared by every subscriber.

``subscribe(url, symbol, callback)`` follows ``market_<sym>_depth_step0`` and ``market_<sym>_trade_ticker`` and
calls ``callback(Received)`` for every frame of that symbol's channels (acknowledgements included). The hub runs in
its own thread with its own asyncio loop, so callers are plain threaded code; callbacks run in that thread and
must return quickly (hand the frame to a queue). The hub answers every ``{"ping": n}`` with ``{"pong": n}``,
reconnects with jittered exponential backoff and subscribes again, keeps a clock per channel (``age``: a connection
can stay open while one channel goes silent), bounds each frame (``max_bytes``, compressed and decompressed) and
counts the frames it cannot use, never dying on one. ``stats()`` gives the counters for metrics.

``websockets`` is imported only when a hub starts: ``import rebalancer.stream.client`` stays light.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rebalancer import __version__
from rebalancer.jobfile.urls import check_stream_url, display_url, is_loopback
from rebalancer.stream.frames import (
    DEPTH,
    TRADES,
    Depth,
    FrameError,
    FrameTooLarge,
    Message,
    Ping,
    SubAck,
    TickerTick,
    Trades,
    channel,
    decompress,
    loads,
    parse_message,
    symbol_of,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

log = logging.getLogger("rebalancer.stream")

DEFAULT_MAX_BYTES = 1 << 20
"""A frame larger than this, compressed or decompressed, is counted and ignored (1 MiB: a 150-level book is ~10 KiB)."""
WIRE_FACTOR = 4
"""A frame beyond ``WIRE_FACTOR × max_bytes`` is not even read: the library closes the connection (we reconnect)."""
KINDS = (DEPTH, TRADES)

Callback = Callable[["Received"], None]


@dataclass(frozen=True, slots=True)
class Received:
    """One frame as delivered: its message, its decompressed JSON text (numbers as sent) and its receive time."""

    message: Message
    text: str
    received_ms: int


@dataclass(frozen=True, slots=True)
class StreamStats:
    """The hub's counters, for metrics and status: plain values, read at one moment."""

    url: str
    connected: bool
    frames: int
    reconnects: int
    garbage: int
    oversized: int
    pings: int
    lag_ms: int | None
    last_error: str


class Subscription:
    """A subscriber's handle: ``close()`` stops its callbacks (and unsubscribes when it was the symbol's last)."""

    def __init__(self, hub: StreamHub, symbol: str, ident: int) -> None:
        self.hub, self.symbol, self._ident = hub, symbol, ident
        self._closed = False

    def close(self) -> None:
        """Stop delivering to this subscriber; idempotent."""
        if not self._closed:
            self._closed = True
            self.hub._unsubscribe(self.symbol, self._ident)


class StreamHub:
    """One connection to one stream URL, shared by every subscriber of this process (see the module doc)."""

    def __init__(
        self,
        url: str,
        *,
        insecure: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backoff: tuple[float, float] = (0.5, 30.0),
        open_timeout: float = 10.0,
        close_when_idle: bool = False,
        seed: int | None = None,
    ) -> None:
        self.url = check_stream_url(url, insecure=insecure)
        self.shown_url = display_url(self.url)  # what messages and logs may show of it
        self.max_bytes = max_bytes
        self._backoff = backoff
        self._open_timeout = open_timeout
        self._close_when_idle = close_when_idle
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._subscribers: dict[str, dict[int, Callback]] = {}
        self._heard: dict[str, float] = {}  # channel → monotonic time of its last frame (or of subscribing)
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._on_wire: set[str] = set()  # channels subscribed on the current connection (the loop's thread only)
        self._closed = False
        self.on_idle: Callable[[StreamHub], None] | None = None
        self._on_connection: list[Callable[[bool], None]] = []
        self._on_garbage: list[Callable[[], None]] = []
        self._connected = False
        self._connections = 0
        self._frames = self._garbage = self._oversized = self._pings = 0
        self._lag_ms: int | None = None
        self._last_error = ""

    # --- threaded side ---------------------------------------------------------------------------------------

    def subscribe(self, symbol: str, callback: Callback) -> Subscription:
        """Deliver every frame of ``symbol``'s depth and trade channels to ``callback`` until the handle closes."""
        names = [channel(symbol, kind) for kind in KINDS]  # ValueError for a symbol that is not letters and digits
        sym = symbol.lower()
        ident = next(self._ids)
        with self._lock:
            if self._closed:
                raise RuntimeError("the stream hub is closed")
            first = sym not in self._subscribers
            self._subscribers.setdefault(sym, {})[ident] = callback
            if first:
                now = time.monotonic()
                for name in names:
                    self._heard[name] = now
        self._start()
        if first:
            self._call(self._send_event, "sub", names)
        return Subscription(self, sym, ident)

    def _unsubscribe(self, symbol: str, ident: int) -> None:
        with self._lock:
            callbacks = self._subscribers.get(symbol, {})
            callbacks.pop(ident, None)
            last = not callbacks and symbol in self._subscribers
            if last:
                del self._subscribers[symbol]
                names = [channel(symbol, kind) for kind in KINDS]
                for name in names:
                    self._heard.pop(name, None)
            idle = not self._subscribers
        if last:
            self._call(self._send_event, "unsub", names)
        if idle and self._close_when_idle:
            if self.on_idle is not None:
                self.on_idle(self)
            self.close()

    def on_connection(self, callback: Callable[[bool], None]) -> None:
        """Call ``callback(connected)`` (in the hub's thread; it must return quickly) each time the connection opens
        or is lost, so that a reader can fall back at once rather than at its next look."""
        with self._lock:
            self._on_connection.append(callback)

    def on_garbage(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in the hub's thread; it must return quickly) for every frame that cannot be read:
        it may have been any symbol's trade, so a record of the trades is not whole across it."""
        with self._lock:
            self._on_garbage.append(callback)

    def age(self, name: str) -> float | None:
        """Seconds since ``name`` (a channel) last sent a frame, or since it was subscribed if it never did;
        None when no one follows it. A silent channel ages while the connection stays open."""
        with self._lock:
            heard = self._heard.get(name)
        return None if heard is None else max(0.0, time.monotonic() - heard)

    def stats(self) -> StreamStats:
        """The counters now: connected, frames, reconnects, garbage (oversized included), pings, the last lag."""
        with self._lock:
            return StreamStats(
                self.url,
                self._connected,
                self._frames,
                max(0, self._connections - 1),
                self._garbage,
                self._oversized,
                self._pings,
                self._lag_ms,
                self._last_error,
            )

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection and end the hub's thread; subscribers get nothing more. Idempotent."""
        with self._lock:
            self._closed = True
            loop, thread, task = self._loop, self._thread, self._task
        if loop is not None and task is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                loop.call_soon_threadsafe(task.cancel)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            loop = asyncio.new_event_loop()
            self._loop = loop
            self._task = loop.create_task(self._run())
            self._thread = threading.Thread(target=self._main, args=(loop,), name="rebalancer-stream", daemon=True)
            self._thread.start()

    def _main(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        assert self._task is not None
        try:
            loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _call(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` (a coroutine function) in the hub's loop, from any thread."""
        loop = self._loop
        if loop is None:
            return

        def schedule() -> None:
            loop.create_task(function(*args))

        with contextlib.suppress(RuntimeError):  # the loop already ended: the hub is closed
            loop.call_soon_threadsafe(schedule)

    # --- the loop's side -------------------------------------------------------------------------------------

    async def _run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, WebSocketException

        failures = 0
        host = _host(self.url)
        while True:
            try:
                async with connect(
                    self.url,
                    compression=None,
                    max_size=self.max_bytes * WIRE_FACTOR,
                    open_timeout=self._open_timeout,
                    close_timeout=2,
                    proxy=None if is_loopback(host) else True,
                    user_agent_header=f"rebalancer/{__version__}",
                ) as ws:
                    with self._lock:
                        self._ws, self._connected = ws, True
                        self._connections += 1
                        subscribed = [channel(sym, kind) for sym in self._subscribers for kind in KINDS]
                    log.info("market stream connected", extra={"url": self.shown_url})
                    self._tell_connection(True)
                    self._on_wire = set()
                    if subscribed:
                        await self._send_event("sub", subscribed)
                    async for raw in ws:
                        if await self._receive(raw, ws):
                            failures = 0
            except ConnectionClosed as exc:
                if exc.sent is not None and exc.sent.code == 1009:  # a frame beyond the wire bound
                    with self._lock:
                        self._garbage += 1
                        self._oversized += 1
                self._note(f"connection closed: {exc}")
            except (OSError, WebSocketException, TimeoutError) as exc:
                self._note(f"cannot connect: {type(exc).__name__}: {exc}")
            except Exception as exc:  # never let one surprise end the hub: log it, back off, connect again
                log.exception("market stream client failed", extra={"url": self.shown_url})
                self._note(f"failed: {type(exc).__name__}: {exc}")
            finally:
                with self._lock:
                    was, self._ws, self._connected = self._connected, None, False
                if was and not self._closed:
                    extra = {"url": self.shown_url, "error": self._last_error}
                    log.warning("market stream disconnected", extra=extra)
                    self._tell_connection(False)
            base, cap = self._backoff
            delay = min(cap, base * 2 ** min(failures, 30)) * self._random.uniform(0.5, 1.0)
            failures += 1
            await asyncio.sleep(delay)

    def _tell_connection(self, connected: bool) -> None:
        self._tell(self._on_connection, connected)

    def _tell(self, listeners: list[Callable[..., None]], *args: object) -> None:
        with self._lock:
            callbacks = list(listeners)
        for callback in callbacks:
            try:
                callback(*args)
            except Exception:  # a reader's bug must not end the stream
                log.exception("stream callback failed", extra={"url": self.shown_url})

    def _note(self, error: str) -> None:
        with self._lock:
            self._last_error = error.splitlines()[0][:200] if error else ""

    async def _send_event(self, event: str, names: list[str]) -> None:
        ws = self._ws
        if ws is None:
            return  # sent on (re)connecting
        from websockets.exceptions import ConnectionClosed

        # A subscriber that arrives while the connection opens is named both by the connect's "sub" and by its
        # own: each channel is asked for once per connection.
        if event == "sub":
            names = [name for name in names if name not in self._on_wire]
            self._on_wire.update(names)
        else:
            self._on_wire.difference_update(names)
        with contextlib.suppress(ConnectionClosed):
            for name in names:
                await ws.send(json.dumps({"event": event, "params": {"channel": name, "cb_id": name}}))

    async def _receive(self, raw: bytes | str, ws: ClientConnection) -> bool:
        """Handle one frame; True when it was a good one."""
        received_ms = time.time_ns() // 1_000_000
        try:
            text = decompress(raw, max_bytes=self.max_bytes)
            obj = loads(text)
            message = parse_message(obj)
        except FrameError as exc:
            with self._lock:
                self._garbage += 1
                self._oversized += isinstance(exc, FrameTooLarge)
            log.debug("stream frame ignored", extra={"url": self.shown_url, "error": str(exc)})
            self._tell(self._on_garbage)
            return False
        if isinstance(message, Ping):
            from websockets.exceptions import ConnectionClosed

            with self._lock:
                self._pings += 1
            value = obj["ping"] if isinstance(obj["ping"], int | str) else message.ts
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"pong": value}))
            return True
        self._deliver(obj, message, text, received_ms)
        return True

    def _deliver(self, obj: dict[str, Any], message: Message, text: str, received_ms: int) -> None:
        name = obj.get("channel") if isinstance(obj.get("channel"), str) else ""
        try:
            symbol = symbol_of(str(name))
        except FrameError:
            symbol = ""
        with self._lock:
            self._frames += 1
            if isinstance(message, Depth | Trades | TickerTick) and name in self._heard:
                self._heard[str(name)] = time.monotonic()
                self._lag_ms = received_ms - message.ts_ms
            callbacks = list(self._subscribers.get(symbol, {}).values())
        if isinstance(message, SubAck) and message.status != "ok":
            log.warning("stream subscription refused", extra={"channel": message.channel, "status": message.status})
        event = Received(message, text, received_ms)
        for callback in callbacks:
            try:
                callback(event)
            except Exception:  # a subscriber's bug must not end the stream for the others
                log.exception("stream subscriber failed", extra={"channel": name})


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).hostname or ""


_HUBS: dict[str, StreamHub] = {}
_HUBS_LOCK = threading.Lock()


def shared_hub(url: str, *, insecure: bool = False, max_bytes: int = DEFAULT_MAX_BYTES) -> StreamHub:
    """This process's hub for ``url`` (made on first use; it closes when its last subscription closes)."""
    with _HUBS_LOCK:
        hub = _HUBS.get(url)
        if hub is None or hub._closed:
            hub = StreamHub(url, insecure=insecure, max_bytes=max_bytes, close_when_idle=True)
            hub.on_idle = _forget
            _HUBS[url] = hub
        return hub


def _forget(hub: StreamHub) -> None:
    with _HUBS_LOCK:
        if _HUBS.get(hub.url) is hub:
            del _HUBS[hub.url]


def subscribe(url: str, symbol: str, callback: Callback, *, insecure: bool = False) -> Subscription:
    """Follow ``symbol`` on the stream at ``url`` through this process's shared connection to it."""
    while True:
        hub = shared_hub(url, insecure=insecure)
        try:
            return hub.subscribe(symbol, callback)
        except RuntimeError:  # its last subscriber closed it meanwhile: take a fresh one
            continue
