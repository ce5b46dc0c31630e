"""``rebalancer run``: every job on its schedule (APScheduler 3.x), until SIGTERM/SIGINT; SIGHUP reloads.

The daemon only decides *when*: each job holds a ``rebalancer.engine.lease.JobSession`` (its exchange and lease);
APScheduler's tick puts the job in the ``DueQueue`` and a fixed pool of workers runs one pass for the job that has
waited longest, so under overload every job is still served in turn. One pass per job at a time, late passes
coalesced, failing jobs backed off without holding up the others, a lease in the state store so that two daemons
never reconcile one job at once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rebalancer.core.plan import Plan
from rebalancer.defaults import (
    DAEMON_LEASE_MIN_SECONDS,
    DAEMON_LEASE_PERIODS,
    MARKET_TICK_SECONDS,
    SCHEDULER_THREADS,
    SCHEDULER_TICK_THREADS,
    STOP_WAIT_SECONDS,
)
from rebalancer.engine.connect import open_exchange
from rebalancer.engine.lease import ExchangeOpener, JobSession, open_session
from rebalancer.engine.runner import PassReport
from rebalancer.errors import RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job, OnStop
from rebalancer.notify import Notifier
from rebalancer.scheduler.duequeue import DueQueue
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.report import pass_fields, pass_log_level
from rebalancer.scheduler.timing import ScheduleBook, backoff_delay, interval_seconds, make_trigger, scheduled_job
from rebalancer.state.leases import holder_name
from rebalancer.state.store import StateStore
from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult

log = logging.getLogger("rebalancer.daemon")


def _daemon_opener(job: Job) -> contextlib.AbstractContextManager[Exchange]:
    """The daemon's connection to a job's exchange: jobs of one deployment share one market-data read per tick."""
    return open_exchange(job, ticker_max_age=MARKET_TICK_SECONDS)


@dataclass
class JobSlot:
    """A scheduled job and what the daemon keeps about it between passes."""

    job: Job
    session: JobSession
    closer: contextlib.ExitStack
    failures: int = 0
    not_before: float = 0.0
    passes: int = 0
    running: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    was_paused: bool = False  # by its job file's ``paused:`` (a pause through the store is told where it is made)
    last_plan: Plan | None = None
    last_plan_at: datetime | None = None


class Daemon:
    """Schedules passes of a set of jobs; ``start`` / ``reload`` / ``stop`` are called from the main thread."""

    def __init__(
        self,
        store: StateStore,
        *,
        metrics: Metrics | None = None,
        opener: ExchangeOpener = _daemon_opener,
        holder: str | None = None,
        stop_wait: float = STOP_WAIT_SECONDS,
        lease_seconds: float | None = None,
        workers: int = SCHEDULER_THREADS,
    ) -> None:
        from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
        from apscheduler.schedulers.background import BackgroundScheduler

        self.store = store
        self.metrics = metrics or Metrics()
        self.notifier = Notifier(on_failure=lambda job: self.metrics.notify_failures.labels(job).inc())
        self._opener = opener
        self.holder = holder or holder_name(f"{random.getrandbits(32):08x}")
        self._stop_wait = stop_wait
        self._lease_seconds = lease_seconds
        self._slots: dict[str, JobSlot] = {}
        self._lock = threading.RLock()
        self._due = ScheduleBook()
        self._queue = DueQueue(on_skip=lambda name: self.metrics.missed.labels(name).inc())
        self.metrics.waiting.set_function(lambda: self._queue.depth)
        self.metrics.overloaded.set_function(lambda: int(self._queue.overloaded))
        self._worker_count = workers
        self._workers: list[threading.Thread] = []
        # The scheduler's own threads only queue due jobs; the passes run on the daemon's workers.
        self._scheduler = BackgroundScheduler(
            executors={"default": self._due.executor(max_workers=SCHEDULER_TICK_THREADS)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
        )
        self._scheduler.add_listener(self._on_skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs now scheduled, by name."""
        with self._lock:
            return {name: slot.job for name, slot in self._slots.items()}

    def last_plan(self, name: str) -> tuple[Plan, datetime] | None:
        """The plan of the job's latest pass in this daemon and when it ended, for the status page."""
        with self._lock:
            slot = self._slots.get(name)
        if slot is None or slot.last_plan is None or slot.last_plan_at is None:
            return None
        return slot.last_plan, slot.last_plan_at

    def ready(self) -> bool:
        """True once the scheduler runs and every job has finished its first pass."""
        with self._lock:
            return self._scheduler.running and all(slot.passes > 0 for slot in self._slots.values())

    def start(self, jobs: Sequence[Job]) -> None:
        """Connect every job's exchange (all or nothing), schedule them with a first pass now, start the clock."""
        slots: list[JobSlot] = []
        try:
            for job in jobs:
                slots.append(self._open(job))
        except BaseException:
            for slot in slots:
                self._close(slot)
            raise
        with self._lock:
            for slot in slots:
                self._schedule(slot)
        for index in range(self._worker_count):
            worker = threading.Thread(target=self._work, name=f"rebalancer-pass-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._scheduler.start()
        self._note_scheduled([slot.job for slot in slots])

    def reload(self, jobs: Sequence[Job]) -> dict[str, str]:
        """Bring the schedule in line with ``jobs``: add new ones, replace changed ones, stop removed ones.

        Returns the jobs that could not be (re)started, by name, with why; a changed one keeps its old version.
        """
        wanted = {job.name: job for job in jobs}
        scheduled: list[Job] = []
        unopened: dict[str, str] = {}
        with self._lock:
            current = dict(self._slots)
        for name, slot in list(current.items()):
            # A job that now trades another market is a new job: the old one stops as if removed.
            if name not in wanted or _market(wanted[name]) != _market(slot.job):
                log.info("job removed", extra={"job": name})
                self._retire(slot, unschedule=True)
                current.pop(name)
        for name, job in wanted.items():
            old = current.get(name)
            if old is not None and old.job == job:
                continue
            try:
                slot = self._open(job)
            except RebalancerError as exc:
                log.error("job not (re)loaded, keeping the old version", extra={"job": name, "error": str(exc)})
                unopened[name] = str(exc)
                continue
            if old is not None:
                slot.was_paused = old.was_paused  # a reload that flips ``paused:`` is told as the flip
                old.closed = True
                self._unschedule(name)
                self._close(old, forget=False)
                log.info("job changed", extra={"job": name})
            else:
                log.info("job added", extra={"job": name})
            with self._lock:
                self._schedule(slot)
            scheduled.append(job)
        self._note_scheduled(scheduled)
        return unopened

    def _note_scheduled(self, jobs: Sequence[Job]) -> None:
        """Tell the state store which jobs this daemon schedules, for ``rebalancer status`` (best effort)."""
        entries = [scheduled_job(job) for job in jobs]
        try:
            self.store.register_jobs(self.holder, entries)
        except RebalancerError as exc:
            log.warning("could not note the scheduled jobs in the state store", extra={"error": str(exc)})

    def stop(self) -> None:
        """Stop scheduling, let running passes finish (bounded), apply each job's ``on_stop``, release everything."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._queue.close()
        with self._lock:
            slots = list(self._slots.values())
            self._slots.clear()
        for slot in slots:
            self._retire(slot, unschedule=False)
        with contextlib.suppress(RebalancerError):
            self.store.unregister_jobs(self.holder)
        self.notifier.close()

    def notify(self, job: Job, kind: str, message: str) -> None:
        """Tell the job's webhook (``notify``), if it has one; never waits for the delivery."""
        if job.notify is not None:
            self.notifier.send(job.notify.webhook, job.name, kind, message)

    def _count_failure(self, slot: JobSlot, why: str) -> None:
        """One more failed pass in a row; at ``notify.after_failures`` the webhook is told (once per streak)."""
        slot.failures += 1
        if slot.job.notify is not None and slot.failures == slot.job.notify.after_failures:
            self.notify(slot.job, "failing", f"{slot.failures} passes in a row failed; the last: {why}")

    def _retire(self, slot: JobSlot, *, unschedule: bool) -> None:
        """Stop one job for good: no new pass, the running one finished, ``on_stop`` applied, connections closed.

        A job whose ``on_stop`` cancels waits for its running pass however long it takes (a batch sent after the
        cancel would leave orders behind); others wait ``stop_wait`` and leave a stuck pass to the process exit.
        """
        job = slot.job
        slot.closed = True
        if unschedule:
            with self._lock:
                self._slots.pop(job.name, None)
            with contextlib.suppress(Exception):
                self._scheduler.remove_job(job.name)
            with contextlib.suppress(RebalancerError):
                self.store.unregister_jobs(self.holder, [job.name])
            self._queue.discard(job.name)
        if job.on_stop is OnStop.CANCEL:
            slot.running.acquire()
        elif not slot.running.acquire(timeout=self._stop_wait):
            log.warning("pass still running at stop; not waiting longer", extra={"job": job.name})
            return
        try:
            self._on_stop(slot)
            self._close(slot)
        except Exception:
            log.exception("stopping the job failed", extra={"job": job.name})
        finally:
            slot.running.release()

    def run_pass_now(self, name: str) -> PassReport | None:
        """One pass of ``name`` with every daemon rule (pause, backoff, lease, metrics); None when skipped."""
        with self._lock:
            slot = self._slots.get(name)
        if slot is None:
            return None
        with slot.running:
            return self._pass(slot)

    def _pass(self, slot: JobSlot, late_ms: int | None = None) -> PassReport | None:
        if slot.closed:
            return None
        try:
            return self._guarded_pass(slot, late_ms)
        except RebalancerError as exc:
            self._failed(slot, exc)
            return None

    def _guarded_pass(self, slot: JobSlot, late_ms: int | None) -> PassReport | None:
        job = slot.job
        paused = job.paused or self.store.is_paused(job.name)
        self.metrics.paused.labels(job.name).set(1 if paused else 0)
        if job.paused != slot.was_paused:  # the daemon is what pauses a job by its file: it tells
            slot.was_paused = job.paused
            word = "paused" if job.paused else "resumed"
            self.notify(job, word, f"{job.name} {word} by its job file ({job.source})")
        if paused:
            log.info("pass skipped: job paused", extra={"job": job.name})
            slot.session.release()
            slot.passes += 1
            return None
        if time.monotonic() < slot.not_before:
            self.metrics.missed.labels(job.name).inc()
            log.info("pass skipped: backing off after failures", extra={"job": job.name, "failures": slot.failures})
            return None
        if not slot.session.hold():
            self._lease_held(slot)
            return None
        started = time.monotonic()
        try:
            report = slot.session.run(Mode.RUN)
        finally:
            slot.passes += 1
            self.metrics.pass_duration.labels(job.name).observe(time.monotonic() - started)
            self.metrics.last_pass.labels(job.name).set(time.time())
        self._account(slot, report, late_ms)
        return report

    def _lease_held(self, slot: JobSlot) -> None:
        holder = self.store.lease_holder(slot.job.name)
        log.warning("pass skipped: job held by another process", extra={"job": slot.job.name, "holder": holder})
        self.metrics.passes.labels(slot.job.name, "lease_held").inc()
        slot.passes += 1

    def _failed(self, slot: JobSlot, exc: BaseException) -> None:
        """Count a failed pass and back the job off; its next passes are skipped until the delay has passed."""
        job = slot.job
        self._count_failure(slot, str(exc) if isinstance(exc, RebalancerError) else type(exc).__name__)
        delay = backoff_delay(slot.failures)
        slot.not_before = time.monotonic() + delay
        self.metrics.passes.labels(job.name, PassResult.ERROR).inc()
        fields = {"job": job.name, "failures": slot.failures, "retry_in_s": round(delay, 1)}
        if isinstance(exc, RebalancerError):
            log.error("pass failed", extra={**fields, "error": str(exc)})
        else:
            log.error("pass crashed", exc_info=exc, extra=fields)

    def _account(self, slot: JobSlot, report: PassReport, late_ms: int | None = None) -> None:
        job = slot.job
        execution = report.execution
        placed = execution.count(OutcomeStatus.PLACED) if execution else 0
        cancelled = execution.count(OutcomeStatus.CANCELLED) if execution else 0
        rejected = execution.rejected if execution else ()
        self.metrics.passes.labels(job.name, report.result).inc()
        self.metrics.placed.labels(job.name).inc(placed)
        self.metrics.cancelled.labels(job.name).inc(cancelled)
        self.metrics.gate_refusals.labels(job.name).inc(report.gate_refusals)
        for outcome in rejected:
            self.metrics.rejected.labels(job.name, outcome.code or "unknown").inc()
        for fill in report.fills:  # a counter's value is a float: fine for a gauge of activity, never for money
            self.metrics.filled.labels(job.name, fill.side.value).inc(float(fill.volume))
        owned = report.plan.summary.get(ActionKind.KEEP, 0) + placed
        self.metrics.open_orders.labels(job.name).set(owned)
        slot.last_plan, slot.last_plan_at = report.plan, datetime.now(UTC)
        if report.result is PassResult.FENCED:
            # Not a failure of the job: the lease moved on. The session forgot it; the next pass asks again.
            log.warning("pass fenced: lease lost before sending", extra={"job": job.name, "error": report.error})
        elif report.failed:
            self._count_failure(slot, report.error or str(report.result))
            slot.not_before = time.monotonic() + backoff_delay(slot.failures)
        else:
            slot.failures = 0
            self.metrics.last_success.labels(job.name).set(time.time())
        fields = pass_fields(report)
        late = {"late_ms": late_ms} if late_ms is not None else {}
        log.log(pass_log_level(report), "pass", extra={**fields, **late})

    def _open(self, job: Job) -> JobSlot:
        closer = contextlib.ExitStack()
        try:
            exchange = closer.enter_context(self._opener(job))
        except BaseException:
            closer.close()
            raise
        ttl = self._lease_seconds or _lease_seconds(job)
        session = JobSession(job, exchange, self.store, holder=self.holder, ttl_seconds=ttl, notifier=self.notifier)
        return JobSlot(job=job, session=session, closer=closer)

    def _schedule(self, slot: JobSlot) -> None:
        name = slot.job.name
        self._slots[name] = slot
        self.metrics.period.labels(name).set(interval_seconds(slot.job))
        # A pass that could not start on time still runs (once: late ones coalesce) within a whole period.
        grace = max(1, int(interval_seconds(slot.job)))
        now = datetime.now(UTC)
        self._scheduler.add_job(
            self._tick,
            make_trigger(slot.job, now),
            args=[name],
            id=name,
            name=name,
            next_run_time=now,
            misfire_grace_time=grace,
            replace_existing=True,
        )

    def _unschedule(self, name: str) -> None:
        with self._lock:
            slot = self._slots.pop(name, None)
        with contextlib.suppress(Exception):
            self._scheduler.remove_job(name)
        self._queue.discard(name)
        if slot is not None and slot.running.acquire(timeout=self._stop_wait):
            slot.running.release()

    def _tick(self, name: str) -> None:
        """APScheduler's job: ``name`` is due; queue it (a worker runs it when its turn comes)."""
        due = self._due.due_time(name)
        self._queue.put(name, None if due is None else due.timestamp())

    def _work(self) -> None:
        """A worker: run the longest-waiting due pass, again and again, until the daemon stops."""
        while (item := self._queue.take()) is not None:
            try:
                self._run_due(item.name, max(0.0, time.time() - item.due))
            finally:
                self._queue.done(item.name)

    def _run_due(self, name: str, late: float) -> None:
        self.metrics.lateness.labels(name).observe(late)
        with self._lock:
            slot = self._slots.get(name)
        if slot is None or not slot.running.acquire(blocking=False):
            return
        try:
            self._pass(slot, int(late * 1000))
        except Exception as exc:
            self._failed(slot, exc)
        finally:
            slot.running.release()

    def _on_skipped(self, event: Any) -> None:
        name = getattr(event, "job_id", "?")
        self.metrics.missed.labels(name).inc()
        log.warning("pass skipped: the previous one overran or the daemon was late", extra={"job": name})

    def _on_stop(self, slot: JobSlot) -> None:
        job = slot.job
        if job.on_stop is not OnStop.CANCEL:
            with contextlib.suppress(RebalancerError):
                slot.session.release()
            return
        if not slot.session.hold(refresh=True):
            log.warning("on_stop: job held by another process; its orders are left alone", extra={"job": job.name})
            return
        try:
            report = slot.session.run(Mode.STOP, cancel=True)
            cancelled = report.execution.count(OutcomeStatus.CANCELLED) if report.execution else 0
            log.info("on_stop: cancelled the job's orders", extra={"job": job.name, "cancelled": cancelled})
        except RebalancerError as exc:
            log.error("on_stop: cancel failed", extra={"job": job.name, "error": str(exc)})
        finally:
            with contextlib.suppress(RebalancerError):
                slot.session.release()

    def _close(self, slot: JobSlot, *, forget: bool = True) -> None:
        with contextlib.suppress(Exception):
            slot.closer.close()
        if forget:
            self.metrics.forget(slot.job.name)


def run_once(jobs: Sequence[Job], store: StateStore, opener: ExchangeOpener = open_exchange) -> bool:
    """Every job once, one after another (for cron users); True when every pass succeeded.

    A job that fails, even unexpectedly, is reported and the next job still runs.
    """
    ok = True
    for job in jobs:
        if job.paused or store.is_paused(job.name):
            log.info("pass skipped: job paused", extra={"job": job.name})
            continue
        try:
            with open_session(job, store, opener=opener) as session:
                report = session.run(Mode.ONCE)
        except RebalancerError as exc:
            log.error("pass failed", extra={"job": job.name, "error": str(exc)})
            ok = False
            continue
        except Exception as exc:  # one job's bug must not keep the later jobs from their pass
            log.error("pass failed", extra={"job": job.name, "error": f"{exc.__class__.__name__}: {exc}"})
            ok = False
            continue
        log.log(pass_log_level(report), "pass", extra=pass_fields(report))
        ok = ok and not report.failed
    return ok


def _lease_seconds(job: Job) -> float:
    """How long the daemon's lease on ``job`` lasts (see ``rebalancer.defaults``)."""
    return max(DAEMON_LEASE_MIN_SECONDS, DAEMON_LEASE_PERIODS * interval_seconds(job))


def _market(job: Job) -> tuple[str, str, str, str]:
    """What makes a job's orders its own: exchange, account, symbol and ownership."""
    return (job.exchange.url, job.exchange.api_key_env, job.symbol, job.ownership.value)
