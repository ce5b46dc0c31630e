"""What ``rebalancer status`` reads from the state store, on SQLite and PostgreSQL: one row per known job, the
daemons' schedule notes and the refused reloads."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from rebalancer.state.status import ScheduledJob

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_every_job_any_table_knows_gets_one_row(open_store):
    store = open_store()
    ok = store.start_pass("passed", "run", started_at=T0)
    store.finish_pass(ok, result="error", summary={}, error="boom")
    later = store.start_pass("passed", "run", started_at=T0 + timedelta(seconds=30))
    store.finish_pass(later, result="no_changes", summary={"keep": 3})
    store.set_paused("paused", True)
    store.set_paused("resumed", False)
    store.acquire_lease("leased", "elsewhere:1:a", 60, now=T0)
    store.track("tracking", ["1", "2", "3"])
    store.register_jobs("elsewhere:2:b", [ScheduledJob("scheduled", "/jobs/s.yaml", 30.0, None, True)])

    rows = {r.job: r for r in store.job_statuses(also=["given"], now=T0)}

    assert sorted(rows) == ["given", "leased", "passed", "paused", "resumed", "scheduled", "tracking"]
    assert rows["passed"].last_pass is not None and rows["passed"].last_pass.id == later
    assert rows["passed"].last_pass.result == "no_changes"
    assert rows["passed"].last_error is not None and rows["passed"].last_error.error == "boom"
    assert rows["paused"].paused and not rows["resumed"].paused
    assert rows["leased"].holder == "elsewhere:1:a"
    assert rows["tracking"].tracked_orders == 3 and rows["given"].tracked_orders == 0
    assert rows["scheduled"].scheduled == ScheduledJob("scheduled", "/jobs/s.yaml", 30.0, None, True)
    assert rows["scheduled"].scheduled_by == "elsewhere:2:b"
    later_rows = {r.job: r for r in store.job_statuses(now=T0 + timedelta(minutes=5))}
    assert later_rows["leased"].holder is None, "an expired lease holds nothing"


def test_schedule_notes_are_replaced_and_forgotten_and_a_dead_daemons_are_ignored(open_store):
    store = open_store()
    store.register_jobs("h:1:a", [ScheduledJob("x", "/a.yaml", 30.0), ScheduledJob("y", "/b.yaml", None, "* * * * *")])
    store.register_jobs("h:1:b", [ScheduledJob("x", "/a2.yaml", 10.0)])
    rows = {r.job: r for r in store.job_statuses()}
    assert rows["x"].scheduled_by == "h:1:b" and rows["x"].scheduled.source == "/a2.yaml"
    assert rows["y"].scheduled.cron == "* * * * *"
    store.unregister_jobs("h:1:a", ["y"])
    store.unregister_jobs("h:1:a", ["x"])  # not its note any more: left alone
    assert [r.job for r in store.job_statuses()] == ["x"]
    store.unregister_jobs("h:1:b")
    assert store.job_statuses() == []

    import socket

    dead = f"{socket.gethostname()}:{2**22 + os.getpid()}:gone"
    store.register_jobs(dead, [ScheduledJob("orphan", "/o.yaml", 30.0)])
    assert store.job_statuses() == [], "a note of a process of this host that no longer runs is ignored"


def test_reload_failures_count_up_keep_the_first_time_and_clear(open_store):
    store = open_store()
    store.record_reload_failure("/jobs/a.yaml", "a.yaml:1:1: first", holder="h:1:a", job="a", now=T0)
    store.record_reload_failure("/jobs/a.yaml", "a.yaml:2:1: second", holder="h:1:a", now=T0 + timedelta(seconds=5))
    store.record_reload_failure("/jobs/b.yaml", "b.yaml:1:1: new", holder="h:1:a", now=T0)
    a, b = store.reload_failures()
    assert (a.file, a.job, a.problem, a.times) == ("/jobs/a.yaml", "a", "a.yaml:2:1: second", 2)
    assert a.first_failed_at == T0 and a.last_failed_at == T0 + timedelta(seconds=5)
    assert (b.job, b.times) == (None, 1)
    store.clear_reload_failures(["/jobs/a.yaml", "/jobs/unknown.yaml"])
    assert [f.file for f in store.reload_failures()] == ["/jobs/b.yaml"]


def test_a_refusal_noted_by_a_daemon_that_died_is_left_out(open_store):
    import socket

    store = open_store()
    dead = f"{socket.gethostname()}:{2**22 + os.getpid()}:gone"
    store.record_reload_failure("/jobs/a.yaml", "a.yaml:1:1: x", holder=dead, now=T0)
    store.record_reload_failure("/jobs/b.yaml", "b.yaml:1:1: y", holder="otherhost:1:a", now=T0)
    assert [f.file for f in store.reload_failures()] == ["/jobs/b.yaml"]
