"""When passes are due: triggers from a job's ``schedule``, their phasing, lateness bookkeeping and failure backoff.

``rebalancer.daemon.scheduler`` asks this module *when*; it never decides *what* a pass does.
"""

from __future__ import annotations

import random
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from rebalancer.defaults import CRON_PERIOD_SECONDS, FAILURE_BACKOFF_BASE_SECONDS, FAILURE_BACKOFF_CAP_SECONDS
from rebalancer.job import Job, Schedule
from rebalancer.state.status import ScheduledJob


def backoff_delay(
    failures: int, *, base: float = FAILURE_BACKOFF_BASE_SECONDS, cap: float = FAILURE_BACKOFF_CAP_SECONDS
) -> float:
    """Seconds to wait after ``failures`` consecutive failed passes: exponential, capped, with ±20 % jitter."""
    if failures <= 0:
        return 0.0
    delay = min(cap, base * 2 ** (failures - 1))
    return delay * random.uniform(0.8, 1.2)


def interval_seconds(job: Job) -> float:
    """The job's nominal period, for leases and grace times (cron jobs count as one minute)."""
    return float(job.schedule.every_seconds) if job.schedule.every_seconds is not None else CRON_PERIOD_SECONDS


def make_trigger(job: Job, now: datetime) -> Any:
    """The APScheduler trigger of a job's ``schedule``, its first interval starting from ``now``."""
    return schedule_trigger(job.name, job.schedule, now)


def schedule_trigger(name: str, schedule: Schedule, start: datetime) -> Any:
    """The APScheduler trigger of ``schedule`` for the job called ``name``.

    Interval jobs are phased by a stable hash of their name across one interval, so that many jobs on one period
    do not all come due at the same instant (which starves the ones at the back of the queue). The cluster's
    dispatcher passes one fixed ``start`` for every member, so that all agree on when a job is due.
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    jitter = float(schedule.jitter_seconds) or None
    if schedule.cron:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=UTC)
        trigger.jitter = jitter
        return trigger
    interval = float(schedule.every_seconds) if schedule.every_seconds is not None else CRON_PERIOD_SECONDS
    phase = zlib.crc32(name.encode()) % 10_000 / 10_000 * interval
    return IntervalTrigger(seconds=interval, jitter=jitter, start_date=start + timedelta(seconds=phase), timezone=UTC)


def scheduled_job(job: Job) -> ScheduledJob:
    """What the state store keeps of a scheduled job for ``rebalancer status``: file, schedule, paused flag."""
    every = job.schedule.every_seconds
    return ScheduledJob(job.name, job.source, None if every is None else float(every), job.schedule.cron, job.paused)


def next_due(schedule: ScheduledJob, last_start: datetime | None, now: datetime) -> datetime:
    """When a job's next pass is due: a period after its last pass (cron: the next fire time after it).

    A job that never ran, or whose due time has passed, is due ``now``. An estimate: the daemon's own trigger
    is phased and jittered, and a paused or backing-off job skips passes.
    """
    if last_start is None:
        return now
    if schedule.cron:
        from apscheduler.triggers.cron import CronTrigger

        fire = CronTrigger.from_crontab(schedule.cron, timezone=UTC).get_next_fire_time(None, last_start)
        due = fire if fire is not None else now
    else:
        due = last_start + timedelta(seconds=schedule.every_seconds or 60.0)
    return max(due, now)
