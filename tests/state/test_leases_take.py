"""Taking many leases in one statement (a daemon's start): the same rule as ``acquire_lease`` job by job, the same
epochs, and a lease another holder has is never taken. Every test runs on SQLite and, when reachable, PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from rebalancer.state import schema as t
from rebalancer.state.leases import TAKE_CHUNK
from rebalancer.state.store import StateStore

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def _setup(store: StateStore, prefix: str) -> None:
    """Every case of the lease rule, on jobs named ``prefix``-case, as of 20 s."""
    store.acquire_lease(f"{prefix}-mine", "a", 30, at(0))  # held by "a": a renewal
    store.acquire_lease(f"{prefix}-mine-expired", "a", 5, at(0))  # "a"'s, expired: a new acquisition
    store.acquire_lease(f"{prefix}-other", "b", 30, at(0))  # held by "b": left alone
    store.acquire_lease(f"{prefix}-other-expired", "b", 5, at(0))  # "b"'s, expired: taken
    store.acquire_lease(f"{prefix}-released", "b", 30, at(0))
    store.release_lease(f"{prefix}-released", "b")  # released: taken, its epochs continued


CASES = ("mine", "mine-expired", "other", "other-expired", "released", "new")


def _rows(store: StateStore, prefix: str) -> dict[str, tuple[object, ...]]:
    c = t.leases.c
    with store._db.tx(write=False) as conn:
        found = conn.execute(select(c.job, c.holder, c.acquired_at_ms, c.expires_at_ms, c.epoch)).all()
    return {row.job.removeprefix(f"{prefix}-"): tuple(row)[1:] for row in found if row.job.startswith(f"{prefix}-")}


def test_one_statement_takes_as_acquire_lease_takes_job_by_job(store: StateStore) -> None:
    _setup(store, "x")
    _setup(store, "y")
    taken = store.take_leases([f"x-{case}" for case in CASES], "a", 30, at(20))
    one_by_one = {case: store.acquire_lease(f"y-{case}", "a", 30, at(20)) for case in CASES}
    assert {job.removeprefix("x-"): epoch for job, epoch in taken.items()} == {
        case: epoch for case, epoch in one_by_one.items() if epoch is not None
    }
    assert "x-other" not in taken, "a lease another holder has is never taken"
    assert _rows(store, "x") == _rows(store, "y")
    assert store.lease_holder("x-other", at(21)) == "b"
    assert store.lease_is_current("x-other-expired", "a", taken["x-other-expired"], 0, at(21))


def test_the_epochs_taken_are_current_until_the_lease_ends(store: StateStore) -> None:
    taken = store.take_leases(["btc", "eth"], "a", 10, at(0))
    assert taken == {"btc": 1, "eth": 1}
    assert store.lease_is_current("btc", "a", 1, 2, at(7.9))
    assert not store.lease_is_current("btc", "a", 1, 2, at(8))
    assert store.take_leases(["btc", "eth"], "b", 10, at(5)) == {}
    assert store.take_leases(["btc", "eth"], "b", 10, at(10)) == {"btc": 2, "eth": 2}


def test_many_jobs_take_a_few_statements(store: StateStore) -> None:
    jobs = [f"job{i:04d}" for i in range(TAKE_CHUNK + 3)]
    seen: list[str] = []
    hook = lambda *args: seen.append(args[2].lstrip().split(None, 1)[0].upper())  # noqa: E731
    event.listen(store._db._engine, "before_cursor_execute", hook)
    try:
        taken = store.take_leases([*jobs, jobs[0]], "a", 10, at(0))
    finally:
        event.remove(store._db._engine, "before_cursor_execute", hook)
    assert taken == dict.fromkeys(jobs, 1)
    assert [s for s in seen if s != "BEGIN"] == ["INSERT", "INSERT"]
    assert store.take_leases([], "a", 10, at(0)) == {}


@pytest.mark.parametrize(("holder", "ttl"), [("", 10), ("a", 0), ("a", -1)])
def test_bad_arguments(store: StateStore, holder: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        store.take_leases(["btc"], holder, ttl)


def test_racing_stores_never_both_take_one_job(open_store: Callable[[], StateStore]) -> None:
    # Separate StateStore objects on one database, as daemons starting together would hold, on overlapping jobs.
    stores = [open_store() for _ in range(4)]
    jobs = [f"job{i:03d}" for i in range(60)]
    barrier = threading.Barrier(len(stores))
    taken: list[dict[str, int]] = [{} for _ in stores]
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        try:
            barrier.wait()
            taken[index] = stores[index].take_leases(jobs[index * 10 :], f"process-{index}", 30, at(0))
        except BaseException as exc:  # reported to the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    holders = {job: [f"process-{i}" for i, got in enumerate(taken) if job in got] for job in jobs}
    assert all(len(winners) == 1 for winners in holders.values()), holders
    assert all(stores[0].lease_holder(job, at(1)) == winners[0] for job, winners in holders.items())
