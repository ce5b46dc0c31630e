"""Passes, batches, per-order results and history; the store itself (schema, errors, secrets)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select

from rebalancer.errors import StateError
from rebalancer.models import BatchAnswer, PriceSource, ResultGroup, Side
from rebalancer.state import schema as state_schema
from rebalancer.state.records import dump_json, load_json
from rebalancer.state.store import OrderResult, StateStore
from rebalancer.vocab import Mode, PassResult, WakeReason

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _finish(store: StateStore, pass_id: int, result: str = "ok", **extra: object) -> None:
    fields: dict[str, object] = {"summary": {"place": 1, "cancel": 0, "keep": 2}, "duration_ms": 12}
    fields.update(extra)
    store.finish_pass(pass_id, result=result, **fields)  # type: ignore[arg-type]


def test_pass_round_trip(store: StateStore) -> None:
    pass_id = store.start_pass("btc", "apply", T0)
    store.finish_pass(
        pass_id,
        result="rejected",
        summary={"place": 3, "cancel": 1},
        warnings=["level buy[9] dropped: below minimum volume"],
        error="1 order rejected",
        duration_ms=250,
        reference_price="30000.50",
        fingerprint="sha256:abc",
    )
    [record] = store.history()
    assert record.id == pass_id
    assert (record.job, record.mode, record.result) == ("btc", "apply", "rejected")
    assert record.started_at == T0
    assert record.started_at.tzinfo is not None
    assert record.summary == {"place": 3, "cancel": 1}
    assert record.warnings == ("level buy[9] dropped: below minimum volume",)
    assert record.error == "1 order rejected"
    assert record.duration_ms == 250
    assert record.reference_price == "30000.50"
    assert record.fingerprint == "sha256:abc"
    assert record.batch_count == 0


def test_unfinished_pass_has_no_result(store: StateStore) -> None:
    store.start_pass("btc", "run", T0)
    [record] = store.history("btc")
    assert record.result is None
    assert record.duration_ms is None
    assert record.summary == {}


def test_history_newest_first_with_limit_and_job(store: StateStore) -> None:
    ids = {}
    # Started out of insertion order on purpose: history sorts by start time.
    for minute, job in [(5, "a"), (1, "b"), (3, "a"), (4, "b"), (2, "a")]:
        ids[(minute, job)] = store.start_pass(job, "run", T0 + timedelta(minutes=minute))
    all_minutes = [int((r.started_at - T0) / timedelta(minutes=1)) for r in store.history()]
    assert all_minutes == [5, 4, 3, 2, 1]
    assert [r.id for r in store.history(limit=2)] == [ids[(5, "a")], ids[(4, "b")]]
    assert [r.id for r in store.history("a")] == [ids[(5, "a")], ids[(3, "a")], ids[(2, "a")]]
    assert [r.id for r in store.history("a", limit=1)] == [ids[(5, "a")]]
    assert store.history("nobody") == []


def test_history_ties_break_by_id(store: StateStore) -> None:
    first = store.start_pass("a", "run", T0)
    second = store.start_pass("a", "run", T0)
    assert [r.id for r in store.history()] == [second, first]


def test_batches_and_results_in_detail(store: StateStore) -> None:
    pass_id = store.start_pass("btc", "apply", T0)
    answer = BatchAnswer(place=(ResultGroup("0", "Success", ("504", "505")),), cancel=())
    store.record_batch(pass_id, 0, {"symbol": "btcusdt", "mass_cancel": "[1,2]"}, answer, None)
    store.record_batch(pass_id, 1, {"symbol": "btcusdt"}, None, "connection reset after sending")
    results = [
        OrderResult("cancel", "BUY", "29800.00", "0.0100", "1", "cancelled", "0", "Success"),
        OrderResult("place", Side.SELL, "30150.00", "0.0100", "504", "placed", "0", "Success"),
        OrderResult("place", "BUY", "29850.00", "0.0100", None, "rejected", "8", "balance"),
    ]
    store.record_results(pass_id, results[:2])
    store.record_results(pass_id, results[2:])
    _finish(store, pass_id)

    detail = store.pass_detail(pass_id)
    assert detail is not None
    assert detail.record.batch_count == 2
    assert [b.index for b in detail.batches] == [0, 1]
    assert detail.batches[0].request == {"symbol": "btcusdt", "mass_cancel": "[1,2]"}
    assert detail.batches[0].answer == {
        "place": [{"code": "0", "message": "Success", "order_ids": ["504", "505"]}],
        "cancel": [],
        "request": None,
    }
    assert detail.batches[0].error is None
    assert detail.batches[1].answer is None
    assert detail.batches[1].error == "connection reset after sending"
    assert detail.results == tuple(results)
    assert detail.results[1].side == "SELL"
    assert store.history()[0].batch_count == 2


def test_detail_to_dict_is_json_ready(store: StateStore) -> None:
    pass_id = store.start_pass("btc", "apply", T0)
    store.record_batch(pass_id, 0, {"symbol": "btcusdt"}, {"price": Decimal("6400.10")}, None)
    store.record_results(pass_id, [OrderResult("place", "BUY", "6400.10", "1", "9", "placed")])
    _finish(store, pass_id)
    detail = store.pass_detail(pass_id)
    assert detail is not None
    document = load_json(dump_json(detail.to_dict()))
    assert document["batches"][0]["answer"] == {"price": "6400.10"}
    assert document["results"][0]["order_id"] == "9"
    assert document["started_at"] == T0.isoformat()
    assert store.pass_detail(pass_id + 1000) is None


def test_decimal_answers_stored_as_text(store: StateStore) -> None:
    pass_id = store.start_pass("btc", "apply", T0)
    store.record_batch(pass_id, 0, {"symbol": "btcusdt"}, {"volume": Decimal("1E-8"), "n": 3}, None)
    detail = store.pass_detail(pass_id)
    assert detail is not None
    assert detail.batches[0].answer == {"volume": "0.00000001", "n": 3}


def test_credentials_never_stored(store: StateStore, store_url: str) -> None:
    secret, signature = "SECRET-KEY-3f9a", "SIGNATURE-77c1"
    pass_id = store.start_pass("btc", "apply", T0)
    request = {
        "api_key": secret,
        "Sign": signature,
        "secret_key": secret,
        "symbol": "btcusdt",
        "time": "1700000000000",
    }
    store.record_batch(pass_id, 0, request, None, None)
    detail = store.pass_detail(pass_id)
    assert detail is not None
    assert detail.batches[0].request == {"symbol": "btcusdt", "time": "1700000000000"}
    # Read every row of every table back, bypassing the store.
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            dump = repr([conn.execute(select(table)).all() for table in state_schema.metadata.sorted_tables])
    finally:
        engine.dispose()
    assert "btcusdt" in dump
    assert secret not in dump
    assert signature not in dump


def test_finish_checks_its_input(store: StateStore) -> None:
    pass_id = store.start_pass("btc", "apply", T0)
    with pytest.raises(ValueError, match="pass result"):
        _finish(store, pass_id, result="great")
    with pytest.raises(ValueError, match="no pass"):
        _finish(store, pass_id + 1)
    assert store.history()[0].result is None


def test_naive_times_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        store.start_pass("btc", "apply", datetime(2026, 1, 1))


def test_start_pass_needs_job_and_mode(store: StateStore) -> None:
    with pytest.raises(ValueError):
        store.start_pass("", "apply", T0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("replace", "BUY", "1", "1", None, "placed"), "action"),
        (("place", "BUY", "1", "1", None, "done"), "status"),
        (("place", "LONG", "1", "1", None, "placed"), "LONG"),
        (("place", "BUY", "1.2.3", "1", None, "placed"), "price"),
        (("place", "BUY", "1", "NaN", None, "placed"), "volume"),
    ],
)
def test_order_result_checks_itself(fields: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OrderResult(*fields)  # type: ignore[arg-type]


def test_data_survives_reopening(open_store: Callable[[], StateStore]) -> None:
    first = open_store()
    pass_id = first.start_pass("btc", "apply", T0)
    first.close()
    second = open_store()
    assert [r.id for r in second.history()] == [pass_id]


def test_newer_schema_refused(open_store: Callable[[], StateStore], store_url: str) -> None:
    open_store().close()
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(state_schema.schema_version.update().values(version=state_schema.SCHEMA_VERSION + 1))
    finally:
        engine.dispose()
    with pytest.raises(StateError, match="schema version"):
        open_store()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "state.db"
    with StateStore(f"sqlite:///{path}") as store:
        store.start_pass("btc", "apply", T0)
        connection = sqlite3.connect(path)
        try:
            assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        finally:
            connection.close()


def test_unsupported_database_refused() -> None:
    with pytest.raises(StateError, match="only SQLite and PostgreSQL"):
        StateStore("mysql://user:hunter2@localhost/db")


def test_unreachable_database_is_state_error_without_password() -> None:
    url = "postgresql+psycopg://rb:hunter2@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(StateError) as caught:
        StateStore(url)
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_repr_hides_password(tmp_path: Path) -> None:
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        assert str(tmp_path) in repr(store)


@settings(max_examples=40, deadline=None)
@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_json_keeps_decimals_exact(value: Decimal) -> None:
    text = load_json(dump_json({"price": value}))["price"]
    assert isinstance(text, str)
    assert "E" not in text.upper()
    assert Decimal(text) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({"keep": 3, "place": 0}, '{"keep":3,"place":0}'),
        ([Side.BUY, WakeReason.TIMER, "BUY", 1, True, None], '["BUY","timer","BUY",1,true,null]'),
        ({"mode": Mode.RUN, 2: (Decimal("1.50"), {"x": [PassResult.OK]})}, '{"2":["1.50",{"x":["ok"]}],"mode":"run"}'),
        (ResultGroup("0", "ok", ("1", "2")), '{"code":"0","message":"ok","order_ids":["1","2"]}'),
        (T0, '"2026-11-25T09:00:00+00:00"'),
        ({"in": [{"deep": [Decimal("1E-8")]}]}, '{"in":[{"deep":["0.00000001"]}]}'),
    ],
)
def test_json_renders_enums_decimals_and_containers_at_any_depth(value: object, text: str) -> None:
    assert dump_json(value) == text


def test_a_version_1_store_gains_lease_epochs(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO schema_version VALUES (1)")
            conn.exec_driver_sql(
                "CREATE TABLE leases (job VARCHAR(200) PRIMARY KEY, holder VARCHAR(200) NOT NULL, "
                "acquired_at_ms BIGINT NOT NULL, expires_at_ms BIGINT NOT NULL)"
            )
            conn.exec_driver_sql("INSERT INTO leases VALUES ('btc', 'old', 0, 1)")
    finally:
        engine.dispose()
    with StateStore(url) as store:
        assert store.acquire_lease("btc", "new", 10) == 1
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            assert conn.exec_driver_sql("SELECT version FROM schema_version").scalar() == state_schema.SCHEMA_VERSION
    finally:
        engine.dispose()


def test_a_version_2_store_gains_the_volume_of_watched_orders(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'v2.db'}"
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO schema_version VALUES (2)")
            conn.exec_driver_sql(
                "CREATE TABLE watched_orders (job VARCHAR(200) NOT NULL, order_id VARCHAR(64) NOT NULL, "
                "side VARCHAR(8) NOT NULL, price VARCHAR(64) NOT NULL, deal_volume VARCHAR(64) NOT NULL, "
                "level VARCHAR(64), seen_at_ms BIGINT NOT NULL, PRIMARY KEY (job, order_id))"
            )
            conn.exec_driver_sql("INSERT INTO watched_orders VALUES ('btc', '7', 'BUY', '100', '0.1', 'buy[0]', 0)")
    finally:
        engine.dispose()
    with StateStore(url) as store:
        (seen,) = store.watched_orders("btc").values()
        assert seen.volume is None and seen.deal_volume == Decimal("0.1"), "a row from before: volume unknown"
        store.record_fills("btc", None, (), [replace(seen, volume=Decimal("0.5"))], (), T0)
        assert store.watched_orders("btc")["7"].volume == Decimal("0.5")


def test_a_version_3_store_with_passes_gains_wake_and_prices(
    open_store: Callable[[], StateStore], store_url: str
) -> None:
    """A store made before passes kept why they ran: its passes read back with both unknown, new ones keep them."""
    first = open_store()
    old_id = first.start_pass("btc", "run", T0)
    _finish(first, old_id)
    first.close()
    engine = create_engine(store_url)  # back to version 3: the passes table as it was, with its row
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE passes DROP COLUMN wake")
            conn.exec_driver_sql("ALTER TABLE passes DROP COLUMN prices")
            conn.execute(state_schema.schema_version.update().values(version=3))
    finally:
        engine.dispose()
    store = open_store()
    (old,) = store.history("btc")
    assert (old.id, old.result, old.wake, old.prices) == (old_id, "ok", None, None)
    assert old.to_dict()["wake"] is None and old.to_dict()["prices"] is None
    later = T0 + timedelta(minutes=1)
    new_id = store.record_pass(
        "btc", "run", later, result="ok", summary={}, wake=WakeReason.TRADE, prices=PriceSource.STREAM
    )
    rows = [(r.id, r.wake, r.prices) for r in store.history("btc")]
    assert rows == [(new_id, "trade", "stream"), (old_id, None, None)]
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(select(state_schema.schema_version.c.version)).scalar() == state_schema.SCHEMA_VERSION
    finally:
        engine.dispose()


def test_a_stored_wake_nobody_wrote_is_refused_in_one_line(store: StateStore, store_url: str) -> None:
    store.record_pass("btc", "run", T0, result="ok", summary={})
    engine = create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(state_schema.passes.update().values(wake="sunrise"))
    finally:
        engine.dispose()
    with pytest.raises(StateError, match=r"passes\.wake holds 'sunrise', which cannot be read"):
        store.history("btc")
    with pytest.raises(ValueError):
        store.record_pass("btc", "run", T0, result="ok", summary={}, wake="sunrise")


def test_history_filters_by_start_and_result_and_known_jobs_span_every_table(store: StateStore) -> None:
    for minutes, result in ((0, "ok"), (10, "error"), (20, "ok")):
        _finish(store, store.start_pass("btc", "run", T0 + timedelta(minutes=minutes)), result)
    store.set_paused("only-paused", True)
    store.track("only-tracked", ["7"])
    assert [r.result for r in store.history("btc", since=T0 + timedelta(minutes=10))] == ["ok", "error"]
    assert [r.started_at for r in store.history(result="error")] == [T0 + timedelta(minutes=10)]
    assert store.history("btc", since=T0 + timedelta(minutes=30)) == []
    assert store.known_jobs() == {"btc", "only-paused", "only-tracked"}
