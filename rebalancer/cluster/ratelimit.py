"""An API key's rate limits shared by every member of a cluster, counted in the state store.

Each member's client asks its own ``KeyLimiter`` first (which also honours the server's back-off), then takes a
grant from the key's bucket in the database (``StateStore.take_rate_grant``: a sliding window, one transaction
per request), so that N members on one key never send more than the key allows in total.

Its ``write_fence`` (set by the member for the duration of a pass) is checked once more *after* the write's grant,
the last wait before the request leaves, so that the gap between the fence and the send is as short as it can be.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.state.store import StateStore
from rebalancer.vocab import RateKind

MAX_SLEEP_SECONDS = 1.0


class SharedKeyLimiter(KeyLimiter):
    """A ``KeyLimiter`` that also counts every request against the cluster-wide bucket of its key."""

    def __init__(
        self,
        store: StateStore,
        bucket: str,
        read: RateLimit,
        write: RateLimit,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(read, write, sleep=sleep)
        self._store = store
        self._bucket = bucket
        self._limits = {RateKind.READ: read, RateKind.WRITE: write}
        self._pause = sleep
        self.write_fence: Callable[[], None] | None = None

    def acquire(self, kind: RateKind) -> float:
        """Wait for this process's window, then for a grant from the shared bucket; the seconds waited."""
        waited = super().acquire(kind)
        limit = self._limits[kind]
        while True:
            delay = self._store.take_rate_grant(f"{self._bucket}:{kind}", limit.count, limit.period)
            if delay <= 0:
                fence = self.write_fence
                if kind is RateKind.WRITE and fence is not None:
                    fence()
                return waited
            pause = min(delay, MAX_SLEEP_SECONDS)
            self._pause(pause)
            waited += pause


def shared_limiter(store: StateStore, base_url: str, api_key: str, profile: ExchangeProfile) -> SharedKeyLimiter:
    """The limiter of ``api_key`` on ``base_url``; its bucket is named by a digest, never by the key."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{api_key}".encode()).hexdigest()[:32]
    return SharedKeyLimiter(store, digest, profile.read_limit, profile.write_limit)
