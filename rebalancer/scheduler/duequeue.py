"""The passes that are due, served oldest-due first by a fixed pool of workers: fair under overload.

Wake sources only say *that* a job is due; the job then waits here. A worker always takes the job that has waited
longest (the earliest due time), so when passes come due faster than they can run every job is still served in
turn: a job that just had its pass comes due again behind every job already waiting. A job is never waiting twice:
a due time that arrives while it still waits is coalesced into the one it has (counted as skipped), which is what
overload looks like, and is said in the logs (at most once per ``OVERLOAD_LOG_SECONDS``) and in the metrics.
A job already running may wait for its next pass, but is handed out only once its running pass is done.

An *urgent* pass (one the market stream asked for: the market moved the job's ladder, a trade reached its orders)
is served before every routine one (the timer's reconcile), oldest first among the urgent: a reaction must not wait
behind a period's worth of timer passes. A job waiting for a routine pass that is then woken urgently keeps its
place in time and moves to the front. ``min_gap`` bounds how often one job can be urgent.
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
        self._heap: list[tuple[int, float, int, str]] = []  # (rank: 0 urgent, 1 routine; due; order; job)
        self._waiting: dict[str, tuple[int, float, int]] = {}
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

    def put(self, name: str, due: float | None = None, *, urgent: bool = False) -> bool:
        """``name`` is due (at ``due``, else now), ``urgent`` or routine; False when it was already waiting (the due
        is coalesced; an urgent one moves a routine wait to the front, keeping its due time)."""
        due = self._clock() if due is None else due
        rank = 0 if urgent else 1
        with self._cond:
            if self._closed:
                return False
            waiting = self._waiting.get(name)
            if waiting is not None:
                if rank < waiting[0]:
                    self._push(name, rank, waiting[1])
                coalesced = not urgent  # a routine tick lost in a wait is a skipped tick; a reaction is not
                if coalesced:
                    self.skipped += 1
                    self._skipped_at = self._monotonic()
            else:
                self._push(name, rank, due)
                coalesced = False
        if coalesced:
            self._on_skip(name)
            self._say_overload()
        return waiting is None

    def _push(self, name: str, rank: int, due: float) -> None:
        """(locked) ``name`` waits with ``rank`` since ``due`` (an older entry of it is left in the heap, stale)."""
        entry = (rank, due, next(self._seq))
        self._waiting[name] = entry
        heapq.heappush(self._heap, (*entry, name))
        self._cond.notify()

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
            oldest = min((due for _, due, _ in self._waiting.values()), default=None)
        return 0.0 if oldest is None else max(0.0, self._clock() - oldest)

    def _pop_ready(self) -> Due | None:
        busy: list[tuple[int, float, int, str]] = []
        found = None
        while self._heap:
            rank, due, seq, name = heapq.heappop(self._heap)
            if self._waiting.get(name) != (rank, due, seq):
                continue  # discarded or replaced
            if name in self._running:
                busy.append((rank, due, seq, name))
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
