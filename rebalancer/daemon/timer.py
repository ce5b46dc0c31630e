"""The daemon's timer wake source: one thread and a heap of due times, each job's next one from the APScheduler
trigger of its ``schedule``. The thread only says that a job is due (``wake(name, WakeReason.TIMER)``); passes run
on the daemon's workers. APScheduler's own scheduler is not used: at a thousand jobs its per-tick work (job store,
executor pool, events) and the thread hand-off through its pool cost more than the wake itself.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rebalancer.job import Job
from rebalancer.scheduler.timing import make_trigger
from rebalancer.vocab import WakeReason

log = logging.getLogger("rebalancer.daemon")

_EARLY_SECONDS = 0.01  # wakes this close together share one sleep of the thread (a thousand jobs: ~5 a sleep)


@dataclass
class _Timer:
    """One job's trigger, its last fire time (None before the first) and the heap entry that is current."""

    trigger: Any
    fired: datetime | None
    seq: int


class TimerWakes:
    """Wakes each job on its schedule, the first time at once. When the thread comes late, the job is woken once
    (its lateness counted from the fire time it missed first) and the fire times passed over meanwhile are
    counted by ``on_skip``."""

    def __init__(self, on_skip: Callable[[str], None], clock: Callable[[], float] = time.time) -> None:
        self._on_skip = on_skip
        self._clock = clock
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._timers: dict[str, _Timer] = {}
        self._due: dict[str, float] = {}
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._stopped = False

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return self._thread is not None and not self._stopped

    def add(self, job: Job) -> None:
        """Wake ``job`` now, then on its schedule (replacing an older version's)."""
        now = self._clock()
        trigger = make_trigger(job, datetime.fromtimestamp(now, UTC))
        with self._cond:
            seq = next(self._seq)
            self._timers[job.name] = _Timer(trigger, None, seq)
            heapq.heappush(self._heap, (now, seq, job.name))
            self._cond.notify()

    def remove(self, name: str) -> None:
        """No more wakes for ``name`` (its heap entry is dropped when it comes up)."""
        with self._cond:
            self._timers.pop(name, None)
            self._due.pop(name, None)

    def start(self, wake: Callable[[str, WakeReason], None]) -> None:
        """Start the clock; ``wake`` is called from its thread."""
        self._thread = threading.Thread(target=self._run, args=(wake,), name="rebalancer-timer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the clock (a wake under way finishes by itself)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def due_time(self, name: str) -> datetime | None:
        """When ``name``'s latest wake was due (answered once)."""
        with self._cond:
            due = self._due.pop(name, None)
        return None if due is None else datetime.fromtimestamp(due, UTC)

    def _run(self, wake: Callable[[str, WakeReason], None]) -> None:
        while (name := self._next()) is not None:
            try:
                wake(name, WakeReason.TIMER)
            except Exception:  # one job's wake must never stop the clock of the others
                log.exception("waking a job failed", extra={"job": name})

    def _next(self) -> str | None:
        """Wait for the earliest due job, schedule its next wake and return its name; None once stopped."""
        with self._cond:
            while not self._stopped:
                if not self._heap:
                    self._cond.wait()
                    continue
                due, seq, name = self._heap[0]
                timer = self._timers.get(name)
                if timer is None or timer.seq != seq:
                    heapq.heappop(self._heap)  # removed or replaced
                    continue
                now = self._clock()
                if due > now + _EARLY_SECONDS:
                    self._cond.wait(due - now)
                    continue
                heapq.heappop(self._heap)
                self._due[name] = due
                skipped = self._reschedule(name, timer, now)
                break
            else:
                return None
        for _ in range(skipped):
            self._on_skip(name)
        if skipped:
            log.warning("pass skipped: the daemon was late", extra={"job": name, "skipped": skipped})
        return name

    def _reschedule(self, name: str, timer: _Timer, now: float) -> int:
        """Push the job's first fire time after ``now``; how many fire times before it were passed over."""
        moment = datetime.fromtimestamp(now, UTC)
        fire = timer.trigger.get_next_fire_time(timer.fired, moment)
        skipped = 0
        while fire is not None and fire <= moment:
            skipped += timer.fired is not None
            timer.fired = fire
            fire = timer.trigger.get_next_fire_time(fire, moment)
        if fire is None:
            return skipped
        timer.fired = fire
        timer.seq = next(self._seq)
        heapq.heappush(self._heap, (fire.timestamp(), timer.seq, name))
        return skipped
