"""The job lease, its fence, and the session every applying pass runs in.

One process reconciles a job at a time, and a pass that lost its lease never writes. Leases live in the state store
with an expiry, so a crashed holder frees its jobs by itself. Every acquisition gets a larger epoch than the last
(``rebalancer.state.leases``). A pass carries the ``Lease`` it runs under; right before each write the executor calls
its fence (``rebalancer.engine.fence``), which asks the database whether that epoch is still current with enough time
left for the request to finish. A pass that stalled past its lease (a slow read, a paused process) therefore sends
nothing, even when another process has meanwhile taken the job and placed its ladder.

A ``JobSession`` is the frame written once for every pass that may send: the job's exchange, the state store and
the lease. ``apply`` and ``cancel`` run one pass in a session (``open_session``), ``run --once`` one session per
job, and the daemon keeps one session per scheduled job, renewing its lease as it goes. ``plan`` takes no lease.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from rebalancer.core.plan import Plan
from rebalancer.defaults import COMMAND_LEASE_SECONDS, REQUEST_BOUND_SECONDS
from rebalancer.engine.connect import open_exchange
from rebalancer.engine.fence import Lease, make_fence
from rebalancer.engine.runner import Approve, PassReport, cancel_plan_job, run_pass
from rebalancer.errors import LeaseLost, StateError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.notify import Notifier, shared
from rebalancer.state.leases import holder_name
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, PassResult, WakeReason

ExchangeOpener = Callable[[Job], contextlib.AbstractContextManager[Exchange]]
"""Connects to a job's exchange for a ``with`` block (``rebalancer.engine.connect.open_exchange`` by default)."""


def command_holder() -> str:
    """The lease holder name of this command-line process."""
    return holder_name("cli")


def request_bound_seconds(exchange: object) -> float:
    """The longest one request to ``exchange`` may take (connect + read timeout): the fence's margin.

    A write sent with less lease than this left could still be in flight when another process takes the job.
    """
    profile = getattr(exchange, "profile", None)
    if profile is None:
        return REQUEST_BOUND_SECONDS
    return float(profile.connect_timeout) + float(profile.read_timeout)


@contextmanager
def job_lease(
    store: StateStore, job_name: str, holder: str | None = None, ttl_seconds: float = COMMAND_LEASE_SECONDS
) -> Iterator[Lease]:
    """Hold ``job_name``'s lease for the block, or raise StateError naming the process that holds it."""
    holder = holder or command_holder()
    epoch = store.take_over_lease(job_name, holder, ttl_seconds)
    if epoch is None:
        raise StateError(
            f"job {job_name} is being reconciled by {store.lease_holder(job_name)}; "
            f"pause it (rebalancer pause {job_name}) or stop that process first"
        )
    try:
        yield Lease(job_name, holder, epoch)
    finally:
        store.release_lease(job_name, holder)


class JobSession:
    """One job's exchange, state store and lease. ``run`` sends only under a lease ``hold`` took, behind its fence;
    the webhook events its passes cause go to ``notifier`` (the process's shared one, ``rebalancer.notify``, when
    none is given)."""

    def __init__(
        self,
        job: Job,
        exchange: Exchange,
        store: StateStore,
        *,
        holder: str,
        ttl_seconds: float,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        notifier: Notifier | None = None,
    ) -> None:
        self.job = job
        self.notifier = notifier
        self.exchange = exchange
        self.store = store
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.lease: Lease | None = None
        self.running = False  # a pass runs in the session now (the daemon's lease keeper leaves its lease alone)
        self._wall = wall
        self._renew_at = 0.0

    def hold(self, *, refresh: bool = False) -> bool:
        """Take or renew the job's lease; False when another process holds it.

        A lease taken or renewed less than a third of its lifetime ago is trusted without a database write (unless
        ``refresh``), so a daemon does not write on every pass (its lease keeper renews every lease of the daemon
        more often than that, in one statement: see ``renewed``); the fence still checks it before every write.
        """
        now = time.monotonic()
        if self.lease is not None and not refresh and now < self._renew_at:
            return True
        epoch = self.store.take_over_lease(self.job.name, self.holder, self.ttl_seconds)
        if epoch is None:
            self.lease, self._renew_at = None, 0.0
            return False
        self.taken(epoch, now)
        return True

    def taken(self, epoch: int, at: float) -> None:
        """The job's lease is held under ``epoch``, taken or renewed for its whole lifetime by a statement that
        started at monotonic time ``at`` (``hold``, or the daemon taking every job's lease at start in one
        statement): trust it for a third of that lifetime."""
        if self.lease is None or self.lease.epoch != epoch:
            # Taken afresh: another process may have run the job meanwhile, so carried balances are stale.
            self.exchange.forget_balances()
        self.lease, self._renew_at = Lease(self.job.name, self.holder, epoch), at + self.ttl_seconds / 3

    def renewed(self, epoch: int, at: float) -> None:
        """The lease under ``epoch`` was renewed for its whole lifetime by a statement that started at monotonic
        time ``at`` (the daemon's lease keeper): trust it for another third of that lifetime. A lease taken afresh
        meanwhile (another epoch) is left as it is."""
        lease = self.lease
        if lease is not None and lease.epoch == epoch:
            self._renew_at = max(self._renew_at, at + self.ttl_seconds / 3)

    def release(self) -> None:
        """Give the lease up (if it is ours), so another process may reconcile the job at once."""
        self.lease, self._renew_at = None, 0.0
        self.store.release_lease(self.job.name, self.holder)

    def held_by(self) -> str | None:
        """Who holds the job's lease now, if anyone (for messages)."""
        return self.store.lease_holder(self.job.name)

    def run(
        self,
        mode: Mode,
        *,
        cancel: bool = False,
        approve: Approve | None = None,
        recheck: bool = False,
        saved_plan: Plan | None = None,
        wake: WakeReason | None = None,
        honour_pause: bool = False,
    ) -> PassReport:
        """One applying pass of the job (with ``cancel``: of its empty ladder, which cancels every order it owns);
        ``wake``: why a scheduler runs it (None: a command does); ``honour_pause``: ``JobPaused`` when the pass's
        store read finds the job paused (``rebalancer.engine.runner.run_pass``).

        Call it after ``hold`` said yes. A pass that finds its lease gone ends ``fenced`` and the session forgets
        the lease, so the next ``hold`` asks for it again.
        """
        if self.lease is None:
            raise LeaseLost(f"job {self.job.name}: no lease held by {self.holder}; nothing sent")
        fence = make_fence(self.store, self.lease, request_bound_seconds(self.exchange))
        job = cancel_plan_job(self.job) if cancel else self.job
        self.running = True
        try:
            report = run_pass(
                job,
                self.exchange,
                self.store,
                apply=True,
                mode=mode,
                approve=approve,
                recheck=recheck,
                saved_plan=saved_plan,
                wall=self._wall,
                fence=fence,
                notifier=self.notifier or shared(),  # a command's events go out before it exits (rebalancer.cli.main)
                wake=wake,
                honour_pause=honour_pause,
            )
        finally:
            self.running = False
        if report.result is PassResult.FENCED:
            self.lease, self._renew_at = None, 0.0
        return report


@contextlib.contextmanager
def open_session(
    job: Job,
    store: StateStore,
    *,
    opener: ExchangeOpener = open_exchange,
    holder: str | None = None,
    ttl_seconds: float = COMMAND_LEASE_SECONDS,
) -> Iterator[JobSession]:
    """Connect to the job's exchange and take its lease for the block; release both after.

    Another process holding the lease is a ``StateError`` naming it, raised before anything is read or sent.
    """
    with opener(job) as exchange:
        session = JobSession(job, exchange, store, holder=holder or command_holder(), ttl_seconds=ttl_seconds)
        if not session.hold(refresh=True):
            raise StateError(
                f"job {job.name} is being reconciled by {session.held_by()}; "
                f"pause it (rebalancer pause {job.name}) or stop that process first"
            )
        try:
            yield session
        finally:
            session.release()
