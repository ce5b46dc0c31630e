"""A pass's round trips to the store: what it needs read in one transaction, a quiet pass recorded in one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event

from rebalancer.models import Side
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, PassResult

NOW = datetime(2026, 3, 1, 10, 40, tzinfo=UTC)


def test_pass_inputs_match_the_single_reads(open_store: Callable[[], StateStore]) -> None:
    with open_store() as store:
        store.track("j", ["7", "8"])
        store.begin_in_flight("j", None, [(Side.BUY, "100", "1")], created_at=NOW)
        for _ in range(2):
            store.record_rejections("j", [("buy[0]", "19", "no money")], NOW)
        store.record_pass("j", Mode.RUN, NOW, result=PassResult.NO_CHANGES, summary={"keep": 2}, reference_price="101")
        later = NOW + timedelta(seconds=1)
        inputs = store.pass_inputs("j", later)
        assert inputs.tracked == store.tracked_ids("j") == frozenset({"7", "8"})
        assert list(inputs.in_flight) == store.open_in_flight("j") and len(inputs.in_flight) == 1
        assert inputs.last_reference == store.last_reference("j") and str(inputs.last_reference) == "101"
        assert inputs.held_levels == store.held_levels("j", later) and "buy[0]" in inputs.held_levels
        assert store.pass_inputs("other", NOW).tracked == frozenset()


def test_a_recorded_pass_reads_back_like_a_started_and_finished_one(open_store: Callable[[], StateStore]) -> None:
    with open_store() as store:
        pass_id = store.record_pass(
            "j", Mode.RUN, NOW, result=PassResult.NO_CHANGES, summary={"keep": 3}, warnings=("w",), duration_ms=4
        )
        [record] = store.history("j")
        assert (record.id, record.result, record.summary, record.warnings, record.duration_ms) == (
            pass_id,
            PassResult.NO_CHANGES,
            {"keep": 3},
            ("w",),
            4,
        )


def test_a_quiet_pass_opens_two_transactions(sandbox, tmp_path) -> None:
    from rebalancer.engine.runner import run_pass
    from tests.reliability.kit import fast_client, load

    job = load(tmp_path, "quiet", sandbox.url, ownership="tracked")
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        run_pass(job, client, store, apply=True, mode=Mode.RUN)
        begins: list[int] = []
        event.listen(store._db._engine, "begin", lambda conn: begins.append(1))
        report = run_pass(job, client, store, apply=True, mode=Mode.RUN)
        assert report.result == PassResult.NO_CHANGES
        assert len(begins) == 2, "one to read what the pass needs, one to record it"
