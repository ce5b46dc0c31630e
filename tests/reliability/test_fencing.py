"""Fencing: a pass that outlived its lease never writes, whoever took the job over meanwhile.

The measured hole: two daemons on one state store; one pass's open-order read dripped in for longer than its
lease; the other daemon took the job and placed the ladder; the stale pass then sent its batch built from the
empty book — two ladders on the book. Here the stall is a hook on the first open-order read (the read happens,
its answer is held back), the lease lasts 1.5 s, and both daemons share one state store.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import pytest

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.engine.lease import Lease, job_lease, make_fence
from rebalancer.engine.runner import run_pass
from rebalancer.errors import LeaseLost
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.state.store import StateStore
from tests.reliability.kit import load

LEASE_SECONDS = 1.5


class StalledRead:
    """An exchange whose first open-order read is made at once but answered only when ``release`` is set."""

    def __init__(self, inner: object) -> None:
        self._inner = inner
        self.reading = threading.Event()
        self.release = threading.Event()
        self._stalled = False

    def open_orders(self, symbol: str) -> tuple:
        orders = self._inner.open_orders(symbol)  # type: ignore[attr-defined]
        if not self._stalled:
            self._stalled = True
            self.reading.set()
            assert self.release.wait(30)
        return orders

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)


def _env(sandbox) -> dict[str, str]:
    return {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}


@contextlib.contextmanager
def quick_client(sandbox):
    """A client whose requests give up within 1 s, so the fence's margin fits the short test lease."""
    profile = ExchangeProfile(connect_timeout=0.3, read_timeout=0.7)
    limiter = KeyLimiter(RateLimit(100_000, 1.0), RateLimit(100_000, 1.0))
    client = OpenApiClient(sandbox.url, sandbox.api_key, sandbox.secret_key, profile, limiter=limiter)
    try:
        yield client
    finally:
        client.close()


def _book(sandbox) -> tuple:
    return sandbox.engine.open_orders(sandbox.api_key, "btcusdt")


def test_a_daemon_whose_pass_outlived_its_lease_sends_nothing(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "f", sandbox.url, levels=3, every="1h")
    stalled: list[StalledRead] = []

    @contextlib.contextmanager
    def stalling_opener(j):
        with quick_client(sandbox) as exchange:
            stalled.append(StalledRead(exchange))
            yield stalled[-1]

    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        first = Daemon(store, opener=stalling_opener, holder="first", lease_seconds=LEASE_SECONDS, stop_wait=10)
        second = Daemon(
            store,
            opener=lambda j: quick_client(sandbox),
            holder="second",
            lease_seconds=LEASE_SECONDS,
            stop_wait=10,
        )
        first.start([job])  # its first pass starts at once and stalls on the open-order read
        try:
            assert stalled and stalled[0].reading.wait(15)
            second.start([job])
            try:
                assert second.run_pass_now("f") is None, "the lease is still the first daemon's"
                time.sleep(LEASE_SECONDS + 0.2)
                taken = second.run_pass_now("f")
                assert taken is not None and taken.result == "ok"
                assert len(_book(sandbox)) == 6
                stalled[0].release.set()
                assert _wait_for(lambda: any(r.result == "fenced" for r in store.history("f")))
                assert len(_book(sandbox)) == 6, "the stale pass must not place a second ladder"
                fenced = next(r for r in store.history("f") if r.result == "fenced")
                assert "no longer current" in (fenced.error or "")
            finally:
                second.stop()
        finally:
            stalled[0].release.set()
            first.stop()
    assert len(_book(sandbox)) == 6


def test_a_command_pass_past_its_lease_sends_nothing_even_if_no_one_took_over(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "g", sandbox.url, levels=2)
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, open_exchange(job, _env(sandbox)) as exchange:
        with job_lease(store, job.name, "cli-a", ttl_seconds=0.5) as lease:
            time.sleep(0.6)
            report = run_pass(job, exchange, store, apply=True, fence=make_fence(store, lease, 0.1))
        assert report.result == "fenced" and report.failed
        assert _book(sandbox) == ()
        assert store.history("g")[0].result == "fenced"
        assert store.open_in_flight("g") == [], "the lease was checked before the write-ahead wrote anything"


def test_the_fence_needs_the_margin_of_a_whole_request(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "h", sandbox.url, levels=2)
    with (
        StateStore(f"sqlite:///{tmp_path}/state.db") as store,
        open_exchange(job, _env(sandbox)) as exchange,
        job_lease(store, job.name, "cli-a", ttl_seconds=10) as lease,
    ):
        short = run_pass(job, exchange, store, apply=True, fence=make_fence(store, lease, 30))
        assert short.result == "fenced"
        assert _book(sandbox) == ()
        enough = run_pass(job, exchange, store, apply=True, fence=make_fence(store, lease, 5))
        assert enough.result == "ok"
        assert len(_book(sandbox)) == 4


def test_a_fence_of_an_old_epoch_refuses_after_the_same_holder_took_the_lease_again(tmp_path: Path) -> None:
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        first = store.acquire_lease("j", "a", 60)
        assert first is not None
        assert store.release_lease("j", "a")
        again = store.acquire_lease("j", "a", 60)
        assert again == first + 1
        make_fence(store, Lease("j", "a", again), 1)()
        with pytest.raises(LeaseLost, match="no longer current"):
            make_fence(store, Lease("j", "a", first), 1)()


def _wait_for(condition, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()
