"""When the daemon's timer would have woken a job: its ``schedule`` on the replay's clock.

The daemon runs a job's first pass when it starts and then on the APScheduler trigger of
``rebalancer.scheduler.timing.schedule_trigger`` (interval phased by the job's name, or cron); fire times that pass
while a pass runs coalesce into one. Jitter is drawn from a generator seeded by the job's name instead of the
trigger's own, uniform in [0, jitter] as the trigger draws it, so the same replay always wakes at the same times.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from rebalancer.job import Job
from rebalancer.scheduler.timing import schedule_trigger


def to_datetime(ms: int) -> datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def to_ms(moment: datetime) -> int:
    """An aware datetime as epoch milliseconds."""
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


class Timer:
    """The job's timer from ``start_ms``: ``due_ms`` is when it fires next (the first time: at the start)."""

    def __init__(self, job: Job, start_ms: int) -> None:
        self._trigger: Any = schedule_trigger(job.name, job.schedule, to_datetime(start_ms))
        self._trigger.jitter = None
        self._jitter = float(job.schedule.jitter_seconds)
        self._rng = random.Random(f"jitter:{job.name}")
        self._fire: datetime | None = None
        self.due_ms: int | None = start_ms

    def fired(self, now_ms: int) -> None:
        """The timer fired and its pass ended at ``now_ms``: the next due time is the first fire time after it."""
        now = to_datetime(now_ms)
        fire = self._trigger.get_next_fire_time(self._fire, now)
        while fire is not None and fire <= now:
            self._fire = fire
            fire = self._trigger.get_next_fire_time(fire, now)
        self._fire = fire
        if fire is None:
            self.due_ms = None
            return
        jitter = self._rng.uniform(0, self._jitter) if self._jitter else 0.0
        self.due_ms = to_ms(fire) + int(jitter * 1000)
