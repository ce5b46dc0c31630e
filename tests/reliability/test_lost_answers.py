"""A batch whose answer is given up on (client timeout) but which the exchange applies afterwards.

The read-back right after the timeout cannot see the late orders, so they must stay ``unknown`` (never
``rejected``), the tracked job's in-flight record must stay open, and the next pass must adopt the late orders
instead of placing the ladder a second time.

A write held back even longer, past the next pass's read of the book, keeps its levels pending: the next pass does not
place them again, and the pass after the write lands adopts its orders. The ladder never stands twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from rebalancer.engine.runner import run_pass
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.state.store import StateStore
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
        (recorded,) = store.history(job.name, limit=1)
        detail = store.pass_detail(recorded.id)
        assert detail is not None and detail.batches[0].error
        assert '"side":"BUY"' in detail.batches[0].request["mass_place"], "what was sent is recorded with the loss"
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


def _lands_after_the_next_pass(sandbox: object, tmp_path: Path) -> tuple[int, int, bool]:
    """First batch's answer lost and its write held in the sandbox past the next pass; then a third pass.

    Returns the orders standing once both batches landed, after the third pass, and whether all are tracked.
    """
    job = load(tmp_path, "later", sandbox.url, symbol="ethusdt", ownership="tracked", size="0.1")  # type: ignore[attr-defined]
    engine, faults = sandbox.engine, sandbox.faults  # type: ignore[attr-defined]
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, _impatient_client(sandbox) as client:
        faults.endpoints = {"/open/api/mass_replaceV2"}
        faults.latency = 2.0
        lost_at = time.monotonic()
        assert run_pass(job, client, store, apply=True, mode="run").result == "unknown_outcome"
        faults.latency = 0.0  # the first batch is still sleeping in the sandbox; the next one is not
        assert engine.open_orders(sandbox.api_key, "ethusdt") == (), "the first batch landed too early to tell"  # type: ignore[attr-defined]
        run_pass(job, client, store, apply=True, mode="run")

        def late_write_landed() -> bool:
            # The sandbox sleeps 2 s before applying the lost batch; after that its orders stand or never will.
            return time.monotonic() > lost_at + 2.5 and len(engine.open_orders(sandbox.api_key, "ethusdt")) >= 8  # type: ignore[attr-defined]

        deadline = time.monotonic() + 15
        while not late_write_landed() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert late_write_landed()
        peak = len(engine.open_orders(sandbox.api_key, "ethusdt"))  # type: ignore[attr-defined]
        run_pass(job, client, store, apply=True, mode="run")
        book = engine.open_orders(sandbox.api_key, "ethusdt")  # type: ignore[attr-defined]
        return peak, len(book), {o.id for o in book} <= set(store.tracked_ids(job.name))


def test_a_write_that_lands_after_the_next_pass_is_adopted_and_its_surplus_cancelled(sandbox, tmp_path: Path) -> None:
    _, after, all_tracked = _lands_after_the_next_pass(sandbox, tmp_path)
    assert after == 8, f"{after} orders for 8 levels after the late batch was adopted"
    assert all_tracked, "untracked orders of ours are left"


def test_a_write_that_lands_after_the_next_pass_never_doubles_the_ladder(sandbox, tmp_path: Path) -> None:
    peak, _, _ = _lands_after_the_next_pass(sandbox, tmp_path)
    assert peak <= 8, f"{peak} orders stood at once for 8 levels"
