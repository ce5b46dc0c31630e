"""The small interface between the shared scheduler core and what differs between the single daemon and a cluster
member: how a job's exchange is opened, how a pass is claimed (a lease kept in the state store across passes, or one
lease per pass handed out by the queue), how its failures are counted (in memory, or cluster-wide in the store) and
what happens when a job stops. Wake sources (the timer now, the market stream next) are the other half.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from rebalancer.engine.lease import JobSession, Lease
from rebalancer.engine.runner import PassReport
from rebalancer.errors import RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.notify import Notifier
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.series import JobSeries
from rebalancer.vocab import Skip, WakeReason


@dataclass
class Slot:
    """A loaded job and what the scheduler keeps about it between passes."""

    job: Job
    exchange: Exchange
    closer: contextlib.ExitStack
    running: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False
    passes: int = 0  # passes run or skipped for the lease or a pause (``ready`` waits for one per job)
    failures: int = 0  # failed passes in a row, as this process knows them
    not_before: float = 0.0  # monotonic time before which a backing-off job is skipped (daemon)
    was_paused: bool = False  # by its job file's ``paused:`` (a pause through the store is told where it is made)
    paused_in_store: bool = True  # the store's pause switch as last read (daemon: read before a pass only if on)
    session: JobSession | None = None  # the daemon's lease kept across passes
    _series: JobSeries | None = None

    def series(self, metrics: Metrics) -> JobSeries:
        """The job's metric series in ``metrics``, looked up on first use (``rebalancer.scheduler.series``)."""
        series = self._series
        if series is None or series.metrics is not metrics:
            series = self._series = JobSeries.of(metrics, self.job.name)
        return series


@dataclass(frozen=True, slots=True)
class Due:
    """Why a pass is asked for now: the wake's reason, when it was due, and the queue's id of the pass (a member's
    lease holder is named after it)."""

    reason: WakeReason = WakeReason.TIMER
    due_ms: int | None = None
    pass_id: int | None = None


@dataclass(frozen=True, slots=True)
class Claim:
    """The right to run one pass: the lease it runs under (a member's, one per pass; the daemon's session holds its
    own), the failures in a row before it, the fields its log lines carry besides the pass's own, and why it runs
    (``Due.reason``, which its pass record keeps)."""

    lease: Lease | None = None
    failures: int = 0
    fields: Mapping[str, object] = field(default_factory=dict)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    wake: WakeReason = WakeReason.TIMER


@dataclass(frozen=True, slots=True)
class Finished:
    """What a plug made of a pass's end: failed passes in a row (0 after a success) and the backoff, in seconds."""

    failures: int
    retry_in: float = 0.0


class Coordination(Protocol):
    """Where the daemon and a cluster member differ; the core (``rebalancer.scheduler.core``) calls these."""

    notifier: Notifier
    log: logging.Logger

    def open(self, job: Job) -> contextlib.AbstractContextManager[Exchange]:
        """Connect to the job's exchange for as long as the job is loaded."""
        ...

    def claim(self, slot: Slot, due: Due) -> Claim | Skip:
        """May the pass run now? A ``Claim`` to run it, or why it is skipped (paused, backing off, lease held...)."""
        ...

    def run(self, slot: Slot, claim: Claim) -> PassReport:
        """One applying pass of the job under the claim's lease, behind its fence; ``JobPaused`` when the pass's
        store read finds the job paused (nothing written or sent)."""
        ...

    def paused(self, slot: Slot, claim: Claim) -> Skip:
        """The pass stopped on the job's pause switch (after ``release``): account it as a paused job's skip."""
        ...

    def release(self, slot: Slot, claim: Claim) -> None:
        """The pass is over, however it ended: let go of what only it held."""
        ...

    def finish(self, slot: Slot, claim: Claim, outcome: PassReport | RebalancerError) -> Finished:
        """Record how the pass ended (failed or not) and say how many passes in a row failed."""
        ...

    def on_stop(self, slot: Slot) -> None:
        """The job stops in this process for good (removed, or the process stops)."""
        ...


class WakeSource(Protocol):
    """Something that says when a job should run: a timer, a market stream. It calls ``wake(name, reason)``."""

    def add(self, job: Job) -> None:
        """Start watching for ``job``."""
        ...

    def remove(self, name: str) -> None:
        """Stop watching for the job named ``name``."""
        ...

    def start(self, wake: Callable[[str, WakeReason], None]) -> None:
        """Start calling ``wake``."""
        ...

    def stop(self) -> None:
        """Stop calling it."""
        ...
