"""The job lease and its fence: one process reconciles a job at a time, and a pass that lost its lease never writes.

Leases live in the state store with an expiry, so a crashed holder frees its jobs by itself. Every acquisition gets
a larger epoch than the last (``rebalancer.state.leases``). A pass carries the ``Lease`` it runs under; right before
each write the executor calls its ``Fence``, which asks the database whether that epoch is still current with enough
time left for the request to finish. A pass that stalled past its lease (a slow read, a paused process) therefore
sends nothing, even when another process has meanwhile taken the job and placed its ladder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rebalancer.defaults import COMMAND_LEASE_SECONDS, REQUEST_BOUND_SECONDS
from rebalancer.errors import LeaseLost, StateError
from rebalancer.state.leases import holder_name
from rebalancer.state.store import StateStore

Fence = Callable[[], None]


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease: the job, the holder's name and the epoch it was acquired under."""

    job: str
    holder: str
    epoch: int


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


def make_fence(store: StateStore, lease: Lease, margin_seconds: float) -> Fence:
    """A check that raises ``LeaseLost`` unless ``lease`` is current in the database with ``margin_seconds`` left."""

    def check() -> None:
        if not store.lease_is_current(lease.job, lease.holder, lease.epoch, margin_seconds):
            raise LeaseLost(
                f"job {lease.job}: lease epoch {lease.epoch} of {lease.holder} is no longer current "
                f"or has less than {margin_seconds:g}s left; nothing sent"
            )

    return check


@contextmanager
def job_lease(store: StateStore, job_name: str, holder: str | None = None,
              ttl_seconds: float = COMMAND_LEASE_SECONDS) -> Iterator[Lease]:
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
