"""One cluster member: its own job files and exchange connections, and the passes the queue hands it.

A member runs a pass of a job only when it loaded the job at the cluster's version (the file fingerprint kept in
the state store), and only under a fresh lease: every pass acquires the job's lease under its own holder name, so
each pass has its own epoch, and the fence checks that epoch in the database right before every write. While a
pass runs, the member's heartbeat thread renews its lease every second; a member that dies or freezes stops
renewing, its leases expire ``CLUSTER_LEASE_SECONDS`` later, and only then can a pass elsewhere write for those jobs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rebalancer.cluster.dispatcher import schedule_text
from rebalancer.core.plan import Plan
from rebalancer.defaults import (
    CLUSTER_CONNECT_TIMEOUT_SECONDS,
    CLUSTER_LEASE_SECONDS,
    CLUSTER_READ_TIMEOUT_SECONDS,
    CLUSTER_RENEW_SECONDS,
)
from rebalancer.engine.lease import Lease, make_fence, request_bound_seconds
from rebalancer.engine.runner import run_pass
from rebalancer.errors import ConfigError, RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.notify import Notifier, post
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.report import pass_fields, pass_log_level
from rebalancer.scheduler.timing import backoff_delay
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, OutcomeStatus, PassResult

log = logging.getLogger("rebalancer.cluster")

LEASE_RETRY_MARGIN_MS = 100  # a pass that found the lease held comes due again this soon after it ends

ExchangeOpener = Callable[[Job], contextlib.AbstractContextManager[Exchange]]


@dataclass
class MemberJob:
    """A job this member loaded: its exchange connection and the version (fingerprint) of its file."""

    job: Job
    exchange: Exchange
    closer: contextlib.ExitStack
    running: threading.Lock = field(default_factory=threading.Lock)


def member_name() -> str:
    """This process's member name: ``HOST:PID:cluster``."""
    return f"{socket.gethostname()}:{os.getpid()}:cluster"


def cluster_opener(store: StateStore, env: Mapping[str, str] | None = None) -> ExchangeOpener:
    """Opens a job's exchange for a member: short timeouts, and the API key's rate limits shared cluster-wide."""

    @contextlib.contextmanager
    def open_exchange(job: Job) -> Iterator[Exchange]:
        from rebalancer.cluster.ratelimit import shared_limiter
        from rebalancer.engine.connect import credentials
        from rebalancer.exchange.client import OpenApiClient
        from rebalancer.exchange.marketdata import shared_for
        from rebalancer.exchange.profile import ExchangeProfile, RateLimit

        config = job.exchange
        if config.is_sandbox:
            raise ConfigError(
                f"job {job.name}: url: sandbox is one process's embedded exchange; cluster members need an "
                "exchange they all reach (serve one with `rebalancer sandbox` and use its URL)"
            )
        api_key, secret_key = credentials(config, os.environ if env is None else env)
        profile = ExchangeProfile(
            time_unit=config.time_unit,
            page_size=config.page_size,
            connect_timeout=CLUSTER_CONNECT_TIMEOUT_SECONDS,
            # Capped, so that a member's lease (which must outlast a request) and so its takeover time stay short.
            read_timeout=min(float(config.timeout_seconds), CLUSTER_READ_TIMEOUT_SECONDS),
            max_batch=config.max_batch,
            sign=config.sign,
            read_limit=RateLimit(config.read_rate.count, float(config.read_rate.seconds)),
            write_limit=RateLimit(config.write_rate.count, float(config.write_rate.seconds)),
        )
        client = OpenApiClient(
            config.url,
            api_key,
            secret_key,
            profile,
            limiter=shared_limiter(store, config.url, api_key, profile),
            insecure=config.insecure,
            market=shared_for(config.url),
        )
        try:
            yield client
        finally:
            client.close()

    return open_exchange


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
        self._opener = opener or cluster_opener(store)
        self._lease_seconds = lease_seconds
        self._jobs: dict[str, MemberJob] = {}
        self._leases: dict[str, Lease] = {}
        self._differs: dict[str, str] = {}
        self._plans: dict[str, tuple[Plan, datetime]] = {}
        self._lock = threading.Lock()
        self.notifier = Notifier(on_failure=lambda job: self.metrics.notify_failures.labels(job).inc())

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs this member loaded, by name."""
        with self._lock:
            return {name: slot.job for name, slot in self._jobs.items()}

    def last_plan(self, name: str) -> tuple[Plan, datetime] | None:
        """The plan of the job's latest pass on this member and when it ended, for the status pages."""
        with self._lock:
            return self._plans.get(name)

    def start(self, jobs: Sequence[Job]) -> None:
        """Join the cluster: record the member, connect every job's exchange (all or nothing), offer their versions."""
        self.store.register_member(self.name, socket.gethostname(), os.getpid(), self.concurrency)
        opened: list[MemberJob] = []
        try:
            for job in jobs:
                opened.append(self._open(job))
        except BaseException:
            for slot in opened:
                slot.closer.close()
            raise
        with self._lock:
            self._jobs = {slot.job.name: slot for slot in opened}
        for job in jobs:
            self._offer(job, replace=False)

    def reload(self, jobs: Sequence[Job]) -> None:
        """Take the jobs of edited files: new and changed ones are offered as the cluster's newest version."""
        wanted = {job.name: job for job in jobs}
        with self._lock:
            current = dict(self._jobs)
        for name, slot in current.items():
            if name not in wanted:
                self._drop(name, slot)
                log.info("job removed from this member", extra={"job": name})
        for name, job in wanted.items():
            old = current.get(name)
            if old is not None and old.job == job:
                continue
            try:
                slot = self._open(job)
            except RebalancerError as exc:
                log.error("job not (re)loaded, keeping the old version", extra={"job": name, "error": str(exc)})
                continue
            with self._lock:
                self._jobs[name] = slot
            if old is not None:
                with old.running:
                    old.closer.close()
            self._offer(job, replace=True)
            log.info("job changed" if old else "job added", extra={"job": name})
        self.store.forget_member_jobs(self.name, wanted)

    def stop(self) -> None:
        """Leave the cluster: mark the member stopped and close every connection (running passes are done)."""
        with contextlib.suppress(RebalancerError):
            self.store.member_stopped(self.name)
        with self._lock:
            slots, self._jobs = list(self._jobs.values()), {}
        for slot in slots:
            with contextlib.suppress(Exception):
                slot.closer.close()
        self.notifier.close()

    def beat(self) -> None:
        """Prove the member alive and renew the lease of every running pass (the heartbeat thread, every second)."""
        self.store.member_heartbeat(self.name)
        with self._lock:
            leases = [
                (lease, self._lease_for(self._jobs[lease.job]))
                for lease in self._leases.values()
                if lease.job in self._jobs
            ]
        for lease, lease_seconds in leases:
            renewed = self.store.renew_lease(lease.job, lease.holder, lease.epoch, lease_seconds)
            with self._lock:
                running = lease.holder in self._leases  # else the pass ended (and let go) meanwhile
            if not renewed and running:
                log.warning("lease lost while the pass runs; it will send nothing more", extra={"job": lease.job})

    def reconcile(self, name: str, due_ms: int, *, pass_id: int) -> str:
        """One pass of job ``name`` if this member may run it; returns what happened (a pass result or a skip)."""
        with self._lock:
            slot = self._jobs.get(name)
        if slot is None:
            log.warning("pass skipped: job not loaded on this member", extra={"job": name})
            return "not_loaded"
        cluster = self.store.cluster_job(name)
        if cluster is None or cluster.fingerprint != slot.job.source_hash:
            self._say_differs(name, slot.job.source_hash, cluster.fingerprint if cluster else None)
            return "version_differs"
        if self.store.is_paused(name):
            log.info("pass skipped: job paused", extra={"job": name})
            return "paused"
        late = max(0.0, (to_ms(datetime.now(UTC)) - due_ms) / 1000)
        self.metrics.lateness.labels(name).observe(late)
        holder = f"{self.name}#{pass_id}"
        epoch = self.store.acquire_lease(name, holder, self._lease_for(slot))
        if epoch is None:
            self._retry_after_lease(name)
            return "lease_held"
        return self._leased_pass(slot, Lease(name, holder, epoch), cluster.failures, late)

    def _leased_pass(self, slot: MemberJob, lease: Lease, failures: int, late: float) -> str:
        job = slot.job
        with self._lock:
            self._leases[lease.holder] = lease
        started, began = time.monotonic(), datetime.now(UTC)
        try:
            fence = make_fence(self.store, lease, request_bound_seconds(slot.exchange))
            with slot.running, _write_fence(slot.exchange, fence):
                report = run_pass(
                    job, slot.exchange, self.store, apply=True, mode=Mode.CLUSTER, fence=fence, notifier=self.notifier
                )
        except RebalancerError as exc:
            self.metrics.passes.labels(job.name, PassResult.ERROR).inc()
            delay = backoff_delay(failures + 1)
            self.store.record_cluster_pass(
                job.name, self.name, PassResult.ERROR, failed=True, backoff_seconds=delay, started_at=began
            )
            log.error("pass failed", extra={"job": job.name, "error": str(exc), "retry_in_s": round(delay, 1)})
            self._tell_failing(job, failures + 1, str(exc))
            return "error"
        finally:
            with self._lock:
                self._leases.pop(lease.holder, None)
            with contextlib.suppress(RebalancerError):
                self.store.release_lease(lease.job, lease.holder)
            self.metrics.pass_duration.labels(job.name).observe(time.monotonic() - started)
        with self._lock:
            self._plans[job.name] = (report.plan, datetime.now(UTC))
        failed = report.failed and report.result is not PassResult.FENCED
        delay = backoff_delay(failures + 1) if failed else 0.0
        self.store.record_cluster_pass(
            job.name, self.name, report.result, failed=failed, backoff_seconds=delay, started_at=began
        )
        if failed:
            self._tell_failing(job, failures + 1, report.error or str(report.result))
        self.metrics.passes.labels(job.name, report.result).inc()
        self.metrics.gate_refusals.labels(job.name).inc(report.gate_refusals)
        if report.execution is not None:
            self.metrics.placed.labels(job.name).inc(report.execution.count(OutcomeStatus.PLACED))
            self.metrics.cancelled.labels(job.name).inc(report.execution.count(OutcomeStatus.CANCELLED))
        fields = {**pass_fields(report), "member": self.name, "epoch": lease.epoch, "late_ms": int(late * 1000)}
        if report.result is PassResult.FENCED:
            log.warning("pass fenced: lease lost before sending", extra={**fields, "error": report.error})
        else:
            log.log(pass_log_level(report), "pass", extra=fields)  # as the daemon: no changes at debug
        return report.result

    def _tell_failing(self, job: Job, streak: int, why: str) -> None:
        """At ``notify.after_failures`` failed passes in a row (counted cluster-wide), tell the webhook once."""
        if job.notify is not None and streak == job.notify.after_failures:
            post(job, "failing", f"{streak} passes in a row failed; the last: {why}", self.notifier)

    def _lease_for(self, slot: MemberJob) -> float:
        """A pass's lease: the member's, or longer when the job's exchange lets a request take longer (the fence
        keeps a whole request's time in hand, so a shorter lease would fence every pass)."""
        return max(self._lease_seconds, request_bound_seconds(slot.exchange) + 2 * CLUSTER_RENEW_SECONDS)

    def _retry_after_lease(self, name: str) -> None:
        """A pass found the job's lease held (a frozen or dead member's pass): come due again as it ends.

        Without this the job would wait for its next period after the lease ends, adding up to a period to the
        time a dead member's jobs take to continue elsewhere.
        """
        self.metrics.passes.labels(name, "lease_held").inc()
        expiry = self.store.lease_expiry(name)
        log.info("pass skipped: job held by another pass", extra={"job": name, "holder": self.store.lease_holder(name)})
        cluster = self.store.cluster_job(name)
        if expiry is not None and cluster is not None:
            retry_ms = to_ms(expiry) + LEASE_RETRY_MARGIN_MS
            if retry_ms < cluster.next_due_ms:
                self.store.set_next_due({name: retry_ms})

    def _say_differs(self, name: str, mine: str, cluster: str | None) -> None:
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
            self._say_differs(job.name, job.source_hash, cluster)

    def _open(self, job: Job) -> MemberJob:
        closer = contextlib.ExitStack()
        try:
            exchange = closer.enter_context(self._opener(job))
        except BaseException:
            closer.close()
            raise
        return MemberJob(job=job, exchange=exchange, closer=closer)

    def _drop(self, name: str, slot: MemberJob) -> None:
        with self._lock:
            self._jobs.pop(name, None)
            self._plans.pop(name, None)
        with slot.running:
            slot.closer.close()
        self.metrics.forget(name)


@contextlib.contextmanager
def _write_fence(exchange: Exchange, fence: Callable[[], None]) -> Iterator[None]:
    """Also check ``fence`` in the client's shared rate limiter, right before a write leaves (see its module)."""
    from rebalancer.cluster.ratelimit import SharedKeyLimiter

    limiter = getattr(getattr(exchange, "transport", None), "limiter", None)
    if not isinstance(limiter, SharedKeyLimiter):
        yield
        return
    limiter.write_fence = fence
    try:
        yield
    finally:
        limiter.write_fence = None
