"""A daemon takes every job's lease at start in one statement: its first passes take none of their own, and a job
whose lease another process holds is left alone, its first pass skipped as any pass of a held job is.

An in-process daemon on jobs due once an hour, against the sandbox over real HTTP; the store's statements watched
through SQLAlchemy's event hooks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import event

from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _book
from tests.daemon.test_lease_keeper import THREE, _jobs
from tests.daemonkit import running


@contextlib.contextmanager
def lease_takes(store: StateStore) -> Iterator[list[str]]:
    """The statements in the block that take leases (the conditional upserts into ``leases``)."""
    seen: list[str] = []

    def hook(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO LEASES"):
            seen.append(statement)

    event.listen(store._db._engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(store._db._engine, "before_cursor_execute", hook)


def test_every_lease_is_taken_in_one_statement_and_a_held_job_is_left_alone(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    jobs = _jobs(tmp_path, job_text, THREE)  # k3 is held by another process
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        assert store.acquire_lease("k3", "another-process", 600) == 1
        with lease_takes(store) as takes, running(store, jobs, lease_seconds=600) as daemon:
            assert wait_for(daemon.ready)
            assert len(takes) == 2, "one for every job at start, one more by the held job's first pass"
            assert store.lease_holder("k1") == daemon.holder and store.lease_holder("k2") == daemon.holder
            assert store.lease_holder("k3") == "another-process"
            assert [len(store.history(name)) for name in ("k1", "k2", "k3")] == [1, 1, 0]
            assert not _book(sandbox, "ethusdt"), "nothing sent for the held job"
            sessions = {s.job.name: s for s in daemon._sessions()}
            assert sessions["k3"].lease is None
            assert all(store.lease_is_current(n, daemon.holder, sessions[n].lease.epoch, 0) for n in ("k1", "k2"))  # type: ignore[union-attr]
