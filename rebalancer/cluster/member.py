"""One cluster member: its own job files and exchange connections, and the passes the queue hands it.

A member runs a pass of a job only when it loaded the job at the cluster's version (the file fingerprint kept in
the state store), and only under a fresh lease: every pass acquires the job's lease under its own holder name, so
each pass has its own epoch, and the fence checks that epoch in the database right before every write. While a
pass runs, the member's heartbeat thread renews its lease every second; a member that dies or freezes stops
renewing, its leases expire ``CLUSTER_LEASE_SECONDS`` later, and only then can a pass elsewhere write for those jobs.

Jobs with a market stream are followed by every member that loads them, over one connection per stream per member
(``rebalancer.scheduler.streamwake``): a wake sets the job's next due time to now, and the dispatcher hands the
pass out as any other.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from rebalancer.cluster.dispatcher import schedule_text
from rebalancer.cluster.ratelimit import SharedBudget, SharedKeyLimiter, shared_limiter
from rebalancer.core.plan import Plan
from rebalancer.defaults import (
    CLUSTER_CONNECT_TIMEOUT_SECONDS,
    CLUSTER_LEASE_SECONDS,
    CLUSTER_READ_TIMEOUT_SECONDS,
    CLUSTER_RENEW_SECONDS,
    MARKET_TICK_SECONDS,
)
from rebalancer.engine.connect import open_exchange
from rebalancer.engine.lease import Lease, make_fence, request_bound_seconds
from rebalancer.engine.runner import JobPaused, PassReport, run_pass
from rebalancer.errors import ConfigError, RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.notify import Notifier
from rebalancer.scheduler.core import JobTable, run_slot
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.plugs import Claim, Due, Finished, Slot
from rebalancer.scheduler.streamwake import StreamWakes
from rebalancer.scheduler.timing import backoff_delay
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, PassResult, Skip, WakeReason

log = logging.getLogger("rebalancer.cluster")

LEASE_RETRY_MARGIN_MS = 100  # a pass that found the lease held comes due again this soon after it ends
# A pass due within this of a stream wake this member saw ran for that wake (every member following the stream
# sees it; the due time the queue hands out is the one some member's wake wrote).
WAKE_MATCH_MS = 500

ExchangeOpener = Callable[[Job], contextlib.AbstractContextManager[Exchange]]


def member_name() -> str:
    """This process's member name: ``HOST:PID:cluster``."""
    return f"{socket.gethostname()}:{os.getpid()}:cluster"


def cluster_opener(store: StateStore, env: Mapping[str, str] | None = None) -> ExchangeOpener:
    """Opens a job's exchange for a member: short timeouts (a member's lease, which must outlast a request, and so
    its takeover time stay short), one ticker read a second shared by the member's jobs on a deployment (as in the
    daemon), the API key's rate limits shared cluster-wide (one budget for all the member's jobs), balances read
    every pass (a job's passes move between members, and none knows what the others placed), and never the
    embedded sandbox."""
    budget = SharedBudget(store)

    def open_for_member(job: Job) -> contextlib.AbstractContextManager[Exchange]:

        if job.exchange.is_sandbox:
            raise ConfigError(
                f"job {job.name}: url: sandbox is one process's embedded exchange; cluster members need an "
                "exchange they all reach (serve one with `rebalancer sandbox` and use its URL)"
            )
        return open_exchange(
            job,
            env,
            ticker_max_age=MARKET_TICK_SECONDS,
            connect_timeout=CLUSTER_CONNECT_TIMEOUT_SECONDS,
            read_timeout_cap=CLUSTER_READ_TIMEOUT_SECONDS,
            limiter=lambda url, key, profile: shared_limiter(budget, url, key, profile),
            carry_balances=False,
        )

    return open_for_member


class ClusterCoordination:
    """The cluster's plug (see the module docstring): a lease per pass, failures counted in the store."""

    log = log

    def __init__(self, member: Member, opener: ExchangeOpener, lease_seconds: float) -> None:
        self.member = member
        self.store = member.store
        self.notifier = member.notifier
        self._opener = opener
        self._lease_seconds = lease_seconds
        self._leases: dict[str, Lease] = {}
        self._lock = threading.Lock()

    def open(self, job: Job) -> contextlib.AbstractContextManager[Exchange]:
        """The job's exchange, through the member's opener."""
        return self._opener(job)

    def claim(self, slot: Slot, due: Due) -> Claim | Skip:
        """Run only the cluster's version of the job, unpaused, under a fresh lease named after the queue's pass
        (the three checked in one statement)."""
        name = slot.job.name
        late = max(0.0, (to_ms(datetime.now(UTC)) - (due.due_ms or 0)) / 1000)
        holder = f"{self.member.name}#{due.pass_id}"
        start = self.store.begin_cluster_pass(name, slot.job.source_hash, holder, self.lease_for(slot))
        cluster = start.cluster
        if cluster is None or cluster.fingerprint != slot.job.source_hash:
            self.member.say_differs(name, slot.job.source_hash, cluster.fingerprint if cluster else None)
            return Skip.VERSION_DIFFERS
        if start.paused:
            log.info("pass skipped: job paused", extra={"job": name})
            return Skip.PAUSED
        self.member.metrics.lateness.labels(name).observe(late)
        if start.epoch is None:
            self.member._retry_after_lease(name)
            return Skip.LEASE_HELD
        lease = Lease(name, holder, start.epoch)
        with self._lock:
            self._leases[lease.holder] = lease
        fields = {"member": self.member.name, "epoch": start.epoch, "late_ms": int(late * 1000)}
        return Claim(lease, cluster.failures, fields, wake=due.reason)

    def run(self, slot: Slot, claim: Claim) -> PassReport:
        """The pass under the claim's lease, fenced before every write (in the shared rate limiter too);
        ``JobPaused`` when its store read finds the job paused (a pause committed since the pass's start)."""
        assert claim.lease is not None
        fence = make_fence(self.store, claim.lease, request_bound_seconds(slot.exchange))
        try:
            with slot.running, _write_fence(slot.exchange, fence):
                return run_pass(
                    slot.job,
                    slot.exchange,
                    self.store,
                    apply=True,
                    mode=Mode.CLUSTER,
                    fence=fence,
                    notifier=self.notifier,
                    wake=claim.wake,
                    honour_pause=True,
                )
        except (RebalancerError, JobPaused):
            raise  # ``finish`` records the failed pass and lets the lease go; ``paused`` lets it go
        except BaseException:
            self._let_go(claim.lease)  # a crash: no ``finish`` follows
            raise

    def paused(self, slot: Slot, claim: Claim) -> Skip:
        """The job was paused after the pass's start and before its store read: let its lease go, nothing recorded
        (as a pause found at the start)."""
        if claim.lease is not None:
            self._let_go(claim.lease)
        log.info("pass skipped: job paused", extra={"job": slot.job.name})
        return Skip.PAUSED

    def release(self, slot: Slot, claim: Claim) -> None:
        """Stop renewing the pass's lease; ``finish`` lets it go with the pass's record, in one statement."""
        if claim.lease is not None:
            with self._lock:
                self._leases.pop(claim.lease.holder, None)

    def finish(self, slot: Slot, claim: Claim, outcome: PassReport | BaseException) -> Finished:
        """Record the pass cluster-wide and let its lease go; a failed pass backs the job off for every member."""
        if isinstance(outcome, BaseException):
            result, failed = PassResult.ERROR, True
        else:
            result, failed = outcome.result, outcome.failed and outcome.result is not PassResult.FENCED
        delay = backoff_delay(claim.failures + 1) if failed else 0.0
        try:
            self.store.record_cluster_pass(
                slot.job.name,
                self.member.name,
                result,
                failed=failed,
                backoff_seconds=delay,
                started_at=claim.started_at,
                lease_holder=None if claim.lease is None else claim.lease.holder,
            )
        except RebalancerError:
            if claim.lease is not None:
                self._let_go(claim.lease)
            raise
        return Finished(claim.failures + 1 if failed else 0, delay)

    def _let_go(self, lease: Lease) -> None:
        """Let go of ``lease`` on its own, when the pass's record will not: the job's next pass may run at once."""
        with self._lock:
            self._leases.pop(lease.holder, None)
        with contextlib.suppress(RebalancerError):
            self.store.release_lease(lease.job, lease.holder)

    def on_stop(self, slot: Slot) -> None:
        """Nothing: another member takes the job over."""

    def leases(self) -> list[Lease]:
        """The leases of the passes running now."""
        with self._lock:
            return list(self._leases.values())

    def running(self, lease: Lease) -> bool:
        """True while the pass of ``lease`` runs."""
        with self._lock:
            return lease.holder in self._leases

    def lease_for(self, slot: Slot) -> float:
        """A pass's lease: the member's, or longer when the job's exchange lets a request take longer (the fence
        keeps a whole request's time in hand, so a shorter lease would fence every pass)."""
        return max(self._lease_seconds, request_bound_seconds(slot.exchange) + 2 * CLUSTER_RENEW_SECONDS)


class Member:
    """The jobs of one member and the passes it runs; ``reconcile`` is called from the queue's worker threads."""

    def __init__(
        self,
        store: StateStore,
        *,
        name: str | None = None,
        opener: ExchangeOpener | None = None,
        concurrency: int = 1,
        metrics: Metrics | None = None,
        lease_seconds: float = CLUSTER_LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.name = name or member_name()
        self.concurrency = concurrency
        self.metrics = metrics or Metrics()
        self.notifier = Notifier(on_failure=lambda job: self.metrics.notify_failures.labels(job).inc())
        self.plug = ClusterCoordination(self, opener or cluster_opener(store), lease_seconds)
        self.streams = StreamWakes(self.metrics)
        self._table = JobTable(self.streams.feeding(self.plug.open))
        self._differs: dict[str, str] = {}
        self._woken: dict[str, tuple[WakeReason, int]] = {}  # per job: its stream wake not yet run, and when
        self._lock = threading.Lock()

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs this member loaded, by name."""
        return self._table.jobs

    def last_plan(self, name: str) -> tuple[Plan, datetime] | None:
        """The plan of the job's latest pass on this member and when it ended, for the status pages."""
        return self._table.last_plan(name)

    def start(self, jobs: Sequence[Job]) -> None:
        """Join the cluster: record the member, connect every job's exchange (all or nothing), offer their versions."""
        self.store.register_member(self.name, socket.gethostname(), os.getpid(), self.concurrency)
        for slot in self._table.open_all(jobs):
            self._table.put(slot)
        for job in jobs:
            self._offer(job, replace=False)
            self.streams.add(job)
        self.streams.start(self.wake)

    def reload(self, jobs: Sequence[Job]) -> None:
        """Take the jobs of edited files: new and changed ones are offered as the cluster's newest version."""
        wanted = {job.name: job for job in jobs}
        for slot in self._table.gone(wanted):
            self._drop(slot)
            log.info("job removed from this member", extra={"job": slot.job.name})
        for name, job in wanted.items():
            old = self._table.get(name)
            if old is not None and old.job == job:
                continue
            try:
                slot = self._table.open(job)
            except RebalancerError as exc:
                log.error("job not (re)loaded, keeping the old version", extra={"job": name, "error": str(exc)})
                continue
            self._table.put(slot)
            if old is not None:
                old.closed = True
                with old.running:
                    self._table.close(old)
            self._offer(job, replace=True)
            self.streams.add(job)
            log.info("job changed" if old else "job added", extra={"job": name})
        self.store.forget_member_jobs(self.name, wanted)

    def stop(self) -> None:
        """Leave the cluster: mark the member stopped and close every connection (running passes are done)."""
        self.streams.stop()
        with contextlib.suppress(RebalancerError):
            self.store.member_stopped(self.name)
        for slot in self._table.take_all():
            slot.closed = True
            self._table.close(slot)
        self.notifier.close()

    def beat(self) -> None:
        """Prove the member alive and renew the lease of every running pass (the heartbeat thread, every second)."""
        running = []
        for lease in self.plug.leases():
            slot = self._table.get(lease.job)
            if slot is not None:
                running.append((lease, self.plug.lease_for(slot)))
        renewed = self.store.member_beat(self.name, [(ls.job, ls.holder, ls.epoch, ttl) for ls, ttl in running])
        for lease, _ in running:
            if lease.holder not in renewed and self.plug.running(lease):  # else the pass ended (and let go) meanwhile
                log.warning("lease lost while the pass runs; it will send nothing more", extra={"job": lease.job})

    def reconcile(self, name: str, due_ms: int, *, pass_id: int) -> PassResult | Skip:
        """One pass of job ``name`` if this member may run it; returns what happened (a pass result or a skip)."""
        slot = self._table.get(name)
        if slot is None:
            log.warning("pass skipped: job not loaded on this member", extra={"job": name})
            return Skip.NOT_LOADED
        reason = self._wake_for(name, due_ms)
        due = Due(reason, due_ms, pass_id)
        outcome = run_slot(self.plug, self._table, self.metrics, slot, due, {"wake": reason})
        self.streams.learn(name, outcome if isinstance(outcome, PassReport) else None)
        if outcome is None:
            return Skip.NOT_LOADED  # unloaded meanwhile
        return outcome.result if isinstance(outcome, PassReport) else outcome

    def wake(self, name: str, reason: WakeReason) -> None:
        """The stream wakes ``name``: its next due time becomes now, for the dispatcher to hand out."""
        self.metrics.wakes.labels(name, reason).inc()
        at = to_ms(datetime.now(UTC))
        with self._lock:
            held = self._woken.get(name)
            if held is not None and at - held[1] <= WAKE_MATCH_MS:
                reason = min(held[0], reason, key=list(WakeReason).index)
            self._woken[name] = (reason, at)
        try:
            self.store.set_next_due({name: at})
        except RebalancerError as exc:
            log.warning("stream wake not recorded", extra={"job": name, "reason": reason, "error": str(exc)})

    def _wake_for(self, name: str, due_ms: int) -> WakeReason:
        """Why the pass of ``name`` due at ``due_ms`` runs: the stream wake this member saw that set that due time,
        else the timer (a wake much later than it waits for its own pass; an older one was run by another member).
        """
        with self._lock:
            held = self._woken.get(name)
            if held is None or held[1] > due_ms + WAKE_MATCH_MS:
                return WakeReason.TIMER
            del self._woken[name]
        return held[0] if held[1] >= due_ms - WAKE_MATCH_MS else WakeReason.TIMER

    def _retry_after_lease(self, name: str) -> None:
        """A pass found the job's lease held (a frozen or dead member's pass): come due again as it ends.

        Without this the job would wait for its next period after the lease ends, adding up to a period to the
        time a dead member's jobs take to continue elsewhere.
        """
        self.metrics.passes.labels(name, Skip.LEASE_HELD).inc()
        expiry = self.store.lease_expiry(name)
        log.info("pass skipped: job held by another pass", extra={"job": name, "holder": self.store.lease_holder(name)})
        cluster = self.store.cluster_job(name)
        if expiry is not None and cluster is not None:
            retry_ms = to_ms(expiry) + LEASE_RETRY_MARGIN_MS
            if retry_ms < cluster.next_due_ms:
                self.store.set_next_due({name: retry_ms})

    def say_differs(self, name: str, mine: str, cluster: str | None) -> None:
        """Log once per version pair that this member's file of ``name`` is not the cluster's."""
        key = f"{mine}->{cluster}"
        with self._lock:
            if self._differs.get(name) == key:
                return
            self._differs[name] = key
        log.warning(
            "job not run here: this member's job file differs from the cluster's version",
            extra={"job": name, "member_version": mine[:12], "cluster_version": (cluster or "none")[:12]},
        )

    def _offer(self, job: Job, *, replace: bool) -> None:
        cluster = self.store.define_cluster_job(
            job.name, job.source_hash, schedule_text(job.schedule), self.name, replace=replace
        )
        if cluster != job.source_hash:
            self.say_differs(job.name, job.source_hash, cluster)

    def _drop(self, slot: Slot) -> None:
        self._table.pop(slot.job.name)
        self.streams.remove(slot.job.name)
        with self._lock:
            self._woken.pop(slot.job.name, None)
        slot.closed = True
        with slot.running:
            self._table.close(slot)
        self.metrics.forget(slot.job.name)


@contextlib.contextmanager
def _write_fence(exchange: Exchange, fence: Callable[[], None]) -> Iterator[None]:
    """Also check ``fence`` in the client's shared rate limiter, right before a write leaves (see its module)."""

    limiter = getattr(getattr(exchange, "transport", None), "limiter", None)
    if not isinstance(limiter, SharedKeyLimiter):
        yield
        return
    limiter.write_fence = fence
    try:
        yield
    finally:
        limiter.write_fence = None
