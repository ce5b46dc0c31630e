"""A state store edited by hand, damaged or deleted under a running process: a clean ``StateError``, never a
traceback, never a silent wrong answer (SQLite keeps any text in any column; a deleted file stays writable)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rebalancer.errors import StateError
from rebalancer.state.store import OrderResult, StateStore
from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def _filled(path: Path) -> StateStore:
    """A store holding one row of every kind a pass reads back."""
    store = StateStore(f"sqlite:///{path}")
    pass_id = store.start_pass("j", Mode.APPLY, NOW)
    store.record_batch(pass_id, 0, {"symbol": "btcusdt"}, {"data": []})
    store.record_results(pass_id, [OrderResult(ActionKind.PLACE, "BUY", "1.5", "2", "7", OutcomeStatus.PLACED)])
    store.finish_pass(pass_id, result=PassResult.OK, summary={"place": 1}, reference_price="30000.00")
    store.begin_in_flight("j", pass_id, [("BUY", "1.5", "2")])
    store.record_rejections("j", [("buy[0]", "5", "no")], NOW)
    store.record_rejections("j", [("buy[0]", "5", "no")], NOW)
    assert store.acquire_lease("j", "other:1:x", 60, NOW) is not None
    return store


READERS: dict[str, Callable[[StateStore], object]] = {
    "history": lambda s: s.history("j"),
    "status": lambda s: s.job_statuses(),
    "pass_detail": lambda s: s.pass_detail(1),
    "last_reference": lambda s: s.last_reference("j"),
    "in_flight": lambda s: s.open_in_flight("j"),
    "held_levels": lambda s: s.held_levels("j", NOW),
    "lease_holder": lambda s: s.lease_holder("j", NOW),
    "acquire_lease": lambda s: s.acquire_lease("j", "me:2:y", 60, NOW + timedelta(hours=1)),
    "renew_leases": lambda s: s.renew_leases("other:1:x", 60, now=NOW),
    "renew_own_lease": lambda s: s.acquire_lease("j", "other:1:x", 60, NOW),
}


@pytest.mark.parametrize(
    ("table", "column", "garbage", "reader"),
    [
        ("passes", "reference_price", "'thirty thousand'", "last_reference"),
        ("passes", "started_at_ms", "'yesterday'", "history"),
        ("passes", "mode", "'sideways'", "history"),
        ("passes", "started_at_ms", "'yesterday'", "status"),
        ("passes", "summary", "'{not json'", "history"),
        ("batches", "recorded_at_ms", "1.5", "pass_detail"),
        ("batches", "answer", "'[unclosed'", "pass_detail"),
        ("order_results", "price", "'cheap'", "pass_detail"),
        ("order_results", "status", "'lost'", "pass_detail"),
        ("in_flight_placements", "price", "'NaN'", "in_flight"),
        ("in_flight", "created_at_ms", "'then'", "in_flight"),
        ("level_rejections", "not_before_ms", "'later'", "held_levels"),
        ("leases", "expires_at_ms", "'never'", "lease_holder"),
        ("leases", "expires_at_ms", "'never'", "acquire_lease"),
        ("leases", "epoch", "'first'", "renew_leases"),
        ("leases", "epoch", "'first'", "renew_own_lease"),
    ],
)
def test_a_garbage_value_is_a_state_error_naming_its_table_and_column(
    tmp_path: Path, table: str, column: str, garbage: str, reader: str
) -> None:
    path = tmp_path / "state.db"
    with _filled(path) as store:
        with sqlite3.connect(path) as conn:
            conn.execute(f"UPDATE {table} SET {column} = {garbage}")
        with pytest.raises(StateError) as caught:
            READERS[reader](store)
    message = str(caught.value)
    assert message.startswith(f"state store: {table}.{column} holds ") and "\n" not in message
    assert "edited by hand or is damaged" in message


def test_a_deleted_store_file_is_detected_before_the_next_transaction(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(f"sqlite:///{path}") as store:
        assert store.acquire_lease("j", "me:1:x", 60) is not None
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        with pytest.raises(StateError, match="the database file was deleted or replaced while this process ran"):
            store.acquire_lease("j", "me:1:x", 60)
        with pytest.raises(StateError, match="deleted or replaced"):
            store.history()


def test_a_replaced_store_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    with StateStore(f"sqlite:///{path}") as store:
        store.history()
        path.rename(tmp_path / "old.db")
        with StateStore(f"sqlite:///{path}") as fresh:  # another process starts over with an empty store
            assert fresh.acquire_lease("j", "them:1:x", 60) is not None
            with pytest.raises(StateError, match="deleted or replaced"):
                store.acquire_lease("j", "me:1:x", 60)
