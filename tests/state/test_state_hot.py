"""A cluster member's hot statements on PostgreSQL (``rebalancer.state.hot``): straight to the driver, yet as safe
as SQLAlchemy's road: no secret stored, one-line errors with none quoted, a broken connection dropped, a failed
transaction left behind, and the same answers as the SQLAlchemy statements they were compiled from."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, select, text

from rebalancer import logs
from rebalancer.errors import StateError
from rebalancer.state import schema
from rebalancer.state.hot import HotStatement
from rebalancer.state.store import StateStore

SECRET = "canary-hot-8a7b6c5d"
NOW = datetime(2026, 3, 1, 10, 40, tzinfo=UTC)
SCHEDULE = '{"cron": null, "every": "5", "jitter": "0"}'


@pytest.fixture
def pg_store(store: StateStore) -> StateStore:
    """The store of the test, on PostgreSQL only (the hot statements are PostgreSQL's)."""
    if store._db.dialect != "postgresql":
        pytest.skip("the hot statements run on PostgreSQL only")
    return store


def test_a_members_pass_handed_a_secret_everywhere_stores_none_of_it(pg_store: StateStore, store_url: str) -> None:
    logs.register_secret(SECRET)
    job, member = f"job-{SECRET}", f"host:1:{SECRET}"
    pg_store.register_member(member, "host", 1, 4, now=NOW)
    pg_store.define_cluster_job(job, "fp", SCHEDULE, member, replace=False, now=NOW)
    start = pg_store.begin_cluster_pass(job, "fp", f"{member}#1", 9.0, now=NOW)
    assert start.cluster is not None and start.epoch == 1, "the hot read finds the row stored redacted"
    assert pg_store.lease_is_current(job, f"{member}#1", 1, 1.0, now=NOW)
    tokens = pg_store.take_rate_tokens(f"bucket-{SECRET}", 10, 1.0, most=4, hold_seconds=0.5, now=NOW)
    assert tokens.taken == 4
    pg_store.record_cluster_pass(job, member, f"quiet {SECRET}", failed=True, lease_holder=f"{member}#1", now=NOW)
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = [repr(tuple(row)) for table in schema.metadata.sorted_tables for row in conn.execute(select(table))]
    finally:
        engine.dispose()
    assert [row for row in rows if "8a7b6c5d" in row] == []
    assert sum("***" in row for row in rows) >= 5


def test_a_driver_error_is_one_line_with_no_secret(pg_store: StateStore) -> None:
    missing = "canary_hot_table_1f2e3d"
    logs.register_secret(missing)
    with pytest.raises(StateError) as caught, pg_store._db.driver() as pg:
        pg.first(HotStatement(text(f"SELECT * FROM {missing}")), {})
    message = str(caught.value)
    assert "\n" not in message and "1f2e3d" not in message and "***" in message, message


def test_a_connection_that_broke_is_dropped_and_the_next_statement_runs(pg_store: StateStore, store_url: str) -> None:
    backend = HotStatement(text("SELECT pg_backend_pid()"))
    with pg_store._db.driver() as pg:
        first = pg.first(backend, {})
    assert first is not None
    admin = create_engine(store_url)  # another process ends the pooled connection's session
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first[0]})
    finally:
        admin.dispose()
    with pytest.raises(StateError), pg_store._db.driver() as pg:
        for _ in range(5):  # the first use of the pooled connection finds it dead
            pg.first(backend, {})
    with pg_store._db.driver() as pg:
        again = pg.first(backend, {})
    assert again is not None and again[0] != first[0]


def test_a_transaction_whose_block_fails_leaves_nothing_and_the_connection_clean(pg_store: StateStore) -> None:
    insert = HotStatement(schema.rate_grants.insert().values(bucket="b", at_ms=1), before="BEGIN")
    with pytest.raises(RuntimeError), pg_store._db.driver() as pg:
        pg.script(insert, {})
        raise RuntimeError("the caller failed half way")
    with pg_store._db.driver() as pg:
        count = pg.first(HotStatement(text("SELECT count(*) FROM rate_grants")), {})
        autocommit = pg._pg.autocommit
    assert count == (0,) and autocommit is True


def test_a_script_left_half_way_or_failing_leaves_nothing_and_the_connection_clean(
    pg_store: StateStore, store_url: str
) -> None:
    """A rate-token block is two scripts (``BEGIN`` and the bucket's lock, then the block and ``COMMIT``): a caller
    failing between them, or the second failing before its ``COMMIT``, leaves nothing written and the lock let go."""
    import psycopg

    from rebalancer.state.cluster import _hot

    insert = HotStatement(schema.rate_grants.insert().values(bucket="b", at_ms=1))
    with pytest.raises(RuntimeError), pg_store._db.driver() as pg:
        pg.script(_hot().bucket_lock, {"bucket": "b"})
        pg.rows(insert, {})
        raise RuntimeError("the caller failed between its two round trips")
    with pytest.raises(StateError), pg_store._db.driver() as pg:
        pg.script(_hot().bucket_lock, {"bucket": "b"})
        pg.rows(insert, {})
        pg.script(HotStatement(text("SELECT 1 / 0"), after="COMMIT"), {})
    with pg_store._db.driver() as pg:
        count = pg.first(HotStatement(text("SELECT count(*) FROM rate_grants")), {})
        status = pg._pg.info.transaction_status
    assert count == (0,) and status == psycopg.pq.TransactionStatus.IDLE
    admin = create_engine(store_url)
    try:
        with admin.connect() as conn:
            held = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")).scalar()
    finally:
        admin.dispose()
    assert held == 0, "the bucket's lock went with the transaction"
    assert pg_store.take_rate_tokens("b", 10, 1.0, most=4, hold_seconds=0.5, now=NOW).taken == 4


def test_the_hot_pass_start_answers_as_the_sqlalchemy_one(pg_store: StateStore) -> None:
    pg_store.register_member("m", "host", 1, 4, now=NOW)
    pg_store.define_cluster_job("j", "fp", SCHEDULE, "m", replace=False, now=NOW)
    assert pg_store.begin_cluster_pass("j", "other-version", "m#1", 9.0, now=NOW).epoch is None
    first = pg_store.begin_cluster_pass("j", "fp", "m#1", 9.0, now=NOW)
    assert first.epoch == 1 and first.cluster == pg_store.cluster_job("j")
    assert pg_store.begin_cluster_pass("j", "fp", "m#2", 9.0, now=NOW + timedelta(seconds=1)).epoch is None
    assert pg_store.record_cluster_pass("j", "m", "error", failed=True, lease_holder="m#1", now=NOW) == 1
    assert pg_store.begin_cluster_pass("j", "fp", "m#2", 9.0, now=NOW + timedelta(seconds=1)).epoch == 2
    pg_store.set_paused("j", True)
    paused = pg_store.begin_cluster_pass("j", "fp", "m#3", 9.0, now=NOW + timedelta(seconds=2))
    assert paused.paused and paused.epoch is None
    assert pg_store.begin_cluster_pass("gone", "fp", "m#4", 9.0, now=NOW) == (None, False, None)
