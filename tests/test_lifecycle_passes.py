"""refresh.max_age and after_fill.delay through real passes against the sandbox, with the pass clock injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rebalancer.engine.runner import run_pass
from rebalancer.job import Job
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.state.store import StateStore
from rebalancer.vocab import ActionKind, CancelReason
from tests.reliability.kit import fast_client, write_job


def _job(tmp_path: Path, url: str, extra: str) -> Job:
    path = write_job(tmp_path, "life", url, ownership="tracked")
    path.write_text(path.read_text() + extra)
    return load_job(path)


def _book(sandbox, job: Job):  # type: ignore[no-untyped-def]
    return sandbox.engine.open_orders(sandbox.api_key, job.symbol)


def test_orders_past_max_age_are_replaced_one_per_side_per_pass(sandbox, tmp_path) -> None:
    job = _job(tmp_path, sandbox.url, "refresh:\n  max_age: 30m\n")
    start = datetime.fromtimestamp(sandbox.engine.now_ms() / 1000, UTC)
    now = [start]
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        run_pass(job, client, store, apply=True, wall=lambda: now[0])
        first = {o.id for o in _book(sandbox, job)}
        now[0] = start + timedelta(minutes=29)
        assert run_pass(job, client, store, apply=True, wall=lambda: now[0]).result == "no_changes"
        now[0] = start + timedelta(minutes=31)
        report = run_pass(job, client, store, apply=True, wall=lambda: now[0])
        cancels = [a for a in report.plan.actions if a.action is ActionKind.CANCEL]
        assert [a.reason for a in cancels] == [CancelReason.MAX_AGE, CancelReason.MAX_AGE]
        assert sorted(a.side for a in cancels) == [Side.BUY, Side.SELL]
        assert report.plan.summary[ActionKind.PLACE] == 2 and report.result == "ok"
        book = {o.id for o in _book(sandbox, job)}
        assert len(book) == len(first) and len(first - book) == 2, "two replaced, the ladder never emptied"


def test_a_filled_level_waits_for_the_delay_and_the_plan_says_so(sandbox, tmp_path) -> None:
    job = _job(tmp_path, sandbox.url, "after_fill:\n  delay: 60s\n")
    start = datetime(2026, 1, 5, 10, 41, 5, tzinfo=UTC)
    now = [start]
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        run_pass(job, client, store, apply=True, wall=lambda: now[0])
        buy = max((o for o in _book(sandbox, job) if o.side is Side.BUY), key=lambda o: o.price)
        sandbox.engine.fill(int(buy.id))
        dry = run_pass(job, client, store, apply=False, wall=lambda: now[0])
        assert "buy[0] waits until 10:42:05 UTC after a fill" in dry.plan.warnings
        assert not [a for a in dry.plan.actions if a.action is ActionKind.PLACE]
        report = run_pass(job, client, store, apply=True, wall=lambda: now[0])
        assert "buy[0] waits until 10:42:05 UTC after a fill" in report.plan.warnings
        assert report.result == "no_changes"
        now[0] = start + timedelta(seconds=59)
        assert (
            "buy[0] waits until 10:42:05 UTC after a fill"
            in run_pass(job, client, store, apply=True, wall=lambda: now[0]).plan.warnings
        )
        now[0] = start + timedelta(seconds=60)
        placed = run_pass(job, client, store, apply=True, wall=lambda: now[0])
        assert [a.level for a in placed.plan.actions if a.action is ActionKind.PLACE] == ["buy[0]"]
        assert not [w for w in placed.plan.warnings if "waits until" in w]
