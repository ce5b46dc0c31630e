"""The job lease: one process reconciles a job at a time, whether a daemon, ``apply``, ``cancel`` or ``run --once``.

Leases live in the state store with an expiry, so a crashed holder frees its jobs by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rebalancer.defaults import COMMAND_LEASE_SECONDS
from rebalancer.errors import StateError
from rebalancer.state.leases import holder_name
from rebalancer.state.store import StateStore


def command_holder() -> str:
    """The lease holder name of this command-line process."""
    return holder_name("cli")


@contextmanager
def job_lease(store: StateStore, job_name: str, holder: str | None = None,
              ttl_seconds: float = COMMAND_LEASE_SECONDS) -> Iterator[str]:
    """Hold ``job_name``'s lease for the block, or raise StateError naming the process that holds it."""
    holder = holder or command_holder()
    if not store.take_over_lease(job_name, holder, ttl_seconds):
        raise StateError(
            f"job {job_name} is being reconciled by {store.lease_holder(job_name)}; "
            f"pause it (rebalancer pause {job_name}) or stop that process first"
        )
    try:
        yield holder
    finally:
        store.release_lease(job_name, holder)
