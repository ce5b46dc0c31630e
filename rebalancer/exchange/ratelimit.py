"""Client-side rate limiting per API key: sliding windows for reads and for writes, plus server back-off.

Every client of one (base URL, API key) shares one ``KeyLimiter`` through ``limiter_for``, so jobs that trade
on the same key stay within the key's limits together (``exchange.rate_limit`` in the job file). When jobs of one
deployment and key give different limits, every one of them holds: a request waits until it fits all the windows,
so the stricter limit wins in each respect (a lower burst and a lower long-run rate may come from different jobs).
Clock and sleep are injectable: tests never wait.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.vocab import RateKind

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], None]


class SlidingWindow:
    """At most ``limit.count`` acquisitions in any ``limit.period`` seconds. Not thread-safe on its own."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._stamps: deque[float] = deque()

    def wait_time(self, now: float) -> float:
        """Seconds to wait before one more acquisition fits the window (0 when it fits now)."""
        # Compare stamp + period with now (not stamp with now - period) so that a sleep of exactly the
        # reported wait always lands on or past the window's edge, whatever the float rounding.
        while self._stamps and self._stamps[0] + self.limit.period <= now:
            self._stamps.popleft()
        if len(self._stamps) < self.limit.count:
            return 0.0
        return self._stamps[0] + self.limit.period - now

    def record(self, now: float) -> None:
        """Count one acquisition at ``now``."""
        self._stamps.append(now)


class KeyLimiter:
    """The limits of one API key: ``acquire(RateKind)`` blocks until the request may go.

    ``back_off(seconds)`` holds every request of the key until that much time has passed; the client calls it
    when the server answers 429 or a rate-limit code, honouring ``Retry-After`` when the server gives one.
    """

    def __init__(
        self,
        read: RateLimit,
        write: RateLimit,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
    ) -> None:
        self._windows = {RateKind.READ: [SlidingWindow(read)], RateKind.WRITE: [SlidingWindow(write)]}
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.waited = 0.0
        """Total seconds spent waiting, for metrics and tests."""

    @property
    def limits(self) -> dict[RateKind, tuple[RateLimit, ...]]:
        """Every limit in force, by kind."""
        with self._lock:
            return {kind: tuple(w.limit for w in windows) for kind, windows in self._windows.items()}

    def also(self, read: RateLimit, write: RateLimit) -> bool:
        """Make ``read`` and ``write`` hold too (besides the limits in force); True when that added a limit."""
        added = False
        with self._lock:
            for kind, limit in ((RateKind.READ, read), (RateKind.WRITE, write)):
                windows = self._windows[kind]
                if all(w.limit != limit for w in windows):
                    windows.append(SlidingWindow(limit))
                    added = True
        return added

    def acquire(self, kind: RateKind) -> float:
        """Wait until a ``kind`` request fits every limit of its kind, count it, and return the seconds waited."""
        windows = self._windows[kind]
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                delay = max(max(w.wait_time(now) for w in windows), self._not_before - now)
                if delay <= 0:
                    for window in windows:
                        window.record(now)
                    self.waited += waited
                    return waited
            self._sleep(delay)
            waited += delay

    def back_off(self, seconds: float) -> None:
        """Hold every request of this key for ``seconds`` from now (a longer hold in force is kept)."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + max(seconds, 0.0))


_registry: dict[tuple[str, str], KeyLimiter] = {}
_registry_lock = threading.Lock()


def limiter_for(base_url: str, api_key: str, profile: ExchangeProfile) -> KeyLimiter:
    """The limiter shared by every client of ``api_key`` on ``base_url``, holding ``profile``'s limits too.

    A profile whose limits differ from those in force adds them (all hold: the stricter wins) and says so once.
    """
    # The registry holds a digest, not the key, so a dump of it shows nothing worth stealing.
    digest = hashlib.sha256(api_key.encode("utf-8")).hexdigest()
    base = base_url.rstrip("/")
    with _registry_lock:
        limiter = _registry.get((base, digest))
        if limiter is None:
            limiter = KeyLimiter(profile.read_limit, profile.write_limit)
            _registry[(base, digest)] = limiter
        elif limiter.also(profile.read_limit, profile.write_limit):
            in_force = {kind: ", ".join(_text(x) for x in limits) for kind, limits in limiter.limits.items()}
            log.warning(
                "jobs on %s with one API key give different rate limits; all hold (reads %s; writes %s)",
                base,
                in_force[RateKind.READ],
                in_force[RateKind.WRITE],
            )
        return limiter


def _text(limit: RateLimit) -> str:
    return f"{limit.count}/{limit.period:g}s"
