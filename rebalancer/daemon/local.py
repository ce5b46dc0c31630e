"""The single daemon's coordination plug: a job's lease is kept in the state store across passes (taken for every
job at once at start, ``prepare``; renewed for every job at once by the lease keeper, ``rebalancer.daemon.keeper``;
released when the job pauses or stops), failures are counted in memory and back the job off, and a job whose
``on_stop`` is ``cancel`` cancels its orders under its lease when it stops.

The store's pause switch is read by the pass itself, in its one store read (``StateStore.pass_inputs``): a pass that
finds it on stops there (``JobPaused``), nothing written or sent, and is counted as a paused job's skip. Only while
the job was last found paused does ``claim`` read the switch before the pass, in a transaction of its own, so a
paused job makes no market reads and its resume is seen at its next tick. At start ``prepare`` reads every job's
switch in one statement, so only the jobs found paused there read it again before their first pass.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence

from rebalancer.engine.lease import ExchangeOpener, JobSession
from rebalancer.engine.runner import PassReport
from rebalancer.errors import RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job, OnStop
from rebalancer.notify import Notifier, post
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.plugs import Claim, Due, Finished, Slot
from rebalancer.scheduler.timing import backoff_delay
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, NotifyKind, OutcomeStatus, PassResult, Skip

log = logging.getLogger("rebalancer.daemon")


class LocalCoordination:
    """Leases held across passes through each job's ``JobSession``; see the module docstring."""

    log = log

    def __init__(
        self,
        store: StateStore,
        opener: ExchangeOpener,
        metrics: Metrics,
        notifier: Notifier,
        *,
        holder: str,
        lease_seconds: float,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.notifier = notifier
        self.holder = holder
        self._opener = opener
        self._lease_seconds = lease_seconds

    def open(self, job: Job) -> contextlib.AbstractContextManager[Exchange]:
        """The job's exchange, through the daemon's opener."""
        return self._opener(job)

    def attach(self, slot: Slot) -> Slot:
        """Give a newly opened slot its session: exchange, store, and a lease of the daemon's length."""
        slot.session = JobSession(
            slot.job,
            slot.exchange,
            self.store,
            holder=self.holder,
            ttl_seconds=self._lease_seconds,
            notifier=self.notifier,
        )
        return slot

    def prepare(self, slots: Sequence[Slot]) -> int:
        """Ready the first passes of newly loaded slots in two statements instead of two transactions a pass: read
        the store's pause switches of every job at once, then take the lease of every job not paused (by its file
        or the store) at once; how many leases were taken. A job left out (held by another process, or the store
        failing) reads its switch or takes its lease at its first pass, as any pass would; a job paused after the
        read is found so by its pass's own store read."""
        try:
            paused = self.store.paused_jobs()
        except RebalancerError as exc:
            log.warning(
                "could not read the pause switches at start; each pass reads its own", extra={"error": str(exc)}
            )
            return 0
        for slot in slots:
            slot.paused_in_store = slot.job.name in paused
        at = time.monotonic()
        sessions = {slot.job.name: _session(slot) for slot in slots if not (slot.job.paused or slot.paused_in_store)}
        try:
            taken = self.store.take_leases(list(sessions), self.holder, self._lease_seconds)
        except RebalancerError as exc:
            log.warning("could not take the leases at start; each pass takes its own", extra={"error": str(exc)})
            return 0
        for name, epoch in taken.items():
            sessions[name].taken(epoch, at)
        return len(taken)

    def claim(self, slot: Slot, due: Due) -> Claim | Skip:
        """Skip a paused job (its lease let go) or one backing off; else hold the lease, or skip when another
        process holds it. A skip for the lease or a pause counts as a pass for ``ready``. The store's pause switch
        is read here only while the job was last found paused (the module docstring says why)."""
        job, session = slot.job, _session(slot)
        if slot.paused_in_store:
            slot.paused_in_store = self.store.is_paused(job.name)
        if job.paused != slot.was_paused:  # the daemon is what pauses a job by its file: it tells
            slot.was_paused = job.paused
            word = NotifyKind.PAUSED if job.paused else NotifyKind.RESUMED
            post(job, word, f"{job.name} {word} by its job file ({job.source})", self.notifier)
        if job.paused or slot.paused_in_store:
            return self._skip_paused(slot)
        slot.series(self.metrics).paused.set(0)
        if time.monotonic() < slot.not_before:
            self.metrics.missed.labels(job.name).inc()
            log.info("pass skipped: backing off after failures", extra={"job": job.name, "failures": slot.failures})
            return Skip.BACKOFF
        if not session.hold():
            holder = self.store.lease_holder(job.name)
            log.warning("pass skipped: job held by another process", extra={"job": job.name, "holder": holder})
            slot.series(self.metrics).passes(Skip.LEASE_HELD).inc()
            slot.passes += 1
            return Skip.LEASE_HELD
        return Claim(failures=slot.failures, wake=due.reason)

    def run(self, slot: Slot, claim: Claim) -> PassReport:
        """The pass, in the job's session (which forgets a lease the pass found gone); ``JobPaused`` when its store
        read finds the job paused."""
        return _session(slot).run(Mode.RUN, wake=claim.wake, honour_pause=True)

    def paused(self, slot: Slot, claim: Claim) -> Skip:
        """The pass found the job paused in the store: a pause skip, and the switch is read before its next passes."""
        slot.paused_in_store = True
        return self._skip_paused(slot)

    def _skip_paused(self, slot: Slot) -> Skip:
        """A paused job's skip: its lease let go; it counts as a pass for ``ready``."""
        slot.series(self.metrics).paused.set(1)
        log.info("pass skipped: job paused", extra={"job": slot.job.name})
        _session(slot).release()
        slot.passes += 1
        return Skip.PAUSED

    def release(self, slot: Slot, claim: Claim) -> None:
        """Nothing: the lease is kept for the next pass."""

    def finish(self, slot: Slot, claim: Claim, outcome: PassReport | BaseException) -> Finished:
        """A failed pass backs the job off for longer each time in a row; a fenced one is not a failure."""
        if isinstance(outcome, BaseException) or (outcome.failed and outcome.result is not PassResult.FENCED):
            slot.failures += 1
            delay = backoff_delay(slot.failures)
            slot.not_before = time.monotonic() + delay
            return Finished(slot.failures, delay)
        if outcome.result is not PassResult.FENCED:
            slot.failures = 0
        return Finished(slot.failures)

    def on_stop(self, slot: Slot) -> None:
        """Apply the job's ``on_stop``: cancel its orders under its lease, or just let the lease go."""
        job, session = slot.job, _session(slot)
        if job.on_stop is not OnStop.CANCEL:
            with contextlib.suppress(RebalancerError):
                session.release()
            return
        if not session.hold(refresh=True):
            log.warning("on_stop: job held by another process; its orders are left alone", extra={"job": job.name})
            return
        try:
            report = session.run(Mode.STOP, cancel=True)
            cancelled = report.execution.count(OutcomeStatus.CANCELLED) if report.execution else 0
            log.info("on_stop: cancelled the job's orders", extra={"job": job.name, "cancelled": cancelled})
        except RebalancerError as exc:
            log.error("on_stop: cancel failed", extra={"job": job.name, "error": str(exc)})
        finally:
            with contextlib.suppress(RebalancerError):
                session.release()


def _session(slot: Slot) -> JobSession:
    if slot.session is None:
        raise RebalancerError(f"job {slot.job.name}: no session")  # attach() runs before a slot is scheduled
    return slot.session
