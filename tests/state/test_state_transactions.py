"""The store's transactions on SQLite: a write takes the write lock at its ``BEGIN``, a read never does.

``Database.tx`` sends ``BEGIN IMMEDIATE`` (writes) or ``BEGIN`` (reads) to the driver itself, so concurrent writers
queue on the busy timeout at the start of their transaction rather than failing half-way when a read turns into a
write; a driver error at that ``BEGIN`` is a one-line ``StateError`` like any other database failure.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event

from rebalancer.errors import StateError
from rebalancer.state.store import StateStore


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
