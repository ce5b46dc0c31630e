"""Leases: one live holder per job, renewal, expiry (injected clock), release, races between stores."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event

from rebalancer.state.store import StateStore

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
CONTENDERS = 6


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def test_free_lease_is_taken_and_then_held(store: StateStore) -> None:
    assert store.lease_holder("btc", at(0)) is None
    assert store.acquire_lease("btc", "host-a:1", 10, at(0))
    assert store.lease_holder("btc", at(1)) == "host-a:1"
    assert not store.acquire_lease("btc", "host-b:2", 10, at(1))
    assert store.lease_holder("btc", at(1)) == "host-a:1"


def test_leases_are_per_job(store: StateStore) -> None:
    assert store.acquire_lease("btc", "a", 10, at(0))
    assert store.acquire_lease("eth", "b", 10, at(0))
    assert store.lease_holder("btc", at(0)) == "a"
    assert store.lease_holder("eth", at(0)) == "b"


def test_expiry_frees_the_lease(store: StateStore) -> None:
    assert store.acquire_lease("btc", "a", 10, at(0))
    assert store.lease_holder("btc", at(9.999)) == "a"
    assert not store.acquire_lease("btc", "b", 10, at(9.999))
    assert store.lease_holder("btc", at(10)) is None
    assert store.acquire_lease("btc", "b", 10, at(10))
    assert store.lease_holder("btc", at(11)) == "b"
    assert not store.acquire_lease("btc", "a", 10, at(11))


def test_holder_renews(store: StateStore) -> None:
    assert store.acquire_lease("btc", "a", 10, at(0))
    assert store.acquire_lease("btc", "a", 10, at(8))
    # Without the renewal the lease would have expired at 10 s.
    assert store.lease_holder("btc", at(15)) == "a"
    assert not store.acquire_lease("btc", "b", 10, at(15))
    assert store.acquire_lease("btc", "b", 10, at(18))


def test_holder_may_take_back_its_own_expired_lease(store: StateStore) -> None:
    assert store.acquire_lease("btc", "a", 1, at(0))
    assert store.acquire_lease("btc", "a", 1, at(100))
    assert store.lease_holder("btc", at(100.5)) == "a"


def test_release_only_by_holder(store: StateStore) -> None:
    assert store.acquire_lease("btc", "a", 60, at(0))
    assert not store.release_lease("btc", "b")
    assert store.lease_holder("btc", at(1)) == "a"
    assert store.release_lease("btc", "a")
    assert store.lease_holder("btc", at(1)) is None
    assert store.acquire_lease("btc", "b", 60, at(1))
    assert not store.release_lease("btc", "a")


def test_release_leases_frees_every_lease_of_one_holder_and_no_other(store: StateStore) -> None:
    for job in ("btc", "eth", "sol"):
        assert store.acquire_lease(job, "a", 60, at(0))
    assert store.acquire_lease("xrp", "b", 60, at(0))
    assert store.release_leases("a") == 3
    assert [store.lease_holder(job, at(1)) for job in ("btc", "eth", "sol", "xrp")] == [None, None, None, "b"]
    assert store.release_leases("a") == 0
    assert store.acquire_lease("btc", "b", 60, at(1)) == 2  # the epochs carry on


def test_default_clock_is_now(store: StateStore) -> None:
    assert store.acquire_lease("btc", "a", 3600)
    assert store.lease_holder("btc") == "a"
    assert not store.acquire_lease("btc", "b", 3600)


@pytest.mark.parametrize(("holder", "ttl"), [("", 10), ("a", 0), ("a", -1)])
def test_bad_lease_arguments(store: StateStore, holder: str, ttl: float) -> None:
    with pytest.raises(ValueError):
        store.acquire_lease("btc", holder, ttl, at(0))


def _race(stores: list[StateStore], job: str, now: datetime) -> list[str]:
    """Every store tries to take ``job`` at the same moment, each from its own thread; returns the winners."""
    barrier = threading.Barrier(len(stores))
    winners: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def contend(index: int, store: StateStore) -> None:
        holder = f"process-{index}"
        try:
            barrier.wait()
            won = store.acquire_lease(job, holder, 30, now)
        except BaseException as exc:  # reported to the main thread below
            with lock:
                errors.append(exc)
            return
        if won:
            with lock:
                winners.append(holder)

    threads = [threading.Thread(target=contend, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return winners


def test_racing_stores_never_both_win(open_store: Callable[[], StateStore]) -> None:
    # Separate StateStore objects on one database, as separate daemon processes would hold.
    stores = [open_store() for _ in range(CONTENDERS)]
    for round_ in range(4):
        job = f"job{round_}"
        winners = _race(stores, job, at(0))
        assert len(winners) == 1
        assert stores[0].lease_holder(job, at(1)) == winners[0]
        # Before expiry, nobody else gets it (the winner renews, so it is counted once more).
        assert _race(stores, job, at(29)) == winners
        # After expiry, exactly one takes it over.
        takeover = _race(stores, job, at(100))
        assert len(takeover) == 1
        assert stores[-1].lease_holder(job, at(101)) == takeover[0]


def test_epochs_grow_with_every_acquisition_and_stay_on_renewal(store: StateStore) -> None:
    first = store.acquire_lease("btc", "a", 10, at(0))
    assert first is not None
    assert store.acquire_lease("btc", "a", 10, at(5)) == first, "a renewal keeps the epoch"
    assert store.acquire_lease("btc", "b", 10, at(15)) == first + 1, "a takeover after expiry raises it"
    assert store.release_lease("btc", "b")
    assert store.lease_holder("btc", at(15)) is None
    assert store.acquire_lease("btc", "a", 10, at(16)) == first + 2, "a release never resets the epochs"
    assert store.acquire_lease("btc", "a", 10, at(30)) == first + 3, "retaking one's own expired lease raises it"


def test_a_lease_is_current_only_for_its_holder_and_epoch_with_the_margin_left(store: StateStore) -> None:
    epoch = store.acquire_lease("btc", "a", 10, at(0))
    assert epoch is not None
    assert store.lease_is_current("btc", "a", epoch, 2, at(7.9))
    assert not store.lease_is_current("btc", "a", epoch, 2, at(8)), "less than the margin left"
    assert not store.lease_is_current("btc", "a", epoch - 1, 0, at(1)), "an older epoch"
    assert not store.lease_is_current("btc", "b", epoch, 0, at(1)), "another holder"
    store.acquire_lease("btc", "b", 10, at(11))
    assert not store.lease_is_current("btc", "a", epoch, 0, at(11))


def test_one_update_renews_every_unexpired_lease_of_a_holder_and_nothing_else(store: StateStore) -> None:
    epochs = {job: store.acquire_lease(job, "a", 10, at(0)) for job in ("btc", "eth", "sol", "ada")}
    assert store.acquire_lease("xrp", "b", 10, at(0))
    assert store.release_lease("sol", "a")
    assert store.acquire_lease("sol", "b", 10, at(1)), "taken by another holder: a new epoch"
    assert store.acquire_lease("dot", "a", 1, at(0)), "expired by the time of the renewal"
    statements: list[str] = []
    engine = store._db._engine
    hook = lambda *args: statements.append(args[2].lstrip().split(None, 1)[0].upper())  # noqa: E731
    event.listen(engine, "before_cursor_execute", hook)
    try:
        renewed = store.renew_leases("a", 10, busy=["ada"], now=at(8))
    finally:
        event.remove(engine, "before_cursor_execute", hook)
    assert renewed == {"btc": epochs["btc"], "eth": epochs["eth"]}, "epochs kept; busy, lost, expired left out"
    assert [s for s in statements if s != "BEGIN"] == ["UPDATE"]
    assert store.lease_holder("btc", at(17.9)) == "a" and store.lease_holder("eth", at(17.9)) == "a"
    assert store.lease_holder("ada", at(10)) is None, "a busy job's lease runs out as it stood"
    assert store.lease_holder("sol", at(9.5)) == "b" and store.lease_holder("xrp", at(9.5)) == "b", "untouched"
    assert store.lease_holder("dot", at(8)) is None
    assert store.lease_is_current("btc", "a", epochs["btc"] or 0, 0, at(17.9))
    assert store.renew_leases("c", 10, now=at(8)) == {}
    with pytest.raises(ValueError):
        store.renew_leases("a", 0)
