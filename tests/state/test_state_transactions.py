"""The store's transactions on SQLite: a write takes the write lock at its ``BEGIN``, a read never does.

``Database.tx`` sends ``BEGIN IMMEDIATE`` (writes) or ``BEGIN`` (reads) to the driver itself, so concurrent writers
wait for the lock (for at most the busy timeout) at the start of their transaction rather than failing half-way
when a read turns into a write; a driver error at that ``BEGIN`` is a one-line ``StateError`` like any other
database failure.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import event

from rebalancer.errors import StateError
from rebalancer.state.store import StateStore

DEADLINE = 30.0


def test_a_write_transaction_holds_the_write_lock_from_its_begin_and_a_read_takes_none(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with StateStore(url) as first, StateStore(url, busy_timeout_ms=50) as second:
        with first._db.tx(write=True):  # has written nothing yet: only an immediate BEGIN holds the lock
            assert second.is_paused("j") is False, "a read is not held up by a writer (WAL, deferred BEGIN)"
            with pytest.raises(StateError) as locked:
                second.set_paused("j", True)
            with first._db.tx(write=False):
                pass  # and a read on the writer's own store is no writer either
        assert str(locked.value) == f"state store {second.location}: database is locked"
        second.set_paused("j", True)
        assert first.is_paused("j")


def test_a_read_begins_deferred_and_a_write_immediate(tmp_path: Path) -> None:
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        seen: list[str] = []

        def traced(dbapi_connection, *rest) -> None:  # type: ignore[no-untyped-def]
            dbapi_connection.set_trace_callback(lambda statement: seen.append(statement.split(" (")[0][:15]))

        event.listen(store._db._engine, "checkout", traced)
        assert not store.is_paused("j")
        store.set_paused("j", True)
        assert seen == [
            "BEGIN",
            "SELECT job_flag",
            "COMMIT",
            "PRAGMA busy_tim",  # the write asks for the lock itself, without SQLite's sleeping busy handler
            "BEGIN IMMEDIATE",
            "PRAGMA busy_tim",  # and puts the handler back for its statements
            "INSERT INTO job",
            "COMMIT",
        ], seen


def test_a_writer_waits_out_another_connection_s_write_then_writes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with StateStore(url) as first, StateStore(url) as second:
        holding, release = threading.Event(), threading.Event()

        def hold_the_lock() -> None:
            with first._db.tx(write=True):
                holding.set()
                release.wait(DEADLINE)

        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert holding.wait(DEADLINE)
        written: list[bool] = []
        writer = threading.Thread(target=lambda: written.append(second.set_paused("j", True) is None))
        writer.start()
        assert not written, "the write cannot begin while the other holds the lock"
        release.set()
        holder.join(DEADLINE)
        writer.join(DEADLINE)
        assert written == [True]
        assert first.is_paused("j")


def test_statements_keep_the_busy_timeout_after_the_write_lock_is_asked_for(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    with StateStore(url) as first, StateStore(url, busy_timeout_ms=50) as second:
        with second._db.tx(write=True) as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 50
        with first._db.tx(write=True), pytest.raises(StateError, match="database is locked"):
            second.set_paused("j", True)
        with second._db.tx(write=False) as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 50, "put back after a refused BEGIN too"
