"""The cluster's parts in-process: the CLI's refusal on SQLite, job versions between members, the dispatcher's fire
times and due list, the shared rate-limit budget, and lease expiry for retries — on a fresh PostgreSQL database.
"""

from __future__ import annotations

import contextlib
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.cluster.dispatcher import next_due_ms, schedule_of, schedule_text
from rebalancer.cluster.member import Member, cluster_opener
from rebalancer.job import Schedule
from rebalancer.jobfile.load import load_job
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from tests.cluster.conftest import account, job_text, sandbox_job
from tests.reliability.kit import fast_client

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def test_cluster_on_sqlite_is_one_error_line(tmp_path: Path) -> None:
    job = tmp_path / "a.yaml"
    job.write_text(job_text(0, "http://127.0.0.1:9"))
    env = {"REBALANCER_STATE_DIR": str(tmp_path / "state"), "REBALANCER_STATE_URL": ""}
    result = CliRunner().invoke(main, ["run", str(job), "--cluster"], env=env)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --cluster needs a PostgreSQL state store"), result.output
    assert not (tmp_path / "state" / "state.db").exists(), "nothing is created on the refused store"


def test_next_due_keeps_the_phase_for_every_member_and_coalesces_late_passes() -> None:
    every = schedule_text(Schedule(every_seconds=Decimal(10)))
    first = next_due_ms("btc", every, to_ms(T0))
    assert to_ms(T0) < first <= to_ms(T0) + 10_000
    assert next_due_ms("btc", every, first) == first + 10_000, "the next one a whole period later"
    assert next_due_ms("btc", every, first + 35_000) == first + 40_000, "late passes coalesce into one"
    assert next_due_ms("eth", every, to_ms(T0)) != first, "jobs are phased apart by name"
    cron = schedule_text(Schedule(every_seconds=None, cron="*/5 * * * *"))
    assert next_due_ms("btc", cron, to_ms(T0)) == to_ms(T0 + timedelta(minutes=5))
    assert schedule_of(cron) == Schedule(every_seconds=None, cron="*/5 * * * *")


def test_due_jobs_need_a_live_member_with_the_cluster_version_and_skip_paused_and_backing_off(
    cluster_url: str,
) -> None:
    every = schedule_text(Schedule(every_seconds=Decimal(10)))
    with StateStore(cluster_url) as store:
        store.register_member("m1", "h", 1, 2, now=T0)
        for job in ("a", "b", "c", "d"):
            store.define_cluster_job(job, f"v-{job}", every, "m1", replace=False, now=T0)
        store.define_cluster_job("e", "v-e", every, "m2", replace=False, now=T0)  # only a member never seen
        store.set_paused("b", True)
        store.record_cluster_pass("c", "m1", "error", failed=True, backoff_seconds=60, now=T0)
        now = T0 + timedelta(seconds=1)
        assert [j.job for j in store.claim_due_cluster_jobs(5, 0, now)] == ["a", "d"]  # claimed, held for 0 s
        assert store.claim_due_cluster_jobs(5, 0, T0 + timedelta(seconds=30)) == [], "the member's heartbeat is stale"


def test_the_first_member_defines_a_job_and_a_reload_of_an_edited_file_redefines_it(
    cluster_url: str, sandbox, tmp_path: Path
) -> None:
    key, secret = account(0)
    sandbox.engine.add_account(key, secret, {"usdt": 1_000_000, "btc": 20})
    old_file, new_file = tmp_path / "old" / "c000.yaml", tmp_path / "new" / "c000.yaml"
    for path, levels in ((old_file, 2), (new_file, 3)):
        path.parent.mkdir()
        path.write_text(job_text(0, sandbox.url, levels=levels))
    old_job, new_job = load_job(old_file), load_job(new_file)

    @contextlib.contextmanager
    def opener(job):
        client = fast_client(sandbox.url, key, secret)
        try:
            yield client
        finally:
            client.close()

    with StateStore(cluster_url) as store:
        first = Member(store, name="first", opener=opener)
        second = Member(store, name="second", opener=opener)
        first.start([old_job])
        second.start([new_job])
        assert second.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=1) == "version_differs"
        assert sandbox.engine.open_orders(key, "btcusdt") == ()
        assert first.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=2) == "ok"
        assert len(sandbox.engine.open_orders(key, "btcusdt")) == 4
        versions = store.member_job_versions()
        assert versions[("first", "c000")] != versions[("second", "c000")]

        second.reload([new_job])  # unchanged on this member: no redefinition
        assert store.cluster_job("c000").fingerprint == old_job.source_hash
        second.stop()
        restarted = Member(store, name="second", opener=opener)
        restarted.start([old_job])
        restarted.reload([new_job])  # the edit is picked up: the newest edit defines the job
        assert store.cluster_job("c000").fingerprint == new_job.source_hash
        assert first.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=3) == "version_differs"
        assert restarted.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=4) == "ok"
        assert len(sandbox.engine.open_orders(key, "btcusdt")) == 6
        last = store.cluster_job("c000")
        assert last.last_member == "second" and last.last_result == "ok"
        assert {m.member for m in store.members()} == {"first", "second"}
        first.beat()
        restarted.beat()

        env = {"REBALANCER_STATE_URL": cluster_url, "REBALANCER_STATE_DIR": str(tmp_path / "state")}
        rows = json.loads(CliRunner().invoke(main, ["status", "--json"], env=env).stdout)
        schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json").read_text())
        jsonschema.validate(rows, schema, format_checker=jsonschema.FormatChecker())
        row = next(r for r in rows if r["job"] == "c000")
        assert row["cluster"] == {
            "version": new_job.source_hash[:12],
            "defined_by": "second",
            "last_member": "second",
            "last_member_alive": True,
            "last_result": "ok",
            "members_with_other_version": ["first"],
        }
        table = CliRunner().invoke(main, ["status"], env=env).stdout
        assert "MEMBER" in table and "c000: not run by first (their job file differs" in table
        first.stop()
        members = json.loads(CliRunner().invoke(main, ["status", "--members", "--json"], env=env).stdout)
        assert {(m["member"], m["alive"], m["stopped"]) for m in members} == {
            ("first", False, True),
            ("second", True, False),
        }
        assert next(m for m in members if m["member"] == "second")["passes"] == 1
        restarted.stop()


def test_a_pass_that_finds_the_lease_held_comes_due_again_when_it_ends(cluster_url: str, sandbox) -> None:
    every = schedule_text(Schedule(every_seconds=Decimal(60)))
    with StateStore(cluster_url) as store:
        store.register_member("m", "h", 1, 1)
        store.define_cluster_job("j", "v", every, "m", replace=False)
        store.set_next_due({"j": to_ms(datetime.now(UTC)) + 60_000})
        assert store.acquire_lease("j", "frozen#1", 3) is not None
        member = Member(store, name="m")
        member._retry_after_lease("j")
        expiry = store.lease_expiry("j")
        assert expiry is not None
        assert store.cluster_job("j").next_due_ms == to_ms(expiry) + 100


def test_a_shared_rate_limit_holds_across_members(cluster_url: str) -> None:
    with StateStore(cluster_url) as one, StateStore(cluster_url) as other:
        grants = [
            store.take_rate_tokens("k:write", 5, 10, now=T0 + timedelta(seconds=i))[:2]
            for i, store in enumerate([one, other, one, other, one])
        ]
        assert grants == [(1, 0.0)] * 5
        assert other.take_rate_tokens("k:write", 5, 10, now=T0 + timedelta(seconds=5))[:2] == (0, 5.0)
        assert one.take_rate_tokens("k:read", 5, 10, now=T0 + timedelta(seconds=5))[:2] == (1, 0.0), "kinds apart"
        assert one.take_rate_tokens("k:write", 5, 10, now=T0 + timedelta(seconds=10))[:2] == (1, 0.0), "aged out"


def test_members_read_the_balances_whatever_exchange_account_says(cluster_url: str, sandbox, tmp_path: Path) -> None:
    """A job's passes move between members and none knows what the others placed: nothing is carried."""
    key, secret = account(0)
    sandbox.engine.add_account(key, secret, {"usdt": 1000})
    path = tmp_path / "c000.yaml"
    path.write_text(
        job_text(0, sandbox.url).replace(
            "secret_key_env: RB_SECRET_0", "secret_key_env: RB_SECRET_0, account: dedicated"
        )
    )
    job = load_job(path)
    assert job.exchange.account == "dedicated"
    with (
        StateStore(cluster_url) as store,
        cluster_opener(store, {"RB_KEY_0": key, "RB_SECRET_0": secret})(job) as client,
    ):
        assert not client.dedicated  # type: ignore[attr-defined]


def test_a_members_pass_with_no_changes_is_logged_at_debug_as_the_daemons_is(
    cluster_url: str, sandbox, tmp_path: Path, caplog
) -> None:
    path, opener = sandbox_job(sandbox, tmp_path)
    caplog.set_level(logging.DEBUG, logger="rebalancer.cluster")
    with StateStore(cluster_url) as store:
        member = Member(store, name="m", opener=opener)
        member.start([load_job(path)])
        try:
            assert member.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=1) == "ok"
            assert member.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=2) == "no_changes"
        finally:
            member.stop()
    passes = [(r.levelno, r.result) for r in caplog.records if r.getMessage() == "pass"]  # type: ignore[attr-defined]
    assert passes == [(logging.INFO, "ok"), (logging.DEBUG, "no_changes")]
