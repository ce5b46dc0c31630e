"""The daemon's timer: first wake at once, then on the trigger's fire times; removal, a late thread, stop."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

from rebalancer.daemon.timer import TimerWakes
from rebalancer.jobfile.load import load_job
from rebalancer.vocab import WakeReason


class _Wakes:
    """Records every wake with the due time the timer answers for it."""

    def __init__(self, timer: TimerWakes) -> None:
        self.timer = timer
        self.lock = threading.Lock()
        self.seen: list[tuple[str, datetime | None]] = []

    def __call__(self, name: str, reason: WakeReason) -> None:
        assert reason is WakeReason.TIMER
        with self.lock:
            self.seen.append((name, self.timer.due_time(name)))

    def of(self, name: str) -> list[datetime | None]:
        with self.lock:
            return [due for seen, due in self.seen if seen == name]


def _job(tmp_path: Path, job_text, name: str, every: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(job_text(name, every=every))
    return load_job(path)


def test_the_first_wake_is_at_once_then_every_fire_time_of_the_trigger(tmp_path, job_text, wait_for) -> None:
    timer = TimerWakes(on_skip=lambda name: None)
    wakes = _Wakes(timer)
    timer.add(_job(tmp_path, job_text, "a", "100ms"))
    timer.start(wakes)
    try:
        assert timer.running
        assert wait_for(lambda: len(wakes.of("a")) >= 5)
    finally:
        timer.stop()
    dues = wakes.of("a")[:5]
    assert all(due is not None for due in dues)
    steps = [later - earlier for earlier, later in itertools.pairwise(dues[1:])]  # type: ignore[operator]
    assert steps == [timedelta(milliseconds=100)] * 3  # the trigger's arithmetic, not a measured time
    assert not timer.running


def test_a_removed_job_is_woken_no_more_and_a_replaced_one_once_per_fire_time(tmp_path, job_text, wait_for) -> None:
    timer = TimerWakes(on_skip=lambda name: None)
    wakes = _Wakes(timer)
    timer.add(_job(tmp_path, job_text, "gone", "100ms"))
    timer.add(_job(tmp_path, job_text, "kept", "100ms"))
    timer.add(_job(tmp_path, job_text, "kept", "100ms"))  # a reload replaces it: one schedule, not two
    timer.start(wakes)
    try:
        assert wait_for(lambda: len(wakes.of("gone")) >= 2)
        timer.remove("gone")
        removed_at = len(wakes.of("gone"))
        kept_at = len(wakes.of("kept"))
        assert wait_for(lambda: len(wakes.of("kept")) >= kept_at + 4)
    finally:
        timer.stop()
    assert len(wakes.of("gone")) <= removed_at + 1  # at most a wake already under way
    kept = wakes.of("kept")
    assert len(set(kept)) == len(kept)  # never two wakes for one fire time


def test_fire_times_passed_over_while_the_thread_was_late_wake_once_and_are_counted(
    tmp_path, job_text, wait_for
) -> None:
    ahead = [0.0]
    skipped: list[str] = []
    timer = TimerWakes(on_skip=skipped.append, clock=lambda: time.time() + ahead[0])
    wakes = _Wakes(timer)
    timer.add(_job(tmp_path, job_text, "late", "1s"))
    timer.start(wakes)
    try:
        assert wait_for(lambda: len(wakes.of("late")) >= 1)
        ahead[0] = 1.5  # the first phased fire time (within a second) comes up
        assert wait_for(lambda: len(wakes.of("late")) >= 2)
        before = len(wakes.of("late"))
        ahead[0] = 10.0  # the clock jumps about eight periods past the next fire time
        assert wait_for(lambda: len(wakes.of("late")) >= before + 1)
    finally:
        timer.stop()
    assert set(skipped) == {"late"} and 7 <= len(skipped) <= 12  # 9 ± how far the first fire time was
