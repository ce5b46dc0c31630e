"""The scheduler core's frame of one pass (``run_slot``) and its job table, against a plug that records what the
core asks of it. The daemon's and the cluster's own plugs are exercised end to end in tests/daemon and
tests/cluster; this pins the order of the frame's steps and what each way a pass ends leaves behind."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from rebalancer.core.plan import compute_plan
from rebalancer.engine.runner import JobPaused, PassReport
from rebalancer.errors import ConfigError, TransientError
from rebalancer.job import Job, Notify
from rebalancer.notify import Notifier
from rebalancer.scheduler.core import JobTable, run_slot
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.plugs import Claim, Due, Finished, Slot
from rebalancer.vocab import Mode, PassResult, Skip
from tests.core.kit import job as a_job
from tests.core.kit import side_ladder, snapshot


class Recorder:
    """A plug that says what the core asked of it, in order, and ends each pass as told."""

    log = logging.getLogger("rebalancer.test")

    def __init__(self, *, skip: Skip | None = None, raises: BaseException | None = None, result: PassResult) -> None:
        self.calls: list[str] = []
        self.notifier = Notifier()
        self._skip, self._raises, self._result = skip, raises, result
        self.finished: list[object] = []

    @contextlib.contextmanager
    def open(self, job: Job) -> Iterator[Any]:
        self.calls.append(f"open {job.name}")
        yield object()
        self.calls.append(f"close {job.name}")

    def claim(self, slot: Slot, due: Due) -> Claim | Skip:
        self.calls.append("claim")
        return self._skip or Claim(failures=2, fields={"epoch": 7})

    def run(self, slot: Slot, claim: Claim) -> PassReport:
        self.calls.append("run")
        if self._raises is not None:
            raise self._raises
        job, market = slot.job, snapshot()
        plan = compute_plan(job, market, None)
        return PassReport(job.name, Mode.RUN, plan, market, None, self._result, 3)

    def release(self, slot: Slot, claim: Claim) -> None:
        self.calls.append("release")

    def paused(self, slot: Slot, claim: Claim) -> Skip:
        self.calls.append("paused")
        return Skip.PAUSED

    def finish(self, slot: Slot, claim: Claim, outcome: PassReport | BaseException) -> Finished:
        self.calls.append("finish")
        self.finished.append(outcome)
        failed = isinstance(outcome, BaseException) or outcome.failed
        return Finished(claim.failures + 1 if failed else 0, 4.0 if failed else 0.0)

    def on_stop(self, slot: Slot) -> None:
        self.calls.append("on_stop")


def _job(name: str = "j") -> Job:
    return replace(a_job(buy=side_ladder(), sell=side_ladder()), name=name)


def _count(metrics: Metrics, job: str, result: str) -> float:
    return metrics.registry.get_sample_value("rebalancer_passes_total", {"job": job, "result": result}) or 0.0


def _frame(plug: Recorder, job: Job | None = None) -> tuple[JobTable, Metrics, Slot]:
    table = JobTable(plug.open)
    (slot,) = table.open_all([job or _job()])
    table.put(slot)
    plug.calls.clear()
    return table, Metrics(), slot


def test_a_pass_is_claimed_run_released_then_recorded_and_counted() -> None:
    plug = Recorder(result=PassResult.NO_CHANGES)
    table, metrics, slot = _frame(plug)
    report = run_slot(plug, table, metrics, slot, Due(), {})
    assert isinstance(report, PassReport) and report.result is PassResult.NO_CHANGES
    assert plug.calls == ["claim", "run", "release", "finish"]
    assert slot.passes == 1 and _count(metrics, "j", "no_changes") == 1
    last = table.last_plan("j")
    assert last is not None and last[0] is report.plan


@pytest.mark.parametrize("skip", list(Skip))
def test_a_skip_runs_nothing(skip: Skip) -> None:
    plug = Recorder(skip=skip, result=PassResult.OK)
    table, metrics, slot = _frame(plug)
    assert run_slot(plug, table, metrics, slot, Due(), {}) is skip
    assert plug.calls == ["claim"] and slot.passes == 0 and table.last_plan("j") is None


def test_a_pass_that_raises_is_released_recorded_failed_and_counted_as_an_error(caplog: Any) -> None:
    plug = Recorder(raises=TransientError("the exchange is down"), result=PassResult.OK)
    table, metrics, slot = _frame(plug)
    with caplog.at_level(logging.ERROR, logger="rebalancer.test"):
        assert run_slot(plug, table, metrics, slot, Due(), {"late_ms": 5}) is PassResult.ERROR
    assert plug.calls == ["claim", "run", "release", "finish"]
    assert isinstance(plug.finished[0], TransientError)
    assert slot.passes == 1 and _count(metrics, "j", "error") == 1
    (line,) = [r for r in caplog.records if r.getMessage() == "pass failed"]
    assert (line.failures, line.retry_in_s, line.epoch, line.late_ms) == (3, 4.0, 7, 5)
    assert line.error == "the exchange is down"


def test_a_crash_in_the_pass_still_lets_go_of_the_claim_and_is_raised() -> None:
    plug = Recorder(raises=ArithmeticError("a bug"), result=PassResult.OK)
    table, metrics, slot = _frame(plug)
    with pytest.raises(ArithmeticError):
        run_slot(plug, table, metrics, slot, Due(), {})
    assert plug.calls == ["claim", "run", "release"]


def test_a_pass_that_stops_on_the_pause_switch_is_the_plugs_pause_skip() -> None:
    plug = Recorder(raises=JobPaused("job j is paused; nothing sent"), result=PassResult.OK)
    table, metrics, slot = _frame(plug)
    assert run_slot(plug, table, metrics, slot, Due(), {}) is Skip.PAUSED
    assert plug.calls == ["claim", "run", "release", "paused"], "not finished: neither a failure nor a success"
    assert slot.passes == 0, "the plug counts its skip"
    assert metrics.registry.get_sample_value("rebalancer_pass_duration_seconds_count", {"job": "j"}) is None
    assert all(_count(metrics, "j", result) == 0 for result in PassResult)


def test_the_frames_counts_land_in_the_registry_and_a_job_loaded_again_counts_afresh() -> None:
    plug = Recorder(result=PassResult.NO_CHANGES)
    table, metrics, slot = _frame(plug)
    for _ in range(2):
        run_slot(plug, table, metrics, slot, Due(), {})
    assert _count(metrics, "j", "no_changes") == 2
    assert metrics.registry.get_sample_value("rebalancer_pass_duration_seconds_count", {"job": "j"}) == 2
    assert metrics.registry.get_sample_value("rebalancer_open_orders", {"job": "j"}) is not None
    metrics.forget("j")  # the job is retired with its slot ...
    assert _count(metrics, "j", "no_changes") == 0
    (again,) = table.open_all([_job()])  # ... and loaded again
    run_slot(plug, table, metrics, again, Due(), {})
    assert _count(metrics, "j", "no_changes") == 1


def test_a_quiet_passs_line_is_at_debug_with_every_field(caplog: Any) -> None:
    plug = Recorder(result=PassResult.NO_CHANGES)
    table, metrics, slot = _frame(plug)
    with caplog.at_level(logging.INFO, logger="rebalancer.test"):
        run_slot(plug, table, metrics, slot, Due(), {"wake": "timer"})
    assert [r for r in caplog.records if r.getMessage() == "pass"] == []
    with caplog.at_level(logging.DEBUG, logger="rebalancer.test"):
        report = run_slot(plug, table, metrics, slot, Due(), {"wake": "timer"})
    assert isinstance(report, PassReport)
    (line,) = [r for r in caplog.records if r.getMessage() == "pass"]
    assert (line.job, line.result, line.placed, line.cancelled, line.rejected) == ("j", "no_changes", 0, 0, 0)
    assert (line.kept, line.duration_ms, line.wake) == (report.plan.summary["keep"], 3, "timer")
    assert line.prices == report.snapshot.ticker.source


def test_a_closed_slot_is_not_even_claimed() -> None:
    plug = Recorder(result=PassResult.OK)
    table, metrics, slot = _frame(plug)
    slot.closed = True
    assert run_slot(plug, table, metrics, slot, Due(), {}) is None
    assert plug.calls == []


def test_the_failing_webhook_is_told_once_when_the_streak_reaches_its_count(monkeypatch: Any) -> None:
    told: list[tuple[str, str]] = []
    plug = Recorder(result=PassResult.REJECTED)
    monkeypatch.setattr(plug.notifier, "send", lambda url, job, kind, message: told.append((kind, message)))
    job = replace(_job(), notify=Notify("http://127.0.0.1:9/hook", 3))
    table, metrics, slot = _frame(plug, job)
    run_slot(plug, table, metrics, slot, Due(), {})  # the claim says 2 failed before: this is the third
    assert told == [("failing", "3 passes in a row failed; the last: rejected")]


def test_the_table_opens_all_jobs_or_none() -> None:
    opened: list[str] = []

    @contextlib.contextmanager
    def opener(job: Job) -> Iterator[Any]:
        if job.name == "bad":
            raise ConfigError("job bad: cannot connect")
        opened.append(job.name)
        try:
            yield object()
        finally:
            opened.remove(job.name)

    table = JobTable(opener)
    with pytest.raises(ConfigError):
        table.open_all([_job("a"), _job("b"), _job("bad")])
    assert opened == [] and table.jobs == {}
    slots = table.open_all([_job("a"), _job("b")])
    for slot in slots:
        table.put(slot)
    assert sorted(table.jobs) == ["a", "b"] and opened == ["a", "b"]
    assert [s.job.name for s in table.gone({"a": _job("a")})] == ["b"]
    for slot in table.take_all():
        table.close(slot)
    assert opened == [] and table.jobs == {}
