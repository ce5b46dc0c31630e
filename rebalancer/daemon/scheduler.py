"""``rebalancer run``: every job on its schedule, until SIGTERM/SIGINT; SIGHUP reloads.

The daemon only decides *when*: the timer (``rebalancer.daemon.timer``) says a job is due, the job goes into the
``DueQueue``, and a fixed pool of workers runs one pass for the job that has waited longest, so under overload every
job is still served in turn. Each pass is framed by the shared scheduler core (``rebalancer.scheduler.core``) with
the local plug (``rebalancer.daemon.local``): one pass per job at a time, late passes coalesced, failing jobs backed
off without holding up the others, a lease in the state store so that two daemons never reconcile one job at once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rebalancer.core.plan import Plan
from rebalancer.core.wake import most_urgent
from rebalancer.daemon.keeper import LeaseKeeper
from rebalancer.daemon.local import LocalCoordination
from rebalancer.daemon.timer import TimerWakes
from rebalancer.defaults import (
    DAEMON_LEASE_SECONDS,
    MARKET_TICK_SECONDS,
    SCHEDULER_THREADS,
    STOP_WAIT_SECONDS,
)
from rebalancer.engine.connect import open_exchange
from rebalancer.engine.lease import ExchangeOpener, JobSession, open_session
from rebalancer.engine.runner import PassReport
from rebalancer.errors import RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job, OnStop
from rebalancer.notify import Notifier, post
from rebalancer.scheduler import core
from rebalancer.scheduler.duequeue import DueQueue
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.plugs import Claim, Due, Slot
from rebalancer.scheduler.report import pass_fields, pass_log_level
from rebalancer.scheduler.streamwake import StreamWakes
from rebalancer.scheduler.timing import interval_seconds, scheduled_job
from rebalancer.state.leases import holder_name
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, NotifyKind, WakeReason

log = logging.getLogger("rebalancer.daemon")


def _daemon_opener(job: Job) -> contextlib.AbstractContextManager[Exchange]:
    """The daemon's connection to a job's exchange: jobs of one deployment share one market-data read per tick."""
    return open_exchange(job, ticker_max_age=MARKET_TICK_SECONDS)


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
        self.store = store
        self.metrics = metrics or Metrics()
        self.notifier = Notifier(on_failure=lambda job: self.metrics.notify_failures.labels(job).inc())
        self.holder = holder or holder_name(f"{random.getrandbits(32):08x}")
        self.lease_seconds = lease_seconds or DAEMON_LEASE_SECONDS
        self.plug = LocalCoordination(
            store, opener, self.metrics, self.notifier, holder=self.holder, lease_seconds=self.lease_seconds
        )
        self.streams = StreamWakes(self.metrics)
        self._reasons: dict[str, WakeReason] = {}  # why each waiting job is due (the most urgent reason)
        self._table = core.JobTable(self.streams.feeding(self.plug.open))
        self._slots = self._table.slots
        self._lock = self._table.lock
        self._stop_wait = stop_wait
        self._queue = DueQueue(on_skip=lambda name: self.metrics.missed.labels(name).inc())
        self.metrics.waiting.set_function(lambda: self._queue.depth)
        self.metrics.overloaded.set_function(lambda: int(self._queue.overloaded))
        self._worker_count = workers
        self._workers: list[threading.Thread] = []
        self._timer = TimerWakes(on_skip=lambda name: self.metrics.missed.labels(name).inc())
        self._keeper = LeaseKeeper(store, self.holder, self.lease_seconds, self._sessions)

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs now scheduled, by name."""
        return self._table.jobs

    def last_plan(self, name: str) -> tuple[Plan, datetime] | None:
        """The plan of the job's latest pass in this daemon and when it ended, for the status page."""
        return self._table.last_plan(name)

    def ready(self) -> bool:
        """True once the scheduler runs and every job has finished its first pass."""
        with self._lock:
            return self._timer.running and all(slot.passes > 0 for slot in self._slots.values())

    def start(self, jobs: Sequence[Job]) -> None:
        """Connect every job's exchange (all or nothing), ready their first passes together (pause switches read,
        leases taken: ``LocalCoordination.prepare``), schedule them with a first pass now, start the clock."""
        slots = [self._attach(slot) for slot in self._table.open_all(jobs)]
        self.plug.prepare(slots)
        for slot in slots:
            self._schedule(slot)
        for index in range(self._worker_count):
            worker = threading.Thread(target=self._work, name=f"rebalancer-pass-{index}", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._timer.start(self.wake)
        self.streams.start(self.wake)
        self._keeper.start()
        self._note_scheduled([slot.job for slot in slots])

    def reload(self, jobs: Sequence[Job]) -> dict[str, str]:
        """Bring the schedule in line with ``jobs``: add new ones, replace changed ones, stop removed ones.

        Returns the jobs that could not be (re)started, by name, with why; a changed one keeps its old version.
        """
        wanted = {job.name: job for job in jobs}
        scheduled: list[Job] = []
        unopened: dict[str, str] = {}
        with self._lock:
            current = list(self._slots.values())
        for slot in current:
            # A job that now trades another market is a new job: the old one stops as if removed.
            name = slot.job.name
            if name not in wanted or _market(wanted[name]) != _market(slot.job):
                log.info("job removed", extra={"job": name})
                self._retire(slot, unschedule=True)
        for name, job in wanted.items():
            old = self._table.get(name)
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
        self._timer.stop()
        self.streams.stop()
        self._keeper.stop()
        self._queue.close()
        self._retire_all(self._table.take_all())
        with contextlib.suppress(RebalancerError):
            self.store.unregister_jobs(self.holder)
        self.notifier.close()

    def notify(self, job: Job, kind: NotifyKind | str, message: str) -> None:
        """Tell the job's webhook (``notify``), if it has one; never waits for the delivery."""
        post(job, kind, message, self.notifier)

    def wake(self, name: str, reason: WakeReason) -> None:
        """``name`` is due (the timer's tick, or the stream's ``reason``): queue it; a worker runs it in turn, for
        the most urgent reason given while it waited."""
        self.metrics.wakes.labels(name, reason).inc()
        due = self._timer.due_time(name) if reason is WakeReason.TIMER else None
        with self._lock:
            held = self._reasons.get(name)
            self._reasons[name] = reason if held is None else most_urgent((held, reason))
        self._queue.put(name, None if due is None else due.timestamp(), urgent=reason is not WakeReason.TIMER)

    def feed(self, name: str) -> dict[str, Any] | None:
        """Where the job's market data comes from now (``stream``, or ``polling`` and why), for the status pages;
        None for a job without a stream. (Its last wake reason is its last pass's, read from the state store.)"""
        state = self.streams.state(name)
        if state is None:
            return None
        return {"source": state.source, "why": state.why, "stream": state.stream, "learnt": state.learnt}

    def _tick(self, name: str) -> None:
        """The timer says ``name`` is due."""
        self.wake(name, WakeReason.TIMER)

    def _retire_all(self, slots: Sequence[Slot]) -> None:
        """Stop every job at the daemon's stop, as ``_retire`` would one by one, but bounded as a whole: running
        passes get one ``stop_wait`` between them all, and every lease is released in one statement (a thousand
        jobs' releases one by one made a SIGTERM take seconds). Jobs whose ``on_stop`` cancels still go one by one.
        """
        deadline = time.monotonic() + self._stop_wait
        for slot in slots:
            slot.closed = True
        idle: list[Slot] = []
        for slot in [s for s in slots if s.job.on_stop is not OnStop.CANCEL]:
            if slot.running.acquire(timeout=max(0.0, deadline - time.monotonic())):
                idle.append(slot)
            else:  # its pass meets the released lease at its fence, and sends nothing
                log.warning("pass still running at stop; not waiting longer", extra={"job": slot.job.name})
        for slot in [s for s in slots if s.job.on_stop is OnStop.CANCEL]:
            self._retire(slot, unschedule=False)
        try:
            self.store.release_leases(self.holder)
        except RebalancerError as exc:
            log.error("could not release the leases; they expire by themselves", extra={"error": str(exc)})
        for slot in idle:
            self._table.close(slot)
            slot.running.release()

    def _retire(self, slot: Slot, *, unschedule: bool) -> None:
        """Stop one job for good: no new pass, the running one finished, ``on_stop`` applied, connections closed.

        A job whose ``on_stop`` cancels waits for its running pass however long it takes (a batch sent after the
        cancel would leave orders behind); others wait ``stop_wait`` and leave a stuck pass to the process exit.
        """
        job = slot.job
        slot.closed = True
        if unschedule:
            self._table.pop(job.name)
            self._timer.remove(job.name)
            self.streams.remove(job.name)
            with self._lock:
                self._reasons.pop(job.name, None)
            with contextlib.suppress(RebalancerError):
                self.store.unregister_jobs(self.holder, [job.name])
            self._queue.discard(job.name)
        if job.on_stop is OnStop.CANCEL:
            slot.running.acquire()
        elif not slot.running.acquire(timeout=self._stop_wait):
            log.warning("pass still running at stop; not waiting longer", extra={"job": job.name})
            return
        try:
            self.plug.on_stop(slot)
            self._close(slot)
        except Exception:
            log.exception("stopping the job failed", extra={"job": job.name})
        finally:
            slot.running.release()

    def run_pass_now(self, name: str) -> PassReport | None:
        """One pass of ``name`` with every daemon rule (pause, backoff, lease, metrics); None when skipped."""
        slot = self._table.get(name)
        if slot is None:
            return None
        with slot.running:
            return self._pass(slot)

    def _pass(self, slot: Slot, late_ms: int | None = None, reason: WakeReason = WakeReason.TIMER) -> PassReport | None:
        name = slot.job.name
        fields: dict[str, object] = {"wake": reason} if late_ms is None else {"wake": reason, "late_ms": late_ms}
        report = None
        try:
            outcome = core.run_slot(self.plug, self._table, self.metrics, slot, Due(reason), fields)
            report = outcome if isinstance(outcome, PassReport) else None
        except RebalancerError as exc:
            self._failed(slot, exc)
        finally:
            self.streams.learn(name, report)
        return report

    def _failed(self, slot: Slot, exc: BaseException) -> None:
        """Count a failed pass and back the job off; its next passes are skipped until the delay has passed."""
        core.failed(self.plug, self.metrics, slot, self.plug.finish(slot, Claim(), exc), exc, {})

    def _open(self, job: Job) -> Slot:
        return self._attach(self._table.open(job))

    def _attach(self, slot: Slot) -> Slot:
        return self.plug.attach(slot)

    def _sessions(self) -> list[JobSession]:
        """The sessions of the jobs now loaded (for the lease keeper)."""
        with self._lock:
            return [slot.session for slot in self._slots.values() if slot.session is not None]

    def _schedule(self, slot: Slot) -> None:
        self._table.put(slot)
        self.metrics.period.labels(slot.job.name).set(interval_seconds(slot.job))
        self._timer.add(slot.job)
        self.streams.add(slot.job)

    def _unschedule(self, name: str) -> None:
        """Take a changed job's old version off the schedule (the stream source keeps following its symbol until
        ``_schedule`` hands it the new version)."""
        slot = self._table.pop(name)
        self._timer.remove(name)
        self._queue.discard(name)
        if slot is not None and slot.running.acquire(timeout=self._stop_wait):
            slot.running.release()

    def _work(self) -> None:
        """A worker: run the longest-waiting due pass, again and again, until the daemon stops."""
        while (item := self._queue.take()) is not None:
            with self._lock:
                reason = self._reasons.pop(item.name, WakeReason.TIMER)
            try:
                self._run_due(item.name, max(0.0, time.time() - item.due), reason)
            finally:
                self._queue.done(item.name)

    def _run_due(self, name: str, late: float, reason: WakeReason = WakeReason.TIMER) -> None:
        slot = self._table.get(name)
        (self.metrics.lateness.labels(name) if slot is None else slot.series(self.metrics).lateness).observe(late)
        if slot is None or not slot.running.acquire(blocking=False):
            return
        try:
            self._pass(slot, int(late * 1000), reason)
        except Exception as exc:
            self._failed(slot, exc)
        finally:
            slot.running.release()

    def _close(self, slot: Slot, *, forget: bool = True) -> None:
        self._table.close(slot)
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


def _market(job: Job) -> tuple[str, str, str, str]:
    """What makes a job's orders its own: exchange, account, symbol and ownership."""
    return (job.exchange.url, job.exchange.api_key_env, job.symbol, job.ownership.value)
