"""The hand-off between the market stream's threads and the stream wake source's own thread.

A hub's thread (the websocket's event loop) must never wait for the work its frames cause, so it only drops them
here: per symbol the newest book (a book is a whole snapshot), every trade folded into one ``Prints`` and the lags
for the metric, and the URLs whose connection was lost. The wake source's thread takes all of it at once
(``take``), waiting until something arrives, a wake held back by ``min_gap`` is due, or its next look at the books'
ages. One condition guards it all, held only for these few assignments.

Beside that hand-off, each symbol's ``Tape`` (``stream.tape``) records its trades, silences and breaks as they
arrive, for the passes that ask whether an order they cancelled could have filled (``core.witness``).
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rebalancer.core.wake import Book, Prints, book_of, prints_of
from rebalancer.stream.client import Received
from rebalancer.stream.frames import TRADES, Depth, FrameError, SubAck, Trades, kind_of
from rebalancer.stream.tape import Tape

Key = tuple[str, str]
"""A followed symbol: (stream URL, symbol)."""


@dataclass(eq=False)
class Arrived:
    """What the hub's thread handed over for one symbol since the source last took it."""

    book: Book | None = None
    prints: Prints | None = None
    lag_ms: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Taken:
    """Everything handed over since the last ``take``, and the held-back wakes now due (job names)."""

    arrived: dict[Key, Arrived]
    lost: set[str]
    due: list[str]


class Inbox:
    """See the module doc. ``clock`` gives wall-clock seconds (the held-back wakes' due times are in ms)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._cond = threading.Condition()
        self._arrived: dict[Key, Arrived] = {}
        self._lost: set[str] = set()
        self._delayed: list[tuple[int, str]] = []  # (due ms, job) heap
        self._clock = clock
        self._tapes: dict[Key, Tape] = {}
        self._tapes_lock = threading.Lock()
        self.closed = False

    def tape(self, key: Key) -> Tape:
        """The record of ``key``'s trades and breaks (made on first use: whole only from its next acknowledgement)."""
        with self._tapes_lock:
            return self._tapes.setdefault(key, Tape())

    def drop_tape(self, key: Key) -> None:
        """Forget ``key``'s record (no one follows the symbol any more)."""
        with self._tapes_lock:
            self._tapes.pop(key, None)

    def frame(self, key: Key, frame: Received) -> None:
        """A frame of a followed symbol (the hub's thread): a book or trades are kept and recorded on the tape, the
        trade channel's acknowledgement starts the tape, anything else ignored."""
        message = frame.message
        if isinstance(message, SubAck):
            if message.status == "ok" and _is_trades(message.channel):
                self.tape(key).acknowledged(frame.received_ms)
            return
        if isinstance(message, Depth | Trades):
            prices = [t.price for t in message.trades] if isinstance(message, Trades) else []
            self.tape(key).heard(frame.received_ms, frame.received_ms - message.ts_ms, prices)
        if isinstance(message, Depth):
            update: Book | Prints | None = book_of(message.bids, message.asks, message.ts_ms)
        elif isinstance(message, Trades):
            update = prints_of((t.price, t.ts_ms) for t in message.trades)
        else:
            return
        if update is None:
            return
        with self._cond:
            arrived = self._arrived.setdefault(key, Arrived())
            if isinstance(update, Book):
                arrived.book = update
            else:
                arrived.prints = update if arrived.prints is None else arrived.prints.then(update)
            arrived.lag_ms.append(frame.received_ms - message.ts_ms)
            self._cond.notify()

    def lost(self, url: str) -> None:
        """The connection to ``url`` was lost (the hub's thread): its symbols' tapes break until acknowledged again."""
        self._break(url, lost=True)
        with self._cond:
            self._lost.add(url)
            self._cond.notify()

    def garbage(self, url: str) -> None:
        """A frame from ``url`` could not be read (the hub's thread): it may have been a trade of any symbol there."""
        self._break(url, lost=False)

    def _break(self, url: str, *, lost: bool) -> None:
        at_ms = int(self._clock() * 1000)
        with self._tapes_lock:
            tapes = [tape for (tape_url, _), tape in self._tapes.items() if tape_url == url]
        for tape in tapes:
            tape.broken(at_ms, lost=lost)

    def delay(self, at_ms: int, name: str) -> None:
        """Hand ``name``'s held-back wake back at ``at_ms``."""
        with self._cond:
            heapq.heappush(self._delayed, (at_ms, name))
            self._cond.notify()

    def take(self, timeout: float) -> Taken | None:
        """Wait up to ``timeout`` seconds (less when a held-back wake comes due sooner) for something, then take
        everything; None once closed."""
        with self._cond:
            if self._delayed:
                timeout = min(timeout, max(0.0, self._delayed[0][0] / 1000 - self._clock()))
            if not self.closed and not self._arrived and not self._lost:
                self._cond.wait(timeout)
            if self.closed:
                return None
            now_ms = int(self._clock() * 1000)
            due = []
            while self._delayed and self._delayed[0][0] <= now_ms:
                due.append(heapq.heappop(self._delayed)[1])
            taken = Taken(self._arrived, self._lost, due)
            self._arrived, self._lost = {}, set()
            return taken

    def pause(self, seconds: float) -> None:
        """Wait ``seconds`` unless closed meanwhile (after a failure, before going on)."""
        with self._cond:
            if not self.closed:
                self._cond.wait(seconds)

    def close(self) -> None:
        """Wake the taker: ``take`` answers None from now on."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()


def _is_trades(name: str) -> bool:
    try:
        return kind_of(name) == TRADES
    except FrameError:  # not a market channel
        return False
