"""The daemon's lease keeper: one statement renews every lease the daemon holds; a lease another process took is not
renewed, and the pass that still believes in it meets its fence; leases outlive their length between passes.

In-process daemons on jobs due once an hour (their first pass at start, then only the passes the test runs), against
the sandbox over real HTTP; statements counted on the store's engine (SQLAlchemy's event hooks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event

from rebalancer.jobfile.load import load_job
from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _book
from tests.daemonkit import running


@contextlib.contextmanager
def statements(store: StateStore) -> Iterator[list[str]]:
    """The first word of every statement the store runs in the block, BEGIN left out."""
    seen: list[str] = []
    engine = store._db._engine

    def hook(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb != "BEGIN":
            seen.append(verb)

    event.listen(engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", hook)


THREE = {
    "k1": {"ownership": "tracked"},
    "k2": {"ownership": "tracked", "size": "0.02"},
    "k3": {"symbol": "ethusdt", "size": "0.5"},
}
"""Three jobs on their own orders: two of one symbol (tracked), one of another."""


def _jobs(tmp_path: Path, job_text: Callable[..., str], texts: dict[str, dict[str, str]]) -> list[Any]:
    jobs = []
    for name, kw in texts.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(job_text(name, every="1h", **kw))
        jobs.append(load_job(path))
    return jobs


def test_one_statement_renews_every_lease_of_the_daemon_and_its_sessions_trust_it(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    jobs = _jobs(tmp_path, job_text, THREE)
    with (
        StateStore(f"sqlite:///{tmp_path}/state.db") as store,
        running(store, jobs, lease_seconds=600) as daemon,
    ):
        assert wait_for(daemon.ready)
        sessions = daemon._sessions()
        assert len(sessions) == 3 and all(s.lease is not None for s in sessions)
        for session in sessions:
            session._renew_at = 0.0  # each session's own renewal is due
        before = {job.name: store.lease_expiry(job.name) for job in jobs}
        with statements(store) as seen:
            assert daemon._keeper.renew() == 3
        assert seen == ["UPDATE"]
        after = {job.name: store.lease_expiry(job.name) for job in jobs}
        assert all(after[name] > before[name] for name in before), (before, after)  # type: ignore[operator]
        with statements(store) as seen:
            assert all(session.hold() for session in sessions)
        assert seen == [], "renewed by the keeper: no session renews its own"


def test_a_lease_taken_by_another_holder_is_not_renewed_and_the_pass_meets_its_fence(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    jobs = _jobs(tmp_path, job_text, {"f": {}})
    book = lambda: _book(sandbox)  # noqa: E731
    with (
        StateStore(f"sqlite:///{tmp_path}/state.db") as store,
        running(store, jobs, lease_seconds=600) as daemon,
    ):
        assert wait_for(lambda: len(book()) == 6 and daemon.ready())
        assert store.release_lease("f", daemon.holder)  # as if it had run out ...
        taken = store.acquire_lease("f", "another-process", 600)  # ... and another process took the job
        expiry = store.lease_expiry("f")
        assert daemon._keeper.renew() == 0
        assert store.lease_holder("f") == "another-process" and store.lease_expiry("f") == expiry
        sandbox.engine.cancel(sandbox.api_key, "btcusdt", int(book()[0].id))  # the next pass would place it back
        report = daemon.run_pass_now("f")
        assert report is not None and report.result == "fenced", "the session still believed in its lease"
        assert len(book()) == 5, "nothing sent"
        assert f"lease epoch {taken - 1} of {daemon.holder}" in (report.error or "")  # type: ignore[operator]
        assert daemon.run_pass_now("f") is None, "then skipped: the job is held by another process"
        assert store.lease_holder("f") == "another-process"


def test_a_daemons_leases_outlive_their_length_between_passes(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    jobs = _jobs(tmp_path, job_text, {"k": {}})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        with running(store, jobs, lease_seconds=6) as daemon:
            assert wait_for(daemon.ready)
            first = store.lease_expiry("k")
            assert first is not None
            assert wait_for(lambda: datetime.now(UTC) > first + timedelta(seconds=1), timeout=30)
            assert store.lease_holder("k") == daemon.holder, "renewed by the keeper, without a pass"
            assert len(store.history("k")) == 1
        assert store.lease_holder("k") is None, "released at the stop"
