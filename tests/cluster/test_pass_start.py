"""A cluster pass's own transactions: its start (version, pause switch and lease in one), its end (the pass's
cluster record and the lease let go in one), and the dispatcher's one statement for every due pass, on a fresh
PostgreSQL database and the test sandbox.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

import rebalancer.cluster.app as app_module
from rebalancer.cluster.app import QUEUE_SCHEMA, RECONCILE, conninfo, ensure_queue_schema, make_app
from rebalancer.cluster.dispatcher import dispatch_due, schedule_text
from rebalancer.cluster.member import Member
from rebalancer.job import Schedule
from rebalancer.jobfile.load import load_job
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from rebalancer.vocab import Skip
from tests.cluster.conftest import account, sandbox_job, wait_for

EVERY = schedule_text(Schedule(every_seconds=Decimal(10)))


def test_a_pass_starts_only_on_the_clusters_version_unpaused_and_with_the_lease(cluster_url: str) -> None:
    with StateStore(cluster_url) as store:
        assert store.begin_cluster_pass("j", "v1", "m#1", 9) == (None, False, None), "unknown to the cluster"
        store.register_member("m", "h", 1, 1)
        store.define_cluster_job("j", "v1", EVERY, "m", replace=False)
        other = store.begin_cluster_pass("j", "v0", "m#1", 9)
        assert other.cluster is not None and other.cluster.fingerprint == "v1" and other.epoch is None
        assert store.lease_holder("j") is None, "no lease for a version the cluster does not run"
        store.set_paused("j", True)
        paused = store.begin_cluster_pass("j", "v1", "m#1", 9)
        assert paused.paused and paused.epoch is None and store.lease_holder("j") is None
        store.set_paused("j", False)
        assert store.begin_cluster_pass("j", "v1", "m#2", 9).epoch == 1
        assert store.lease_holder("j") == "m#2"
        held = store.begin_cluster_pass("j", "v1", "m#3", 9)
        assert held.cluster is not None and not held.paused and held.epoch is None, "held by the pass before"


def test_a_beat_renews_every_running_pass_lease_and_the_heartbeat_in_one_statement(cluster_url: str) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    with StateStore(cluster_url) as store:
        store.register_member("m", "h", 1, 1, now=t0)
        for job in ("a", "b", "c", "d"):
            store.define_cluster_job(job, "v1", EVERY, "m", replace=False)
        assert store.acquire_lease("a", "m#1", 10, now=t0) == 1
        assert store.acquire_lease("b", "m#2", 10, now=t0) == 1
        assert store.acquire_lease("c", "m#3", 2, now=t0) == 1
        assert store.acquire_lease("d", "other#4", 10, now=t0) == 1
        later = t0 + timedelta(seconds=5)
        renewed = store.member_beat(
            "m",
            [("a", "m#1", 1, 20), ("b", "m#2", 7, 20), ("c", "m#3", 1, 20), ("d", "m#4", 1, 20)],
            now=later,
        )
        assert renewed == {"m#1"}, "only a lease its holder still holds, under its epoch, unexpired, is renewed"
        assert store.lease_expiry("a") == later + timedelta(seconds=20)
        assert store.lease_expiry("b") == t0 + timedelta(seconds=10), "another epoch: not renewed"
        assert store.lease_expiry("d") == t0 + timedelta(seconds=10), "another holder's lease is not touched"
        assert store.acquire_lease("c", "x#5", 10, now=later) == 2, "the expired lease stays expired"
        assert [r.heartbeat_at for r in store.members()] == [later], "the heartbeat rides along"
        assert store.member_beat("m", now=later + timedelta(seconds=1)) == set()
        assert [r.heartbeat_at for r in store.members()] == [later + timedelta(seconds=1)]


def test_a_pass_record_lets_its_lease_go_in_the_same_transaction(cluster_url: str) -> None:
    with StateStore(cluster_url) as store:
        store.register_member("m", "h", 1, 1)
        store.define_cluster_job("j", "v1", EVERY, "m", replace=False)
        assert store.begin_cluster_pass("j", "v1", "m#1", 9).epoch == 1
        store.record_cluster_pass("j", "m", "ok", failed=False, lease_holder="m#2")
        assert store.lease_holder("j") == "m#1", "another holder's lease is not touched"
        assert store.record_cluster_pass("j", "m", "fenced", failed=True, lease_holder="m#1") == 1, "failures"
        assert store.lease_holder("j") is None
        assert [(r.passes, r.fenced) for r in store.members()] == [(2, 1)], "the member's counts, in the same statement"
        assert store.begin_cluster_pass("j", "v1", "m#3", 9).epoch == 2, "epochs go on"


class CrashingClient:
    """The sandbox's client, except that its ticker read raises a plain ``ValueError`` (a defect, not a failure
    the pass knows): the pass raises past the scheduler's accounting."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def ticker(self, symbol: str) -> Any:
        raise ValueError("a defect")


@pytest.mark.parametrize("crash", [False, True])
def test_a_members_pass_leaves_the_lease_free_however_it_ends(
    cluster_url: str, sandbox, tmp_path: Path, crash: bool
) -> None:
    path, opener = sandbox_job(sandbox, tmp_path, wrap=CrashingClient if crash else lambda client: client)
    with StateStore(cluster_url) as store:
        member = Member(store, name="m", opener=opener)
        member.start([load_job(path)])
        try:
            if crash:
                with pytest.raises(ValueError):
                    member.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=1)
            else:
                assert member.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=1) == "ok"
            assert store.lease_holder("c000") is None
            assert member.plug.leases() == []
            cluster = store.cluster_job("c000")
            assert cluster is not None and (cluster.last_member is None) is crash, "a crashed pass is not recorded"
        finally:
            member.stop()


class PausedMeanwhile:
    """The sandbox's client, except that its ticker read first commits the job's pause through ``other``: a pause
    that lands after the pass's start transaction and before its store read."""

    def __init__(self, client: Any, other: StateStore) -> None:
        self._client = client
        self._other = other

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def ticker(self, symbol: str) -> Any:
        self._other.set_paused("c000", True)
        return self._client.ticker(symbol)


def test_a_pause_committed_after_a_members_pass_started_stops_it_before_any_write(
    cluster_url: str, sandbox, tmp_path: Path
) -> None:
    with StateStore(cluster_url) as store, StateStore(cluster_url) as other:
        path, opener = sandbox_job(sandbox, tmp_path, wrap=lambda client: PausedMeanwhile(client, other))
        member = Member(store, name="m", opener=opener)
        member.start([load_job(path)])
        try:
            assert member.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=1) == Skip.PAUSED
            assert sandbox.engine.open_orders(account(0)[0], "btcusdt") == (), "the pass would have placed its ladder"
            assert store.history("c000") == [] and store.open_in_flight("c000") == []
            assert store.lease_holder("c000") is None and member.plug.leases() == []
            cluster = store.cluster_job("c000")
            assert cluster is not None and cluster.last_member is None, "skipped as a pause found at the start is"
        finally:
            member.stop()


def test_dispatch_sends_every_due_pass_in_one_go_and_one_by_one_when_one_still_waits(cluster_url: str) -> None:
    ensure_queue_schema(cluster_url)
    app = make_app(cluster_url)
    reconcile = app.tasks[RECONCILE]
    now_ms = to_ms(datetime.now(UTC))
    with StateStore(cluster_url) as store:
        store.register_member("m", "h", 1, 1)
        for job in ("a", "b", "c"):
            store.define_cluster_job(job, "v", EVERY, "m", replace=False)
        store.set_next_due({"b": now_ms + 60_000, "c": now_ms + 60_000})

        async def dispatch_twice() -> tuple[int, int]:
            async with app.open_async():
                first = await dispatch_due(store, reconcile)
                store.set_next_due({"a": now_ms, "b": now_ms, "c": now_ms})
                return first, await dispatch_due(store, reconcile)

        assert asyncio.run(dispatch_twice()) == (1, 2), "a's pass still waits: b and c go one by one"
        assert all(job.next_due_ms > now_ms for job in store.cluster_jobs()), "every due time moved on"
    with psycopg.connect(conninfo(cluster_url)) as conn:
        rows = conn.execute(f"SELECT args->>'job' FROM {QUEUE_SCHEMA}.procrastinate_jobs").fetchall()
    assert sorted(r[0] for r in rows) == ["a", "b", "c"]


def test_a_due_pass_is_claimed_by_one_member_however_many_dispatch_at_once(cluster_url: str) -> None:
    """Every member dispatches on its own phase: the claim moves the due time in the transaction that read it, and a
    member reading at the same moment waits for its row locks, then finds nothing due. Two claimers are made to read
    at the same moment by a third session holding the rows' locks until both wait for them."""
    from concurrent.futures import ThreadPoolExecutor

    now = datetime.now(UTC)
    jobs = [f"j{i:02d}" for i in range(30)]
    with StateStore(cluster_url) as store, psycopg.connect(conninfo(cluster_url)) as blocker:
        store.register_member("m", "h", 1, 1)
        for job in jobs:
            store.define_cluster_job(job, "v", EVERY, "m", replace=False)
        store.set_next_due(dict.fromkeys(jobs, to_ms(now) - 500))
        blocker.execute("SELECT job FROM cluster_jobs FOR UPDATE")
        with ThreadPoolExecutor(2) as pool:
            pending = [pool.submit(store.claim_due_cluster_jobs, 5, 2, now) for _ in range(2)]
            waiting = (
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            with psycopg.connect(conninfo(cluster_url), autocommit=True) as watcher:
                both_wait = wait_for(lambda: watcher.execute(waiting).fetchone() == (2,), 30)
            assert both_wait, "both claimers wait for the rows' locks"
            blocker.commit()
            claims = [future.result(timeout=30) for future in pending]
        claimed = [job.job for claim in claims for job in claim]
        assert sorted(claimed) == jobs, "each due job claimed exactly once"
        assert all(job.next_due_ms == to_ms(now) - 500 for claim in claims for job in claim), "with its due time"
        assert {job.next_due_ms for job in store.cluster_jobs()} == {to_ms(now) + 2_000}, "held for the claim"
        assert store.claim_due_cluster_jobs(5, 2, now + timedelta(seconds=1)) == []
        again = store.claim_due_cluster_jobs(5, 2, now + timedelta(seconds=3))
        assert len(again) == 30, "a claim never moved on (its member died) is due again after the hold"


def test_a_dispatch_that_cannot_queue_its_passes_leaves_the_jobs_due(cluster_url: str) -> None:
    ensure_queue_schema(cluster_url)
    app = make_app(cluster_url)  # never opened: deferring fails as with the queue's database away
    now_ms = to_ms(datetime.now(UTC))
    with StateStore(cluster_url) as store:
        store.register_member("m", "h", 1, 1)
        store.define_cluster_job("a", "v", EVERY, "m", replace=False)
        store.set_next_due({"a": now_ms - 100})
        with pytest.raises(Exception):  # noqa: B017 - whichever error procrastinate raises for a closed app
            asyncio.run(dispatch_due(store, app.tasks[RECONCILE]))
        assert [job.next_due_ms for job in store.cluster_jobs()] == [now_ms - 100], "due again, not held"


def test_the_queue_pool_checks_a_connection_before_use_only_after_it_sat_idle(cluster_url: str, monkeypatch) -> None:
    """Within ``IDLE_CHECK_SECONDS`` of its last handout a connection is handed out unchecked (a dead one fails its
    query); past it, or at its first handout, a dead one is noticed and replaced before use."""

    def kill(pid: int) -> None:
        with psycopg.connect(conninfo(cluster_url), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            gone = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
            assert wait_for(lambda: admin.execute(gone, (pid,)).fetchone() == (0,), 30)

    async def scenario() -> None:
        pool = app_module._queue_pool(conninfo=conninfo(cluster_url), min_size=1, max_size=1, open=False)
        await pool.open(wait=True)
        try:
            monkeypatch.setattr(app_module, "IDLE_CHECK_SECONDS", 3600.0)
            async with pool.connection() as conn:
                first = conn.info.backend_pid
            kill(first)
            with pytest.raises(psycopg.OperationalError):
                async with pool.connection() as conn:
                    await conn.execute("SELECT 1")
            async with pool.connection() as conn:
                second = conn.info.backend_pid
            kill(second)
            monkeypatch.setattr(app_module, "IDLE_CHECK_SECONDS", -1.0)
            async with pool.connection() as conn:
                assert (await (await conn.execute("SELECT 1")).fetchone()) == (1,)
                assert conn.info.backend_pid not in (first, second)
        finally:
            await pool.close()

    asyncio.run(scenario())


def test_the_queues_connections_run_each_query_as_its_own_transaction(cluster_url: str) -> None:
    async def autocommit() -> bool:
        app = make_app(cluster_url)
        async with app.open_async(), app.connector.pool.connection() as conn:
            return bool(conn.autocommit)

    assert asyncio.run(autocommit()), "no BEGIN and COMMIT round trips around procrastinate's one-statement queries"
