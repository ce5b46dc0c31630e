"""Tracked order ids, in-flight batches and the pause switch."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from rebalancer.models import Side
from rebalancer.state import schema
from rebalancer.state.passio import close_in_flight_in
from rebalancer.state.records import to_ms
from rebalancer.state.store import Placement, StateStore

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def test_tracked_ids_round_trip(store: StateStore) -> None:
    assert store.tracked_ids("btc") == frozenset()
    store.track("btc", ["504", "505"])
    store.track("btc", ["505", "506"])
    store.track("eth", ["504"])
    assert store.tracked_ids("btc") == {"504", "505", "506"}
    store.untrack("btc", ["504", "999"])
    assert store.tracked_ids("btc") == {"505", "506"}
    assert store.tracked_ids("eth") == {"504"}
    store.track("btc", [])
    store.untrack("btc", [])
    assert store.tracked_ids("btc") == {"505", "506"}


def test_many_ids_at_once(store: StateStore) -> None:
    ids = [str(10_000 + i) for i in range(1500)]
    store.track("btc", ids)
    assert store.tracked_ids("btc") == frozenset(ids)
    store.untrack("btc", ids[:1200])
    assert store.tracked_ids("btc") == frozenset(ids[1200:])


def test_in_flight_lifecycle(store: StateStore) -> None:
    pass_id = store.start_pass("btc", "run", T0)
    placements = [
        (Side.BUY, Decimal("29850.00"), Decimal("0.0100")),
        (Side.SELL, Decimal("30150.5"), Decimal("2")),
    ]
    first = store.begin_in_flight("btc", pass_id, placements, created_at=T0)
    second = store.begin_in_flight("btc", pass_id, [("SELL", "30200.00", "0.0120")], created_at=T0)
    store.begin_in_flight("eth", None, [(Side.BUY, Decimal("1"), Decimal("1"))])

    open_now = store.open_in_flight("btc")
    assert [f.id for f in open_now] == [first, second]
    assert open_now[0].job == "btc"
    assert open_now[0].pass_id == pass_id
    assert open_now[0].created_at == T0
    assert open_now[0].placements == tuple(Placement(*p) for p in placements)
    # Exact decimal text survives: trailing zeros matter when matching the exchange's formatting.
    assert str(open_now[0].placements[0].price) == "29850.00"
    assert open_now[1].placements == (Placement(Side.SELL, Decimal("30200.00"), Decimal("0.0120")),)
    side, price, volume = open_now[1].placements[0]
    assert (side, price, volume) == (Side.SELL, Decimal("30200.00"), Decimal("0.0120"))

    store.end_in_flight(first)
    assert [f.id for f in store.open_in_flight("btc")] == [second]
    store.end_in_flight(first)  # closing twice is harmless
    assert [f.id for f in store.open_in_flight("btc")] == [second]
    assert len(store.open_in_flight("eth")) == 1


def test_end_in_flight_tracks_confirmed_ids(store: StateStore) -> None:
    in_flight = store.begin_in_flight("btc", None, [(Side.BUY, Decimal("1.5"), Decimal("2"))])
    store.track("btc", ["1"])
    store.end_in_flight(in_flight, ["7", "8"])
    assert store.tracked_ids("btc") == {"1", "7", "8"}
    assert store.open_in_flight("btc") == []


def test_in_flight_with_no_placements(store: StateStore) -> None:
    in_flight = store.begin_in_flight("btc", None, [])
    [record] = store.open_in_flight("btc")
    assert record.id == in_flight
    assert record.placements == ()


def test_unknown_in_flight_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="no in-flight"):
        store.end_in_flight(12345)


@pytest.mark.parametrize(
    "bad",
    [
        ("HOLD", "1", "1"),
        (Side.BUY, "abc", "1"),
        (Side.BUY, "1", "0"),
        (Side.BUY, Decimal("-1"), Decimal("1")),
        (Side.BUY, Decimal("Infinity"), Decimal("1")),
    ],
)
def test_bad_placements_refused_before_writing(store: StateStore, bad: tuple[object, ...]) -> None:
    with pytest.raises(ValueError):
        store.begin_in_flight("btc", None, [(Side.BUY, "1", "1"), bad])  # type: ignore[list-item]
    assert store.open_in_flight("btc") == []


def test_float_placements_refused(store: StateStore) -> None:
    with pytest.raises(TypeError, match="float"):
        store.begin_in_flight("btc", None, [(Side.BUY, 0.1, "1")])  # type: ignore[list-item]


def test_pause_switch(store: StateStore) -> None:
    assert not store.is_paused("btc")
    assert store.paused_jobs() == frozenset()
    store.set_paused("btc", True)
    store.set_paused("btc", True)
    store.set_paused("eth", False)
    assert store.is_paused("btc")
    assert not store.is_paused("eth")
    assert store.paused_jobs() == {"btc"}
    store.set_paused("btc", False)
    assert not store.is_paused("btc")
    assert store.paused_jobs() == frozenset()


def test_pause_seen_by_another_store(store: StateStore, open_store: Callable[[], StateStore]) -> None:
    other = open_store()
    store.set_paused("btc", True)
    assert other.is_paused("btc")


_jobs = itertools.count()
_ops = st.lists(
    st.tuples(st.booleans(), st.lists(st.sampled_from(["1", "2", "3", "10", "11", "504"]), max_size=4)),
    max_size=8,
)


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateStore]:
    path: Path = tmp_path_factory.mktemp("prop") / "state.db"
    with StateStore(f"sqlite:///{path}") as store:
        yield store


@settings(max_examples=30, deadline=None)
@given(ops=_ops)
def test_tracking_behaves_like_a_set(sqlite_store: StateStore, ops: list[tuple[bool, list[str]]]) -> None:
    job = f"job{next(_jobs)}"  # a fresh job per example: the module-wide store is shared
    model: set[str] = set()
    for add, ids in ops:
        if add:
            store_call, model_call = sqlite_store.track, model.update
        else:
            store_call, model_call = sqlite_store.untrack, model.difference_update
        store_call(job, ids)
        model_call(ids)
        assert sqlite_store.tracked_ids(job) == model


def test_closing_an_in_flight_record_again_keeps_its_first_closing_time(store: StateStore) -> None:
    in_flight = store.begin_in_flight("btc", None, [(Side.BUY, Decimal("1.5"), Decimal("2"))])
    first, later = datetime(2026, 3, 1, 10, tzinfo=UTC), datetime(2026, 3, 1, 11, tzinfo=UTC)
    closed = select(schema.in_flight.c.closed_at_ms).where(schema.in_flight.c.id == in_flight)
    with store._db.tx(write=True) as conn:
        close_in_flight_in(store._db, conn, in_flight, ["7"], first)
        close_in_flight_in(store._db, conn, in_flight, ["8"], later)  # closed already: the ids are still tracked
        assert conn.execute(closed).scalar_one() == to_ms(first)
    assert store.tracked_ids("btc") == {"7", "8"}
