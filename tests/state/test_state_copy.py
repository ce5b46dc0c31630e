"""Moving a state store (the SQLite file into PostgreSQL, as docs/deploy.md says): every row, ids and sequences."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rebalancer.errors import StateError
from rebalancer.state.copy import copy_store, main
from rebalancer.state.records import OrderResult
from rebalancer.state.store import StateStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _fill(url: str) -> int:
    with StateStore(url) as store:
        pass_id = store.start_pass("maker", "run", started_at=T0)
        store.record_batch(pass_id, 0, {"symbol": "btcusdt", "api_key": "never-stored"}, answer={"code": "0"})
        store.record_results(pass_id, [OrderResult("place", "BUY", "100.5", "0.01", "77", "placed")])
        store.finish_pass(pass_id, result="ok", summary={"place": 1}, duration_ms=12)
        store.track("maker", ["77", "78"])
        in_flight = store.begin_in_flight("maker", pass_id, [("BUY", "100.5", "0.01")])
        store.end_in_flight(in_flight, ["77"])
        store.set_paused("maker", True)
        return pass_id


def test_every_row_moves_and_new_rows_get_fresh_ids(tmp_path, store_url):
    source = f"sqlite:///{tmp_path / 'old.db'}"
    pass_id = _fill(source)

    counts = copy_store(source, store_url)

    assert counts["passes"] == 1 and counts["tracked_orders"] == 2 and counts["order_results"] == 1
    with StateStore(source) as old, StateStore(store_url) as new:
        assert new.history() == old.history()
        assert new.pass_detail(pass_id) == old.pass_detail(pass_id)
        assert new.tracked_ids("maker") == frozenset({"77", "78"})
        assert new.is_paused("maker")
        assert new.start_pass("maker", "run") == pass_id + 1, "the id sequence continues past the copied rows"


def test_a_target_with_rows_is_refused(tmp_path, store_url):
    source = f"sqlite:///{tmp_path / 'old.db'}"
    _fill(source)
    _fill(store_url)
    with pytest.raises(StateError, match="already has rows in"):
        copy_store(source, store_url)


def test_the_command_line_names_what_it_copied_and_refuses_twice(tmp_path, capsys):
    source, target = f"sqlite:///{tmp_path / 'a.db'}", f"sqlite:///{tmp_path / 'b.db'}"
    _fill(source)
    assert main([source, target]) == 0
    assert "1 passes" in capsys.readouterr().out
    assert main([source, target]) == 1
    assert capsys.readouterr().err.startswith("Error: the target store already has rows")
    assert main([]) == 1
