"""The daemon's lease keeper: one thread renews every lease the daemon holds, in one statement, every quarter of the
lease's lifetime.

A job's session would otherwise renew its own lease with a write transaction every third of the lifetime (at a
thousand jobs, a thousand writes a minute). The keeper renews them together, more often than a session would, and
tells each session so (``JobSession.renewed``); a session renews its own only when the keeper fell behind. The
leases of jobs whose pass runs right now are left alone, as a session never renews its lease during a pass: a pass
that stalls past its lease loses it, and its fence stops it from sending. A lease another process took, or one that
expired, is not renewed; the job's next pass asks for it again (a new epoch) or is skipped as held elsewhere.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from rebalancer.engine.lease import JobSession
from rebalancer.errors import RebalancerError
from rebalancer.state.store import StateStore

log = logging.getLogger("rebalancer.daemon")

KEEPER_SHARE = 0.25
"""The keeper renews every quarter of the lease's lifetime: before any session's own renewal (at a third) is due."""


class LeaseKeeper:
    """Renews the leases of ``holder`` every ``KEEPER_SHARE`` of ``ttl_seconds`` from its own thread; ``sessions``
    gives the daemon's job sessions now."""

    def __init__(
        self,
        store: StateStore,
        holder: str,
        ttl_seconds: float,
        sessions: Callable[[], Iterable[JobSession]],
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl_seconds = ttl_seconds
        self.interval = ttl_seconds * KEEPER_SHARE
        self._sessions = sessions
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start renewing (the first renewal one interval from now: every lease was just taken)."""
        self._thread = threading.Thread(target=self._run, name="rebalancer-leases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing, waiting a second at most for a renewal under way: one that lands after the daemon's
        release of its leases finds them expired and renews none."""
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=min(self.interval, 1.0))

    def renew(self) -> int:
        """One renewal of every lease the holder holds but those of jobs with a pass running; how many renewed."""
        at = time.monotonic()
        sessions = list(self._sessions())
        busy = sorted(s.job.name for s in sessions if s.running)
        renewed = self.store.renew_leases(self.holder, self.ttl_seconds, busy)
        for session in sessions:
            lease = session.lease
            if lease is not None and renewed.get(lease.job) == lease.epoch:
                session.renewed(lease.epoch, at)
        return len(renewed)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.renew()
            except RebalancerError as exc:  # each session renews its own lease at its next pass meanwhile
                log.warning("could not renew the leases", extra={"error": str(exc)})
            except Exception:  # a bug here must not stop the renewals for good
                log.exception("renewing the leases failed")
