"""An API key's rate limits shared by every member of a cluster, counted in the state store.

Each member's client asks its own ``KeyLimiter`` first (which also honours the server's back-off), then takes a
token from the key's bucket in the database, so that N members on one key never send more than the key allows in
total. A member takes tokens in blocks (``SharedBudget``: one transaction for several requests, spent within
``block_hold`` seconds, the unspent ones given back with the next block) and shares its blocks between all its
jobs on one key. ``StateStore.take_rate_tokens`` counts a block's later tokens at the end of its hold, the latest
they can be sent, so the deployment's rate holds over every window whichever member sends when.

Its ``write_fence`` (set by the member for the duration of a pass) is checked once more *after* the write's token,
the last wait before the request leaves, so that the gap between the fence and the send is as short as it can be.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from rebalancer.vocab import RateKind

MAX_SLEEP_SECONDS = 1.0
MAX_BLOCK = 8  # tokens one transaction takes at most (fewer when the bucket is busy: see take_rate_tokens)
MAX_HOLD_SECONDS = 1.0  # how long a block's tokens may be spent: long enough for a pass's reads, short for a limit


def block_hold(limit: RateLimit) -> float:
    """Seconds a block of ``limit``'s tokens may be spent: half its period, at most ``MAX_HOLD_SECONDS``.

    A token is counted at the end of its block's hold, so a hold adds up to its length to the time a token spent
    early keeps its place in the window: a short hold wastes little of a busy key.
    """
    return min(limit.period / 2, MAX_HOLD_SECONDS)


@dataclass(slots=True)
class _Block:
    """The unspent tokens of one bucket this member took, and until when (epoch ms) they may be spent."""

    left: int = 0
    until_ms: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class SharedBudget:
    """One member's tokens of the cluster-wide buckets: taken from the store in blocks, spent by any of its jobs."""

    def __init__(self, store: StateStore, *, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._clock = clock  # tests only: else the store reads its clock once it holds the bucket
        self._blocks: dict[str, _Block] = {}
        self._lock = threading.Lock()

    def take(self, bucket: str, limit: RateLimit) -> float:
        """One token of ``bucket`` (0.0): from this member's block, or from a new one; else the seconds to wait."""
        with self._lock:
            block = self._blocks.setdefault(bucket, _Block())
        with block.lock:
            now = None if self._clock is None else self._clock()
            if block.left > 0 and to_ms(now or datetime.now(UTC)) < block.until_ms:
                block.left -= 1
                return 0.0
            unsent = (block.until_ms, block.left) if block.left > 0 else None
            tokens = self._store.take_rate_tokens(
                bucket,
                limit.count,
                limit.period,
                most=MAX_BLOCK,
                hold_seconds=block_hold(limit),
                give_back=unsent,
                now=now,
            )
            block.left, block.until_ms = max(0, tokens.taken - 1), tokens.until_ms
            return 0.0 if tokens.taken else tokens.wait


class SharedKeyLimiter(KeyLimiter):
    """A ``KeyLimiter`` that also counts every request against the cluster-wide bucket of its key."""

    def __init__(
        self,
        budget: SharedBudget,
        bucket: str,
        read: RateLimit,
        write: RateLimit,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(read, write, sleep=sleep)
        self._budget = budget
        self._bucket = bucket
        self._limits = {RateKind.READ: read, RateKind.WRITE: write}
        self._pause = sleep
        self.write_fence: Callable[[], None] | None = None

    def acquire(self, kind: RateKind) -> float:
        """Wait for this process's window, then for a token of the shared bucket; the seconds waited."""
        waited = super().acquire(kind)
        limit = self._limits[kind]
        while True:
            delay = self._budget.take(f"{self._bucket}:{kind}", limit)
            if delay <= 0:
                fence = self.write_fence
                if kind is RateKind.WRITE and fence is not None:
                    fence()
                return waited
            pause = min(delay, MAX_SLEEP_SECONDS)
            self._pause(pause)
            waited += pause


def shared_limiter(budget: SharedBudget, base_url: str, api_key: str, profile: ExchangeProfile) -> SharedKeyLimiter:
    """The limiter of ``api_key`` on ``base_url``; its bucket is named by a digest, never by the key."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\n{api_key}".encode()).hexdigest()[:32]
    return SharedKeyLimiter(budget, digest, profile.read_limit, profile.write_limit)
