"""Which jobs are due, and enqueueing them: every member's dispatch, once a second.

Fire times come from the same triggers as the single daemon (``rebalancer.scheduler.timing``), so ``every``,
``cron`` and ``jitter`` keep their meaning; every member builds them from one fixed start, so they agree on the
phase. The next due time of each job is kept in the state store, so whichever member dispatches carries on from
where the last one stopped. Every member's worker loop dispatches on each whole second of the clock
(``dispatch_every``); a job's due pass is claimed in the store by the member that finds it first
(``claim_due_cluster_jobs``), so it is handed out once. A period under a second is served once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rebalancer.defaults import CLUSTER_DISPATCH_CLAIM_SECONDS, CLUSTER_MEMBER_STALE_SECONDS
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
    after = from_ms(after_ms + 1)
    fire = _trigger(job, schedule).get_next_fire_time(None, after)
    return to_ms(fire) if fire is not None else after_ms + 3_600_000


@functools.lru_cache(maxsize=8192)
def _trigger(job: str, schedule: str) -> Any:
    """The trigger of ``job`` on its ``schedule`` text, built once (the dispatcher asks it for every pass it sends;
    a trigger's fire times depend on its arguments alone)."""
    return schedule_trigger(job, schedule_of(schedule), PHASE_START)


async def dispatch_every(store: StateStore, reconcile: Any, seconds: float, stop: asyncio.Event) -> None:
    """``dispatch_due`` now, then at every whole multiple of ``seconds`` of the clock, until ``stop``; a failure is
    logged and the next round tries again.

    It runs in every member's worker loop rather than as a queued periodic task: that task cost every member a
    deferral, a wake-up and an empty fetch each second, and the member that fetched it a fetch and a finish more,
    half of an idle member's CPU (``bench/RESULTS-cluster.md``). The members dispatch on the same ticks: one claims
    what is due and the others find nothing, so the queue gets one batch a tick, which wakes every member once.
    """
    while not stop.is_set():
        try:
            await dispatch_due(store, reconcile)
        except Exception as exc:  # the database away for a while: the worker notices too, and is restarted
            log.warning("dispatch of due passes failed", extra={"error": str(exc)})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds - time.time() % seconds)


async def dispatch_due(store: StateStore, reconcile: Any) -> int:
    """Enqueue a pass of every due job this member claims (at most one waits per job) and move its due time on;
    how many were sent.

    The passes go in one statement; when a job's previous pass still waits (its queueing lock refuses the whole
    statement), they go one by one, so every other job still gets its pass. If they cannot be queued, the claimed
    jobs are made due again at once.
    """
    now_ms = to_ms(datetime.now(UTC))
    due = await asyncio.to_thread(
        store.claim_due_cluster_jobs, CLUSTER_MEMBER_STALE_SECONDS, CLUSTER_DISPATCH_CLAIM_SECONDS
    )
    if not due:
        return 0
    deferrers = [reconcile.configure(lock=job.job, queueing_lock=job.job) for job in due]
    passes = [d.make_new_job(job=job.job, due_ms=job.next_due_ms) for d, job in zip(deferrers, due, strict=True)]
    try:
        sent = await _defer(deferrers[0].job_manager, passes)
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(store.set_next_due, {job.job: job.next_due_ms for job in due})
        raise
    moved = {job.job: next_due_ms(job.job, job.schedule, max(now_ms, job.next_due_ms)) for job in due}
    await asyncio.to_thread(store.set_next_due, moved)
    return sent


async def _defer(manager: Any, passes: list[Any]) -> int:
    """Defer ``passes`` (procrastinate jobs) in one statement, else one by one; how many were deferred."""
    from procrastinate.exceptions import AlreadyEnqueued

    try:
        await manager.batch_defer_jobs_async(passes)
        return len(passes)
    except AlreadyEnqueued:
        pass
    sent = 0
    for one in passes:
        try:
            await manager.defer_job_async(one)
            sent += 1
        except AlreadyEnqueued:
            log.info("pass skipped: the previous one still waits", extra={"job": one.task_kwargs["job"]})
    return sent
