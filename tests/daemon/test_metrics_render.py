"""``/metrics`` rendering: per scrape while cheap; past the budget (CPU or clock), kept fresh in the background."""

from __future__ import annotations

import itertools
import threading

from rebalancer.scheduler.metrics import CachedExposition, Metrics


class _Renders:
    """A rendering that says how many times it ran."""

    def __init__(self) -> None:
        self.count = itertools.count(1)
        self.last = 0
        self.lock = threading.Lock()

    def __call__(self) -> bytes:
        with self.lock:
            self.last = next(self.count)
            return f"render {self.last}\n".encode()


def test_a_cheap_rendering_is_made_afresh_for_every_scrape() -> None:
    renders = _Renders()
    cache = CachedExposition(renders, budget=60.0, refresh=0.05)
    assert [cache.get() for _ in range(3)] == [b"render 1\n", b"render 2\n", b"render 3\n"]
    cache.close()


def test_a_costly_rendering_is_answered_from_the_background_and_kept_fresh(wait_for) -> None:
    renders = _Renders()
    cache = CachedExposition(renders, budget=-1.0, refresh=0.05)  # every rendering counts as over budget
    try:
        assert cache.get() == b"render 1\n"  # the first scrape renders, then the background takes over
        assert wait_for(lambda: renders.last >= 3)
        seen = renders.last
        answer = cache.get()
        assert renders.last <= seen + 1  # answered without rendering for this scrape
        # The background's latest: a rendering is kept (compressed) a moment after it was counted.
        assert answer in {f"render {n}\n".encode() for n in (seen - 1, seen, seen + 1)}
    finally:
        cache.close()


def test_a_rendering_slow_on_the_clock_but_cheap_in_cpu_is_kept_fresh_in_the_background(wait_for) -> None:
    """A fleet's parent merging its workers' texts spends little CPU but waits for their answers: a scrape must not
    wait for that either."""
    renders = _Renders()

    def waits_then_renders() -> bytes:
        threading.Event().wait(0.05)  # an answer from elsewhere, no CPU spent
        return renders()

    cache = CachedExposition(waits_then_renders, budget=0.01, refresh=0.05)
    try:
        assert cache.get() == b"render 1\n"
        assert wait_for(lambda: cache._kept_fresh and renders.last >= 2)
    finally:
        cache.close()


def test_the_background_stops_when_nobody_scrapes_and_the_next_scrape_renders(wait_for) -> None:
    renders = _Renders()
    cache = CachedExposition(renders, budget=-1.0, refresh=0.01)
    try:
        cache.get()
        assert wait_for(lambda: not cache._kept_fresh)  # six refreshes without a scrape
        before = renders.last
        assert cache.get() == f"render {before + 1}\n".encode()
    finally:
        cache.close()


def test_a_costly_rendering_is_made_ahead_of_the_first_scrape_once_the_process_is_ready(wait_for) -> None:
    renders = _Renders()
    threads: list[str] = []

    def render() -> bytes:
        threads.append(threading.current_thread().name)
        return renders()

    ready = threading.Event()
    cache = CachedExposition(render, budget=-1.0, refresh=0.05)
    try:
        cache.warm(ready.is_set, poll=0.01)
        assert wait_for(lambda: threads == [] and not cache._kept_fresh)  # nothing rendered while not ready
        ready.set()
        assert wait_for(lambda: cache._kept_fresh and renders.last >= 2)
        answer = cache.get()
        assert answer.startswith(b"render ") and threading.current_thread().name not in threads
    finally:
        cache.close()


def test_the_exposition_has_no_created_series() -> None:
    metrics = Metrics()
    metrics.passes.labels("j", "ok").inc()
    metrics.pass_duration.labels("j").observe(0.1)
    text = metrics.exposition().decode()
    assert "rebalancer_passes_total" in text and "rebalancer_pass_duration_seconds_count" in text
    assert "_created" not in text
