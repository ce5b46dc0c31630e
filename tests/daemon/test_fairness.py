"""Fair scheduling under overload: passes due faster than they run still serve every job in turn.

The queue itself is driven by hand; the daemon runs a pool of one worker whose every pass makes every job due again
(the heaviest overload there is), so the order of passes is decided by the queue alone: no timing is asserted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.jobfile.load import load_job
from rebalancer.scheduler.duequeue import DueQueue
from rebalancer.state.store import StateStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_longest_waiting_job_goes_first_and_a_due_while_waiting_is_coalesced() -> None:
    skipped: list[str] = []
    clock = Clock()
    queue = DueQueue(on_skip=skipped.append, clock=clock, monotonic=clock)
    for name, due in (("c", 3.0), ("a", 1.0), ("b", 2.0)):
        assert queue.put(name, due)
    assert queue.put("a", 5.0) is False and skipped == ["a"] and queue.overloaded
    first = queue.take(timeout=0)
    assert first is not None and (first.name, first.due) == ("a", 1.0), "the coalesced due keeps the older time"
    assert queue.put("a", 6.0), "a running job may wait for its next pass"
    assert [queue.take(timeout=0).name for _ in range(2)] == ["b", "c"]  # type: ignore[union-attr]
    assert queue.take(timeout=0) is None, "a is still running: never handed out twice"
    queue.done("a")
    again = queue.take(timeout=0)
    assert again is not None and again.name == "a"
    queue.put("b")
    queue.discard("b")
    assert queue.depth == 0 and queue.take(timeout=0) is None
    queue.close()
    assert queue.take() is None


def test_an_urgent_pass_goes_before_every_routine_one_and_moves_a_routine_wait_forward() -> None:
    skipped: list[str] = []
    clock = Clock()
    queue = DueQueue(on_skip=skipped.append, clock=clock, monotonic=clock)
    for name, due in (("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0)):
        assert queue.put(name, due)
    assert queue.put("s", 9.0, urgent=True)  # the stream woke s after every timer pass came due
    assert queue.put("c", 10.0, urgent=True) is False  # c waits (routine): it moves forward, keeping its time
    assert skipped == [], "a reaction merged into a wait is not a skipped tick"
    taken = [queue.take(timeout=0) for _ in range(5)]
    assert [(d.name, d.due) for d in taken if d is not None] == [
        ("c", 3.0),
        ("s", 9.0),
        ("a", 1.0),
        ("b", 2.0),
        ("d", 4.0),
    ]
    assert queue.put("a", 11.0) and queue.put("a", 12.0, urgent=True) is False
    queue.done("a")
    again = queue.take(timeout=0)
    assert again is not None and (again.name, again.due) == ("a", 11.0)
    assert queue.take(timeout=0) is None, "a routine due that an urgent one raised is one pass, not two"


def test_overload_is_logged_once_per_period_however_many_passes_are_skipped(caplog) -> None:
    clock = Clock()
    queue = DueQueue(clock=clock, monotonic=clock)
    queue.put("a")
    with caplog.at_level(logging.WARNING, logger="rebalancer.daemon"):
        for _ in range(50):
            queue.put("a")
        clock.now += 61
        queue.put("a")
    lines = [r for r in caplog.records if "overloaded" in r.getMessage()]
    assert len(lines) == 2 and queue.skipped == 51
    assert lines[0].skipped == 1 and lines[1].skipped == 50  # type: ignore[attr-defined]


class _Overloading:
    """The job's real client, except that reading the ticker makes every job due again and notes whose pass it is."""

    def __init__(self, inner: Any, name: str, daemon: list[Daemon], order: list[str], enough: threading.Event):
        self._inner, self._name, self._daemon, self._order, self._enough = inner, name, daemon, order, enough

    def __getattr__(self, attr: str) -> Any:
        return getattr(self._inner, attr)

    def ticker(self, symbol: str) -> Any:
        self._order.append(self._name)
        if len(self._order) >= 36:
            self._enough.set()
        for name in self._daemon[0].jobs:
            self._daemon[0]._tick(name)
        return self._inner.ticker(symbol)


def test_every_job_gets_a_pass_before_any_gets_a_second_under_overload(tmp_path: Path, sandbox, job_text) -> None:
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    order: list[str] = []
    enough = threading.Event()
    holder: list[Daemon] = []

    @contextlib.contextmanager
    def opener(job: Any) -> Iterator[Any]:
        with open_exchange(job, env) as client:
            yield _Overloading(client, job.name, holder, order, enough)

    jobs = []
    for i in range(12):
        path = tmp_path / f"f{i}.yaml"
        path.write_text(job_text(f"f{i}", every="1h", levels=1, ownership="tracked"))
        jobs.append(load_job(path))
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        daemon = Daemon(store, opener=opener, stop_wait=10, workers=1)
        holder.append(daemon)
        daemon.start(jobs)
        try:
            assert enough.wait(120), f"only {len(order)} passes"
            overloaded = daemon.metrics.registry.get_sample_value("rebalancer_overloaded")
        finally:
            daemon.stop()
    rounds = [order[i : i + 12] for i in range(0, 36, 12)]
    assert all(sorted(r) == sorted(job.name for job in jobs) for r in rounds), rounds
    assert overloaded == 1
