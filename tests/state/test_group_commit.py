"""Group commit on a real SQLite file: writes handed in together share a transaction, each keeps its own outcome.

A first writer holds the lead (its write waits on an event) while others queue behind it; once it commits, the next
in line commits everything queued in one transaction. What each caller gets back, and what another connection then
reads, is checked against what each write did.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Connection, select

from rebalancer.errors import StateError
from rebalancer.state import schema as t
from rebalancer.state.db import Database
from rebalancer.state.group_commit import GroupCommit

DEADLINE = 30.0


class Counted:
    """``Database.tx(write=True)`` that counts the transactions it opened."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.opened = 0

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        self.opened += 1
        with self.db.tx(write=True) as conn:
            yield conn


def _failure(cause: BaseException) -> StateError:
    return StateError(f"state store: {cause}")


def _flag(job: str) -> Callable[[Connection], str]:
    def write(conn: Connection) -> str:
        conn.execute(t.job_flags.insert().values(job=job, paused=True, updated_at_ms=1))
        return job

    return write


def _stored(db: Database) -> set[str]:
    with db.tx(write=False) as conn:
        return set(conn.execute(select(t.job_flags.c.job)).scalars())


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'state.db'}")
    yield database
    database.close()


def _queued_is(queued: Callable[[], int], count: int) -> bool:
    return queued() == count


def _grouped(
    group: GroupCommit, writes: list[Callable[[Connection], Any]], queued: Callable[[], int]
) -> list[tuple[str, Any]]:
    """Run ``writes`` from threads of their own, all queued behind a first write that holds the lead, so that they
    commit as one group; returns each one's ("ok", result) or ("error", exception), in order."""
    release = threading.Event()

    def first(conn: Connection) -> str:
        release.wait(DEADLINE)
        return "first"

    outcomes: list[tuple[str, Any]] = [("none", None)] * len(writes)

    def caller(index: int) -> None:
        try:
            outcomes[index] = ("ok", group.run(writes[index]))
        except Exception as exc:
            outcomes[index] = ("error", exc)

    leader = threading.Thread(target=group.run, args=(first,))
    leader.start()
    _wait_for(lambda: group.leading, "the first write to lead")
    threads = []
    for index in range(len(writes)):
        threads.append(threading.Thread(target=caller, args=(index,)))
        threads[-1].start()
        _wait_for(functools.partial(_queued_is, queued, index + 1), "the writes to queue in order")
    release.set()
    for thread in [leader, *threads]:
        thread.join(DEADLINE)
        assert not thread.is_alive()
    return outcomes


def test_writes_queued_behind_a_commit_share_the_next_transaction(db: Database) -> None:
    counted = Counted(db)
    group = GroupCommit(counted.begin, _failure, largest=32)
    outcomes = _grouped(group, [_flag(f"job-{i}") for i in range(6)], lambda: group.waiting)
    assert outcomes == [("ok", f"job-{i}") for i in range(6)]
    assert counted.opened == 2, "the first write's transaction, then one for the six queued behind it"
    assert _stored(db) == {f"job-{i}" for i in range(6)}
    assert not group.leading and group.waiting == 0


def test_a_group_is_never_larger_than_its_cap(db: Database) -> None:
    counted = Counted(db)
    group = GroupCommit(counted.begin, _failure, largest=2)
    outcomes = _grouped(group, [_flag(f"job-{i}") for i in range(5)], lambda: group.waiting)
    assert [kind for kind, _ in outcomes] == ["ok"] * 5
    assert counted.opened == 1 + 3, "five queued writes in groups of at most two"
    assert _stored(db) == {f"job-{i}" for i in range(5)}


def test_a_write_that_fails_rolls_back_alone_and_only_its_caller_sees_it(db: Database) -> None:
    def half_then_fail(conn: Connection) -> str:
        _flag("half")(conn)
        raise ValueError("no pass with id 7")

    group = GroupCommit(Counted(db).begin, _failure, largest=32)
    outcomes = _grouped(group, [_flag("a"), half_then_fail, _flag("b")], lambda: group.waiting)
    assert outcomes[0] == ("ok", "a") and outcomes[2] == ("ok", "b")
    kind, error = outcomes[1]
    assert kind == "error" and isinstance(error, ValueError) and str(error) == "no pass with id 7"
    assert _stored(db) == {"a", "b"}, "what the failed write did is rolled back to its savepoint"


def test_a_value_the_database_refuses_is_a_state_error_for_its_own_caller_only(db: Database) -> None:
    group = GroupCommit(Counted(db).begin, _failure, largest=32)
    outcomes = _grouped(group, [_flag("a"), _flag("a"), _flag("b")], lambda: group.waiting)
    assert outcomes[0] == ("ok", "a") and outcomes[2] == ("ok", "b")
    kind, error = outcomes[1]
    assert kind == "error" and isinstance(error, StateError) and "UNIQUE constraint failed" in str(error)
    assert _stored(db) == {"a", "b"}


def test_when_sqlite_ends_the_transaction_every_write_of_the_group_fails_and_none_stays(db: Database) -> None:
    def ends_everything(conn: Connection) -> str:
        conn.exec_driver_sql("ROLLBACK")  # as SQLite does itself on a full disk or an I/O error
        raise ValueError("unreachable")

    group = GroupCommit(Counted(db).begin, _failure, largest=32)
    outcomes = _grouped(group, [_flag("a"), ends_everything, _flag("b")], lambda: group.waiting)
    assert [kind for kind, _ in outcomes] == ["error"] * 3
    assert all(isinstance(error, StateError) for _, error in outcomes)
    assert len({id(error) for _, error in outcomes}) == 3, "each caller raises an exception of its own"
    assert _stored(db) == set(), "a write reported done is never one SQLite rolled back"
    assert group.run(_flag("after")) == "after", "the next group starts afresh"


def test_a_transaction_that_cannot_begin_fails_every_write_queued_for_it(db: Database, tmp_path: Path) -> None:
    group = GroupCommit(Counted(db).begin, _failure, largest=32)
    release = threading.Event()
    outcomes: list[object] = []

    def first(conn: Connection) -> str:
        release.wait(DEADLINE)
        (tmp_path / "state.db").rename(tmp_path / "moved.db")  # the store's file replaced under the process
        return "first"

    def caller() -> None:
        try:
            outcomes.append(group.run(_flag("late")))
        except StateError as exc:
            outcomes.append(exc)

    leader = threading.Thread(target=group.run, args=(first,))
    leader.start()
    _wait_for(lambda: group.leading, "the first write to lead")
    callers = [threading.Thread(target=caller) for _ in range(3)]
    for thread in callers:
        thread.start()
    _wait_for(lambda: group.waiting == 3, "three writes to queue")
    release.set()
    for thread in [leader, *callers]:
        thread.join(DEADLINE)
    assert len(outcomes) == 3 and all(isinstance(o, StateError) for o in outcomes)
    assert all("deleted or replaced" in str(o) for o in outcomes)


def test_a_caller_returns_only_once_its_write_is_committed(db: Database, tmp_path: Path) -> None:
    other = Database(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        seen_after: list[set[str]] = []

        def write_then_look(index: int) -> None:
            db.write(_flag(f"job-{index}"))
            seen_after.append({f"job-{index}"} - _stored(other))  # what another connection cannot see yet

        threads = [threading.Thread(target=write_then_look, args=(i,)) for i in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        assert seen_after == [set()] * 16
        assert _stored(other) == {f"job-{i}" for i in range(16)}
    finally:
        other.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fails=st.lists(st.sampled_from(["ok", "raises", "refused"]), min_size=1, max_size=8))
def test_what_stays_is_exactly_the_writes_reported_done(db: Database, fails: list[str]) -> None:
    with db.tx(write=True) as conn:
        conn.execute(t.job_flags.delete())
        conn.execute(t.job_flags.insert().values(job="taken", paused=False, updated_at_ms=0))

    def write(index: int, how: str) -> Callable[[Connection], str]:
        def run(conn: Connection) -> str:
            _flag(f"w{index}")(conn)
            if how == "raises":
                raise ValueError(f"w{index}")
            if how == "refused":
                _flag("taken")(conn)
            return f"w{index}"

        return run

    group = GroupCommit(Counted(db).begin, _failure, largest=3)
    outcomes = _grouped(group, [write(i, how) for i, how in enumerate(fails)], lambda: group.waiting)
    done = {result for kind, result in outcomes if kind == "ok"}
    assert done == {f"w{i}" for i, how in enumerate(fails) if how == "ok"}
    assert _stored(db) == done | {"taken"}
