"""The daemon's timer wake source: each job's ``schedule`` as an APScheduler 3.x trigger. Its threads only say that
a job is due (``wake(name, WakeReason.TIMER)``); passes run on the daemon's workers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rebalancer.defaults import SCHEDULER_TICK_THREADS
from rebalancer.job import Job
from rebalancer.scheduler.timing import ScheduleBook, interval_seconds, make_trigger
from rebalancer.vocab import WakeReason

log = logging.getLogger("rebalancer.daemon")


class TimerWakes:
    """Wakes each job on its schedule, the first time at once; a late tick runs once (late ones coalesce) within a
    whole period, and a tick skipped because the last overran or the daemon was late is counted by ``on_skip``."""

    def __init__(self, on_skip: Callable[[str], None]) -> None:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.schedulers.background import BackgroundScheduler

        self._book = ScheduleBook()
        self._on_skip = on_skip
        self._wake: Callable[[str, WakeReason], None] | None = None
        self._scheduler = BackgroundScheduler(
            executors={"default": self._book.executor(max_workers=SCHEDULER_TICK_THREADS)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._scheduler.add_listener(self._skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    @property
    def running(self) -> bool:
        """True between ``start`` and ``stop``."""
        return bool(self._scheduler.running)

    def add(self, job: Job) -> None:
        """Wake ``job`` now, then on its schedule (replacing an older version's)."""
        grace = max(1, int(interval_seconds(job)))
        now = datetime.now(UTC)
        self._scheduler.add_job(
            self._tick,
            make_trigger(job, now),
            args=[job.name],
            id=job.name,
            name=job.name,
            next_run_time=now,
            misfire_grace_time=grace,
            replace_existing=True,
        )

    def remove(self, name: str) -> None:
        """No more wakes for ``name``."""
        with contextlib.suppress(Exception):
            self._scheduler.remove_job(name)

    def start(self, wake: Callable[[str, WakeReason], None]) -> None:
        """Start the clock; ``wake`` is called from its threads."""
        self._wake = wake
        self._scheduler.start()

    def stop(self) -> None:
        """Stop the clock (a tick under way finishes by itself)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def due_time(self, name: str) -> datetime | None:
        """When ``name``'s latest tick was due (answered once)."""
        return self._book.due_time(name)

    def _tick(self, name: str) -> None:
        if self._wake is not None:
            self._wake(name, WakeReason.TIMER)

    def _skipped(self, event: Any) -> None:
        name = getattr(event, "job_id", "?")
        self._on_skip(name)
        log.warning("pass skipped: the previous one overran or the daemon was late", extra={"job": name})
