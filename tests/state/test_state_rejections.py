"""Per-level rejection backoff and the last observed reference in the state store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rebalancer.state.rejections import backoff_seconds
from rebalancer.state.store import StateStore

T0 = datetime(2026, 11, 25, 10, 40, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("count", "seconds"),
    [(0, 0), (1, 0), (2, 30), (3, 60), (4, 120), (7, 960), (8, 1800), (9, 1800), (500, 1800)],
)
def test_backoff_doubles_from_the_second_rejection_up_to_the_cap(count: int, seconds: int) -> None:
    assert backoff_seconds(count) == seconds


def test_the_first_rejection_is_retried_by_the_next_pass(store: StateStore) -> None:
    store.record_rejections("btc", [("buy[3]", "19", "insufficient balance")], at(0))
    assert store.held_levels("btc", at(0)) == {}
    assert store.rejection_counts("btc") == {"buy[3]": ("19", 1, at(0))}


def test_repeated_rejections_hold_the_level_for_longer_each_time(store: StateStore) -> None:
    store.record_rejections("btc", [("buy[3]", "19", "insufficient balance")], at(0))
    store.record_rejections("btc", [("buy[3]", "19", "insufficient balance")], at(10))
    assert store.held_levels("btc", at(10)) == {
        "buy[3]": "until 10:40:40 UTC after 2 rejections (code 19: insufficient balance)"
    }
    assert "buy[3]" in store.held_levels("btc", at(39.999))
    assert store.held_levels("btc", at(40)) == {}
    store.record_rejections("btc", [("buy[3]", "19", "insufficient balance")], at(40))
    assert store.held_levels("btc", at(99))["buy[3]"].startswith("until 10:41:40 UTC after 3 rejections")
    assert store.held_levels("btc", at(100)) == {}


def test_another_code_starts_the_count_again(store: StateStore) -> None:
    for second in (0, 1, 2):
        store.record_rejections("btc", [("sell[0]", "19", "insufficient balance")], at(second))
    store.record_rejections("btc", [("sell[0]", "10046", "price outside band")], at(3))
    assert store.rejection_counts("btc")["sell[0]"][:2] == ("10046", 1)
    assert store.held_levels("btc", at(3)) == {}


def test_a_success_clears_the_level_and_only_that_level(store: StateStore) -> None:
    for second in (0, 1):
        store.record_rejections("btc", [("buy[0]", "19", None), ("buy[1]", "19", None)], at(second))
    assert set(store.held_levels("btc", at(1))) == {"buy[0]", "buy[1]"}
    assert store.held_levels("btc", at(1))["buy[0]"] == "until 10:40:31 UTC after 2 rejections (code 19)"
    store.clear_rejections("btc", ["buy[0]", "sell[9]"])
    assert set(store.held_levels("btc", at(1))) == {"buy[1]"}
    store.record_rejections("btc", [("buy[0]", "19", None)], at(2))
    assert store.rejection_counts("btc")["buy[0]"][1] == 1


def test_levels_are_per_job_and_missing_codes_are_kept_apart(store: StateStore) -> None:
    for second in (0, 1):
        store.record_rejections("btc", [("buy[0]", None, "no answer code")], at(second))
    assert store.held_levels("eth", at(1)) == {}
    assert store.held_levels("btc", at(1)) == {
        "buy[0]": "until 10:40:31 UTC after 2 rejections (code -: no answer code)"
    }
    store.record_rejections("btc", [], at(2))
    store.clear_rejections("btc", [])


def test_the_backoff_is_shared_between_stores_on_one_database(open_store: Callable[[], StateStore]) -> None:
    first, second = open_store(), open_store()
    first.record_rejections("btc", [("buy[0]", "19", "x")], at(0))
    second.record_rejections("btc", [("buy[0]", "19", "x")], at(1))
    assert set(first.held_levels("btc", at(2))) == {"buy[0]"}


def test_many_levels_at_once(store: StateStore) -> None:
    levels = [(f"buy[{i}]", "19", "insufficient balance") for i in range(1200)]
    store.record_rejections("btc", levels, at(0))
    store.record_rejections("btc", levels, at(1))
    assert len(store.held_levels("btc", at(2))) == 1200
    store.clear_rejections("btc", [level for level, _, _ in levels])
    assert store.rejection_counts("btc") == {}


def _pass(store: StateStore, job: str, started: float, reference: str | None, result: str | None = "ok") -> None:
    pass_id = store.start_pass(job, "run", at(started))
    if result is not None:
        store.finish_pass(pass_id, result=result, summary={}, reference_price=reference)


def test_last_reference_is_the_newest_finished_pass_that_read_one(store: StateStore) -> None:
    assert store.last_reference("btc") is None
    _pass(store, "btc", 0, "30000.00")
    _pass(store, "eth", 5, "2000.00")
    assert store.last_reference("btc") == Decimal("30000.00")
    _pass(store, "btc", 10, "33720.00", result="no_changes")
    _pass(store, "btc", 20, None, result="no_changes")  # a crossed book: nothing observed
    _pass(store, "btc", 30, "1", result=None)  # still running (or died): not a recorded observation
    assert store.last_reference("btc") == Decimal("33720.00")
    _pass(store, "btc", 40, "31000.5", result="error")
    assert store.last_reference("btc") == Decimal("31000.5")


def test_a_pass_reads_the_held_levels_and_every_level_on_record_in_one_go(store: StateStore) -> None:
    store.record_rejections("btc", [("buy[0]", "19", None), ("buy[1]", "19", None)], at(0))
    store.record_rejections("btc", [("buy[1]", "19", None)], at(1))  # buy[1] held until at(31); buy[0] not held
    store.record_rejections("eth", [("sell[0]", "19", None)], at(0))
    for moment in (at(1), at(30.999), at(31), at(500)):
        inputs = store.pass_inputs("btc", moment)
        assert inputs.held_levels == store.held_levels("btc", moment)
        assert inputs.rejections_on_record == frozenset({"buy[0]", "buy[1]"})
    store.clear_rejections("btc", ["buy[0]", "buy[1]"])
    assert store.pass_inputs("btc", at(1)).rejections_on_record == frozenset()
