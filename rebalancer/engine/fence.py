"""The fence of a lease: the check, right before a pass writes to the exchange, that its lease is still current.

A pass carries the ``Lease`` it runs under; the executor calls its fence before every batch, which asks the database
whether that epoch is still current with enough time left for the request to finish (``rebalancer.engine.lease``
says why). The first call of a pass that places orders is the write-ahead's transaction itself
(``rebalancer.engine.send``): ``check`` is what that transaction verifies before it writes.
"""

from __future__ import annotations

from dataclasses import dataclass

from rebalancer.state.leases import lease_lost
from rebalancer.state.outcome import LeaseCheck
from rebalancer.state.store import StateStore


@dataclass(frozen=True, slots=True)
class Lease:
    """A held lease: the job, the holder's name and the epoch it was acquired under."""

    job: str
    holder: str
    epoch: int


class LeaseFence:
    """Raises ``LeaseLost`` when called unless ``lease`` is current in the database with ``margin_seconds`` left."""

    def __init__(self, store: StateStore, lease: Lease, margin_seconds: float) -> None:
        self.store = store
        self.lease = lease
        self.check = LeaseCheck(lease.holder, lease.epoch, margin_seconds)

    def __call__(self) -> None:
        """The fencing read: one read transaction."""
        lease, check = self.lease, self.check
        if not self.store.lease_is_current(lease.job, lease.holder, lease.epoch, check.margin_seconds):
            raise lease_lost(lease.job, lease.holder, lease.epoch, check.margin_seconds)


def make_fence(store: StateStore, lease: Lease, margin_seconds: float) -> LeaseFence:
    """A check that raises ``LeaseLost`` unless ``lease`` is current in the database with ``margin_seconds`` left."""
    return LeaseFence(store, lease, margin_seconds)
