"""The job session: exchange, state store and lease around every applying pass (apply, cancel, run --once, daemon)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from rebalancer.engine.lease import JobSession, command_holder, open_session
from rebalancer.errors import LeaseLost, StateError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, PassResult
from tests.reliability.kit import fast_client, load

ELSEWHERE = "another-host:4242:daemon"  # a holder on another host is never presumed dead


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as opened:
        yield opened


def _opener(sandbox: Any, log: list[str]) -> Any:
    @contextlib.contextmanager
    def opener(job: Job) -> Iterator[Exchange]:
        log.append("open")
        with fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client:
            yield client
        log.append("close")

    return opener


def test_a_session_holds_the_lease_for_its_block_and_releases_it(
    sandbox: Any, store: StateStore, tmp_path: Path
) -> None:
    job = load(tmp_path, "held", sandbox.url)
    log: list[str] = []
    with open_session(job, store, opener=_opener(sandbox, log)) as session:
        assert store.lease_holder(job.name) == command_holder() == session.holder
        report = session.run(Mode.APPLY)
        assert report.result is PassResult.OK and report.mode is Mode.APPLY
    assert store.lease_holder(job.name) is None and log == ["open", "close"]


def test_a_session_releases_the_lease_when_the_block_fails(sandbox: Any, store: StateStore, tmp_path: Path) -> None:
    job = load(tmp_path, "failing", sandbox.url)
    with pytest.raises(RuntimeError), open_session(job, store, opener=_opener(sandbox, [])):
        raise RuntimeError("boom")
    assert store.lease_holder(job.name) is None


def test_another_holder_is_named_and_nothing_is_sent(sandbox: Any, store: StateStore, tmp_path: Path) -> None:
    job = load(tmp_path, "taken", sandbox.url)
    assert store.acquire_lease(job.name, ELSEWHERE, 600)
    with (
        pytest.raises(StateError, match=f"job taken is being reconciled by {ELSEWHERE}"),
        open_session(job, store, opener=_opener(sandbox, [])) as session,
    ):
        session.run(Mode.APPLY)
    assert sandbox.engine.open_orders(sandbox.api_key, job.symbol) == ()
    assert store.lease_holder(job.name) == ELSEWHERE, "the other holder keeps its lease"


def test_cancel_runs_the_empty_ladder(sandbox: Any, store: StateStore, tmp_path: Path) -> None:
    job = load(tmp_path, "cancelled", sandbox.url)
    with open_session(job, store, opener=_opener(sandbox, [])) as session:
        session.run(Mode.APPLY)
        assert sandbox.engine.open_orders(sandbox.api_key, job.symbol)
        report = session.run(Mode.CANCEL, cancel=True)
    assert report.result is PassResult.OK and report.plan.summary["place"] == 0
    assert sandbox.engine.open_orders(sandbox.api_key, job.symbol) == ()


def test_a_pass_is_recorded_at_the_sessions_clock(sandbox: Any, store: StateStore, tmp_path: Path) -> None:
    job = load(tmp_path, "clocked", sandbox.url)
    moment = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    with fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client:
        session = JobSession(job, client, store, holder="me", ttl_seconds=60, wall=lambda: moment)
        assert session.hold()
        session.run(Mode.RUN)  # places the ladder
        session.run(Mode.RUN)  # no changes: recorded too
    assert [r.started_at for r in store.history(job.name)] == [moment, moment]


def test_hold_trusts_a_fresh_lease_and_refresh_asks_the_store(sandbox: Any, store: StateStore, tmp_path: Path) -> None:
    job = load(tmp_path, "renewed", sandbox.url)
    with fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client:
        session = JobSession(job, client, store, holder="me", ttl_seconds=60)
        assert session.hold() and store.lease_holder(job.name) == "me"
        store.release_lease(job.name, "me")
        assert store.acquire_lease(job.name, ELSEWHERE, 60)
        assert session.hold(), "within a third of its lifetime the lease is trusted without a write"
        assert not session.hold(refresh=True)
        assert not session.hold(), "a lost lease is asked for again on the next pass"


def test_a_session_without_its_lease_sends_nothing(sandbox: Any, store: StateStore, tmp_path: Path) -> None:
    job = load(tmp_path, "unheld", sandbox.url)
    with fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client:
        session = JobSession(job, client, store, holder="me", ttl_seconds=60)
        with pytest.raises(LeaseLost, match="no lease held by me"):
            session.run(Mode.RUN)
    assert sandbox.engine.open_orders(sandbox.api_key, job.symbol) == ()
