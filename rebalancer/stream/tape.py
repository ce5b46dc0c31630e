"""The stream's record of one symbol, kept so that a pass can ask whether a trade could have filled an order.

Written by the hub's thread (``scheduler.streaminbox``), read by passes (``TapeView`` of ``core.witness``), one lock.
Times are receive times in ms. It keeps the trades' times and prices and the silences between the symbol's frames
over a bounded window (``KEEP_MS``, ``MAX_ENTRIES``), the times a frame lagged its own time by more than
``SETTLE_MS``, and since when it is whole: from the trade channel's acknowledgement, moved on by every garbage frame
on the connection and by everything pruned, and void from a lost connection until the next acknowledgement.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from decimal import Decimal

from rebalancer.core.witness import KEEP_MS, SETTLE_MS, SILENCE_FLOOR_MS, TapeView

MAX_ENTRIES = 4096
"""The most trades (and, apart, silences) kept; the oldest go first, and the record is whole only after them."""


class Tape:
    """See the module doc."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._whole_since: int | None = None
        self._heard: int | None = None
        self._prints: deque[tuple[int, Decimal]] = deque()
        self._silences: deque[tuple[int, int]] = deque()  # (from ms, to ms)
        self._lagged: deque[int] = deque()

    def acknowledged(self, at_ms: int) -> None:
        """The trade channel's subscription took at ``at_ms``: the record is whole from then (unless it already
        was)."""
        with self._lock:
            if self._whole_since is None:
                self._whole_since = at_ms
            self._heard = at_ms if self._heard is None else max(self._heard, at_ms)

    def heard(self, at_ms: int, lag_ms: int, prices: Iterable[Decimal] = ()) -> None:
        """A frame of the symbol arrived at ``at_ms``, ``lag_ms`` after its own time, with these trades' prices."""
        with self._lock:
            if self._heard is not None and at_ms - self._heard > SILENCE_FLOOR_MS:
                self._silences.append((self._heard, at_ms))
            self._heard = at_ms if self._heard is None else max(self._heard, at_ms)
            self._prints.extend((at_ms, price) for price in prices)
            if lag_ms > SETTLE_MS:
                self._lagged.append(at_ms)
            self._prune(at_ms)

    def broken(self, at_ms: int, *, lost: bool) -> None:
        """Something may be missing from ``at_ms`` on: a garbage frame (whole again after it) or a lost connection
        (``lost``: whole again only after the next acknowledgement)."""
        with self._lock:
            if lost or self._whole_since is None:
                self._whole_since = None
            else:
                self._whole_since = max(self._whole_since, at_ms)

    def view(self, since_ms: int, now_ms: int) -> TapeView:
        """What the record says about ``since_ms`` .. ``now_ms`` (``core.witness.TapeView``)."""
        with self._lock:
            covered = self._whole_since is not None and self._whole_since <= since_ms and self._heard is not None
            prices = [price for at, price in self._prints if at >= since_ms]
            gaps = [to - max(start, since_ms) for start, to in self._silences if to > since_ms]
            tail = now_ms - max(self._heard or since_ms, since_ms)
            lagging = any(at >= since_ms for at in self._lagged)
        return TapeView(covered, tuple(prices), max([tail, *gaps]), lagging)

    def _prune(self, now_ms: int) -> None:
        """(held) Drop what is older than ``KEEP_MS`` or beyond ``MAX_ENTRIES``; the record is whole only after."""
        horizon = now_ms - KEEP_MS
        ends: list[int] = []
        while self._prints and (len(self._prints) > MAX_ENTRIES or self._prints[0][0] < horizon):
            ends.append(self._prints.popleft()[0] + 1)
        while self._silences and (len(self._silences) > MAX_ENTRIES or self._silences[0][1] < horizon):
            ends.append(self._silences.popleft()[1])
        while self._lagged and (len(self._lagged) > MAX_ENTRIES or self._lagged[0] < horizon):
            ends.append(self._lagged.popleft() + 1)
        if ends and self._whole_since is not None:
            self._whole_since = max(self._whole_since, *ends)
