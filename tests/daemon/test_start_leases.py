"""A daemon takes every job's lease at start in one statement: its first passes take none of their own; a job whose
lease another process holds is left alone, its first pass skipped as any pass of a held job is; a job paused in the
store gets no lease, its first pass skipped as a paused job's.

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


def test_every_lease_is_taken_in_one_statement_and_held_and_paused_jobs_are_left_alone(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    jobs = _jobs(tmp_path, job_text, THREE)  # k2 is paused in the store, k3 held by another process
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        store.set_paused("k2", True)
        assert store.acquire_lease("k3", "another-process", 600) == 1
        with lease_takes(store) as takes, running(store, jobs, lease_seconds=600) as daemon:
            assert wait_for(daemon.ready)
            assert len(takes) == 2, "one for every job at start, one more by the held job's first pass"
            assert store.lease_holder("k1") == daemon.holder and store.lease_holder("k2") is None
            assert store.lease_holder("k3") == "another-process"
            assert [len(store.history(name)) for name in ("k1", "k2", "k3")] == [1, 0, 0]
            assert not _book(sandbox, "ethusdt"), "nothing sent for the held job"
            sessions = {s.job.name: s for s in daemon._sessions()}
            assert sessions["k2"].lease is None and sessions["k3"].lease is None
            assert store.lease_is_current("k1", daemon.holder, sessions["k1"].lease.epoch, 0)  # type: ignore[union-attr]
            assert daemon.metrics.paused.labels("k2")._value.get() == 1
