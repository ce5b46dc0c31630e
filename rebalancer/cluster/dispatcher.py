"""Which jobs are due, and enqueueing them: the body of the cluster's periodic ``dispatch`` task.

Fire times come from the same triggers as the single daemon (``rebalancer.scheduler.timing``), so ``every``,
``cron`` and ``jitter`` keep their meaning; every member builds them from one fixed start, so they agree on the
phase. The next due time of each job is kept in the state store, so whichever member dispatches carries on from
where the last one stopped. The dispatcher runs once a second: a period under a second is served once a second.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rebalancer.defaults import CLUSTER_MEMBER_STALE_SECONDS
from rebalancer.job import Schedule
from rebalancer.scheduler.timing import schedule_trigger
from rebalancer.state.records import from_ms, to_ms
from rebalancer.state.store import StateStore

log = logging.getLogger("rebalancer.cluster")

PHASE_START = datetime(2000, 1, 1, tzinfo=UTC)  # the common start of every member's interval triggers


def schedule_text(schedule: Schedule) -> str:
    """A job's schedule as the JSON text the state store keeps for the dispatcher."""
    return json.dumps(
        {
            "every": None if schedule.every_seconds is None else str(schedule.every_seconds),
            "cron": schedule.cron,
            "jitter": str(schedule.jitter_seconds),
        },
        sort_keys=True,
    )


def schedule_of(text: str) -> Schedule:
    """The ``Schedule`` kept as ``text`` by ``schedule_text``."""
    data = json.loads(text)
    every = data.get("every")
    return Schedule(
        every_seconds=None if every is None else Decimal(every),
        cron=data.get("cron"),
        jitter_seconds=Decimal(data.get("jitter") or "0"),
    )


def next_due_ms(job: str, schedule: str, after_ms: int) -> int:
    """The job's first fire time strictly after ``after_ms``: late passes are coalesced into one."""

    trigger = schedule_trigger(job, schedule_of(schedule), PHASE_START)
    after = from_ms(after_ms + 1)
    fire = trigger.get_next_fire_time(None, after)
    return to_ms(fire) if fire is not None else after_ms + 3_600_000


async def dispatch_due(store: StateStore, reconcile: Any) -> int:
    """Enqueue a pass of every due job (at most one waits per job) and move its due time on; how many were sent."""
    from procrastinate.exceptions import AlreadyEnqueued

    now_ms = to_ms(datetime.now(UTC))
    due = await asyncio.to_thread(store.due_cluster_jobs, CLUSTER_MEMBER_STALE_SECONDS)
    moved: dict[str, int] = {}
    sent = 0
    for job in due:
        try:
            await reconcile.configure(lock=job.job, queueing_lock=job.job).defer_async(
                job=job.job, due_ms=job.next_due_ms
            )
            sent += 1
        except AlreadyEnqueued:
            log.info("pass skipped: the previous one still waits", extra={"job": job.job})
        moved[job.job] = next_due_ms(job.job, job.schedule, max(now_ms, job.next_due_ms))
    if moved:
        await asyncio.to_thread(store.set_next_due, moved)
    return sent
