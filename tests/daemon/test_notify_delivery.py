"""Webhook delivery in a running daemon: one slow endpoint delays no other destination, a delivery has a total
deadline, a redirect is never followed with the event, and no delivery error stops the notifier."""

from __future__ import annotations

import time
from dataclasses import replace

from rebalancer.job import Notify
from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _jobs, _sample
from tests.daemonkit import running
from tests.webhooks import dripping, receiver


def test_a_dripping_endpoint_delays_no_other_destination_and_fails_by_its_deadline(
    tmp_path, sandbox, job_text, wait_for
) -> None:
    jobs = _jobs(tmp_path, {"slow": job_text("slow"), "fast": job_text("fast", symbol="ethusdt", size="0.5")})
    with (
        dripping() as (slow_url, arrived),
        receiver() as (fast_url, got),
        StateStore(f"sqlite:///{tmp_path}/state.db") as store,
        running(store, jobs) as daemon,
    ):
        slow, fast = (replace(job, notify=Notify(url, 1)) for job, url in zip(jobs, (slow_url, fast_url), strict=True))
        daemon.notify(slow, "failing", "first in line")
        assert wait_for(lambda: bool(arrived))  # the slow endpoint holds its delivery from now on
        sent = time.monotonic()
        daemon.notify(fast, "failing", "second in line")
        assert wait_for(lambda: [e["message"] for e in got] == ["second in line"], timeout=15)
        assert time.monotonic() - sent < 15
        # The dripped answer never completes: the delivery fails by its total deadline (5 s), counted.
        assert wait_for(lambda: _sample(daemon, "rebalancer_notify_failures_total", job="slow") == 1.0, timeout=15)


def test_a_redirect_is_not_followed_with_the_event(tmp_path, sandbox, job_text, wait_for) -> None:
    jobs = _jobs(tmp_path, {"r": job_text("r")})
    with (
        receiver() as (elsewhere, taken),
        receiver(status=307, location=elsewhere) as (url, got),
        StateStore(f"sqlite:///{tmp_path}/state.db") as store,
        running(store, jobs) as daemon,
    ):
        daemon.notify(replace(jobs[0], notify=Notify(url, 1)), "failing", "where does this go")
        assert wait_for(lambda: _sample(daemon, "rebalancer_notify_failures_total", job="r") == 1.0)
        assert [e["message"] for e in got] == ["where does this go"]
        assert taken == [], "the event body went only where the job file says"


def test_a_delivery_error_does_not_stop_the_notifier(tmp_path, sandbox, job_text, wait_for) -> None:
    jobs = _jobs(tmp_path, {"e": job_text("e")})
    with (
        receiver() as (url, got),
        StateStore(f"sqlite:///{tmp_path}/state.db") as store,
        running(store, jobs) as daemon,
    ):
        # URLs no job file can hold any more (validation refuses them), handed in directly: each fails alone.
        for bad in ("http://a..b/hook", "http://[::1/hook", "http://hooks.example.com:99999/"):
            daemon.notify(replace(jobs[0], notify=Notify(bad, 1)), "failing", "lost")
        daemon.notify(replace(jobs[0], notify=Notify(url, 1)), "failing", "still told")
        assert wait_for(lambda: [e["message"] for e in got] == ["still told"])
        assert wait_for(lambda: _sample(daemon, "rebalancer_notify_failures_total", job="e") == 3.0)
