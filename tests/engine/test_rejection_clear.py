"""A placing pass clears the rejection record of the levels it placed, and only runs the statement for it when
one of them has a record: the store's read at the start of the pass says which levels have one.

Real HTTP to the in-process sandbox; the statements are watched on the store's engine (SQLAlchemy events).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import event

from rebalancer.engine.runner import run_pass
from rebalancer.jobfile.load import load_job
from rebalancer.state.store import StateStore
from rebalancer.vocab import PassResult
from tests.reliability.kit import fast_client, write_job


@contextlib.contextmanager
def rejection_deletes(store: StateStore) -> Iterator[list[str]]:
    """The DELETE statements on ``level_rejections`` run while the block runs."""
    seen: list[str] = []

    def on_sql(conn, cursor, statement, *rest) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("DELETE") and "level_rejections" in statement:
            seen.append(statement)

    engine = store._db._engine
    event.listen(engine, "before_cursor_execute", on_sql)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", on_sql)


def test_a_placing_pass_clears_a_record_only_where_there_is_one(sandbox, tmp_path: Path) -> None:
    job = load_job(write_job(tmp_path, "clear", sandbox.url, ownership="tracked", levels=2))
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        with rejection_deletes(store) as deletes:
            first = run_pass(job, client, store, apply=True)
        assert first.result is PassResult.OK and first.plan.summary["place"] == 4
        assert deletes == [], "no level has a rejection on record: nothing to clear"

        store.record_rejections(job.name, [("buy[0]", "5", "precision")], datetime.now(UTC))
        store.record_rejections("another", [("buy[1]", "5", "precision")], datetime.now(UTC))
        buy0 = next(o for o in first.execution.outcomes if o.level == "buy[0]") if first.execution else None
        assert buy0 is not None and buy0.order_id is not None
        sandbox.engine.cancel(sandbox.api_key, job.symbol, int(buy0.order_id))  # by hand: the pass places it again
        with rejection_deletes(store) as deletes:
            again = run_pass(job, client, store, apply=True)
        assert again.result is PassResult.OK and again.plan.summary["place"] == 1
        assert len(deletes) == 1
        assert store.rejection_counts(job.name) == {}, "placed: its record is cleared"
        assert set(store.rejection_counts("another")) == {"buy[1]"}, "another job's record is its own"
