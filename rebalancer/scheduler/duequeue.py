"""The passes that are due, served oldest-due first by a fixed pool of workers: fair under overload.

Wake sources only say *that* a job is due; the job then waits here. A worker always takes the job that has waited
longest (the earliest due time), so when passes come due faster than they can run every job is still served in
turn: a job that just had its pass comes due again behind every job already waiting. A job is never waiting twice:
a due time that arrives while it still waits is coalesced into the one it has (counted as skipped), which is what
overload looks like, and is said in the logs (at most once per ``OVERLOAD_LOG_SECONDS``) and in the metrics.
A job already running may wait for its next pass, but is handed out only once its running pass is done.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from rebalancer.defaults import OVERLOAD_LOG_SECONDS

log = logging.getLogger("rebalancer.daemon")


@dataclass(frozen=True, slots=True)
class Due:
    """A job handed to a worker: its name and when (``time.time()``) its pass was due."""

    name: str
    due: float


class DueQueue:
    """Jobs waiting for their pass, earliest due first; thread-safe. ``take`` blocks until one may run."""

    def __init__(
        self,
        *,
        on_skip: Callable[[str], None] = lambda name: None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_skip = on_skip
        self._clock = clock
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._waiting: dict[str, tuple[float, int]] = {}
        self._running: set[str] = set()
        self._seq = itertools.count()
        self._closed = False
        self.skipped = 0
        self._skipped_logged = 0
        self._logged_at = float("-inf")
        self._skipped_at = float("-inf")

    @property
    def overloaded(self) -> bool:
        """True when a due was coalesced in the last ``OVERLOAD_LOG_SECONDS``: passes come due faster than they run."""
        with self._cond:
            return self._monotonic() - self._skipped_at < OVERLOAD_LOG_SECONDS

    def put(self, name: str, due: float | None = None) -> bool:
        """``name`` is due (at ``due``, else now); False when it was already waiting (the due is coalesced)."""
        due = self._clock() if due is None else due
        with self._cond:
            if self._closed:
                return False
            if name in self._waiting:
                self.skipped += 1
                self._skipped_at = self._monotonic()
                coalesced = True
            else:
                entry = (due, next(self._seq))
                self._waiting[name] = entry
                heapq.heappush(self._heap, (*entry, name))
                self._cond.notify()
                coalesced = False
        if coalesced:
            self._on_skip(name)
            self._say_overload()
        return not coalesced

    def take(self, timeout: float | None = None) -> Due | None:
        """The longest-waiting job not running now, marked running; None when closed (or after ``timeout``)."""
        deadline = None if timeout is None else self._monotonic() + timeout
        with self._cond:
            while True:
                if self._closed:
                    return None
                found = self._pop_ready()
                if found is not None:
                    return found
                left = None if deadline is None else deadline - self._monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def done(self, name: str) -> None:
        """The pass of ``name`` has ended: it may be handed out again."""
        with self._cond:
            self._running.discard(name)
            self._cond.notify_all()

    def discard(self, name: str) -> None:
        """Forget a waiting pass of ``name`` (the job was removed)."""
        with self._cond:
            self._waiting.pop(name, None)

    def close(self) -> None:
        """Wake every worker: ``take`` answers None from now on."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def depth(self) -> int:
        """How many jobs wait for a pass."""
        with self._cond:
            return len(self._waiting)

    def oldest_wait(self) -> float:
        """Seconds the longest-waiting job has waited (0 when none waits)."""
        with self._cond:
            oldest = min((due for due, _ in self._waiting.values()), default=None)
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    def _pop_ready(self) -> Due | None:
        busy: list[tuple[float, int, str]] = []
        found = None
        while self._heap:
            due, seq, name = heapq.heappop(self._heap)
            if self._waiting.get(name) != (due, seq):
                continue  # discarded or replaced
            if name in self._running:
                busy.append((due, seq, name))
                continue
            del self._waiting[name]
            self._running.add(name)
            found = Due(name, due)
            break
        for entry in busy:
            heapq.heappush(self._heap, entry)
        return found

    def _say_overload(self) -> None:
        now = self._monotonic()
        with self._cond:
            if now - self._logged_at < OVERLOAD_LOG_SECONDS:
                return
            self._logged_at = now
            skipped, self._skipped_logged = self.skipped - self._skipped_logged, self.skipped
            depth = len(self._waiting)
        log.warning(
            "overloaded: passes come due faster than they run; every job is still served in turn",
            extra={"waiting": depth, "skipped": skipped, "oldest_wait_s": round(self.oldest_wait(), 1)},
        )
