"""A batch whose answer is given up on (client timeout) but which the exchange applies afterwards.

The read-back right after the timeout cannot see the late orders, so they must stay ``unknown`` (never
``rejected``), the tracked job's in-flight record must stay open, and the next pass must adopt the late orders
instead of placing the ladder a second time.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.runner import run_pass
from rebalancer.state import StateStore
from tests.reliability.kit import load, max_targets, same_price_duplicates


def _impatient_client(sandbox: object) -> OpenApiClient:
    limiter = KeyLimiter(RateLimit(1000, 1.0), RateLimit(1000, 1.0))
    profile = ExchangeProfile(read_timeout=0.3)
    return OpenApiClient(sandbox.url, sandbox.api_key, sandbox.secret_key, profile, limiter=limiter)  # type: ignore[attr-defined]


@pytest.mark.parametrize("ownership", ["tracked", "symbol"])
def test_a_write_that_lands_after_the_timeout_is_adopted_not_doubled(sandbox, tmp_path: Path, ownership: str) -> None:
    job = load(tmp_path, f"late-{ownership}", sandbox.url, symbol="ethusdt", ownership=ownership, size="0.1")
    engine = sandbox.engine
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, _impatient_client(sandbox) as client:
        sandbox.faults.endpoints = {"/open/api/mass_replaceV2"}
        sandbox.faults.latency = 0.8
        first = run_pass(job, client, store, apply=True, mode="run")
        assert first.execution is not None
        assert first.result == "unknown_outcome"
        assert first.execution.count("unknown", "place") == max_targets(job)
        assert first.execution.count("rejected") == 0, "a placement whose answer was lost is not a rejection"
        deadline = time.monotonic() + 10
        while len(engine.open_orders(sandbox.api_key, "ethusdt")) < max_targets(job) and time.monotonic() < deadline:
            time.sleep(0.05)
        sandbox.faults.latency = 0.0
        second = run_pass(job, client, store, apply=True, mode="run")
        book = engine.open_orders(sandbox.api_key, "ethusdt")
        assert second.result == "no_changes", second.plan.summary
        assert len(book) == max_targets(job) and not same_price_duplicates(book)
        if ownership == "tracked":
            assert {o.id for o in book} == set(store.tracked_ids(job.name))
