"""The daemon in-process against the sandbox over real HTTP: convergence, isolation, pause, leases, metrics."""

from __future__ import annotations

import contextlib
import logging
from decimal import Decimal
from pathlib import Path

import requests

from rebalancer.daemon.scheduler import Daemon, run_once
from rebalancer.engine.connect import open_exchange
from rebalancer.jobfile.load import load_job
from rebalancer.scheduler.metrics import HealthServer
from rebalancer.scheduler.timing import backoff_delay
from rebalancer.state.store import StateStore


def _jobs(tmp_path: Path, texts: dict[str, str]) -> list:
    jobs = []
    for name, text in texts.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        jobs.append(load_job(path))
    return jobs


def _opener(sandbox):
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    return lambda job: open_exchange(job, env)


@contextlib.contextmanager
def running(store: StateStore, sandbox, jobs, opener=None, **kwargs):
    daemon = Daemon(store, opener=opener or _opener(sandbox), stop_wait=10, **kwargs)
    daemon.start(jobs)
    try:
        yield daemon
    finally:
        daemon.stop()


def _sample(daemon: Daemon, name: str, **labels: str) -> float:
    return daemon.metrics.registry.get_sample_value(name, labels) or 0.0


def _book(sandbox, symbol: str = "btcusdt"):
    return sandbox.engine.open_orders(sandbox.api_key, symbol)


def _converged(daemon: Daemon, name: str) -> bool:
    report = daemon.run_pass_now(name)
    return report is not None and report.result == "no_changes"


def test_several_jobs_converge_and_stay_converged_while_the_market_moves(tmp_path, sandbox, job_text, wait_for):
    jobs = _jobs(
        tmp_path,
        {
            "btc": job_text("btc", symbol="btcusdt", levels=4),
            "eth": job_text("eth", symbol="ethusdt", levels=3, size="0.5"),
        },
    )
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, sandbox, jobs) as daemon:
        assert wait_for(lambda: len(_book(sandbox)) == 8 and len(_book(sandbox, "ethusdt")) == 6)
        for _ in range(5):
            sandbox.engine.advance(30)
            assert wait_for(lambda: _converged(daemon, "btc") and _converged(daemon, "eth"))
            assert len(_book(sandbox)) == 8
            assert len(_book(sandbox, "ethusdt")) == 6
        history = store.history("btc", limit=500)
        assert any(r.result == "ok" for r in history)


def test_a_failing_exchange_does_not_hold_up_another_job(tmp_path, sandbox, job_text, wait_for):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    jobs = _jobs(
        tmp_path,
        {
            "dead": job_text("dead", symbol="ethusdt", url=dead),
            "alive": job_text("alive", every="100ms"),
        },
    )
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, sandbox, jobs) as daemon:
        assert wait_for(lambda: len(store.history("alive", limit=100)) >= 1)
        assert wait_for(lambda: len(_book(sandbox)) == 6)
        before = _sample(daemon, "rebalancer_passes_total", job="alive", result="no_changes")
        assert wait_for(
            lambda: _sample(daemon, "rebalancer_passes_total", job="alive", result="no_changes") >= before + 5
        )
        # The dead job's pass spends its read retries first; it fails on its own time, without holding up "alive".
        assert wait_for(lambda: _sample(daemon, "rebalancer_passes_total", job="dead", result="error") >= 1)


def test_a_paused_job_makes_no_passes_until_resumed(tmp_path, sandbox, job_text, wait_for):
    jobs = _jobs(tmp_path, {"p": job_text("p")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        store.set_paused("p", True)
        with running(store, sandbox, jobs) as daemon:
            assert wait_for(daemon.ready)
            assert daemon.run_pass_now("p") is None
            assert _book(sandbox) == ()
            store.set_paused("p", False)
            assert wait_for(lambda: len(_book(sandbox)) == 6)


def test_a_job_leased_by_another_daemon_is_not_reconciled(tmp_path, sandbox, job_text, wait_for):
    jobs = _jobs(tmp_path, {"l": job_text("l")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        assert store.acquire_lease("l", "someone-else", 600)
        with running(store, sandbox, jobs) as daemon:
            assert wait_for(daemon.ready)
            assert daemon.run_pass_now("l") is None
            assert _book(sandbox) == ()
            assert _sample(daemon, "rebalancer_passes_total", job="l", result="lease_held") >= 1
        assert store.lease_holder("l") == "someone-else"


def test_on_stop_cancel_leaves_the_book_empty(tmp_path, sandbox, job_text, wait_for):
    jobs = _jobs(tmp_path, {"c": job_text("c", on_stop="cancel")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        with running(store, sandbox, jobs):
            assert wait_for(lambda: len(_book(sandbox)) == 6)
        assert _book(sandbox) == ()
        assert store.lease_holder("c") is None


def test_reload_adds_changes_and_removes_jobs(tmp_path, sandbox, job_text, wait_for):
    first = _jobs(tmp_path, {"r": job_text("r", levels=2)})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, sandbox, first) as daemon:
        assert wait_for(lambda: len(_book(sandbox)) == 4)
        changed = _jobs(
            tmp_path, {"r": job_text("r", levels=4, on_stop="cancel"), "e": job_text("e", symbol="ethusdt", size="0.5")}
        )
        daemon.reload(changed)
        assert set(daemon.jobs) == {"r", "e"}
        assert wait_for(lambda: len(_book(sandbox)) == 8 and len(_book(sandbox, "ethusdt")) == 6)
        daemon.reload([j for j in changed if j.name == "e"])
        assert set(daemon.jobs) == {"e"}
        assert wait_for(lambda: _book(sandbox) == ())


def test_metrics_report_passes(tmp_path, sandbox, job_text, wait_for):
    jobs = _jobs(tmp_path, {"m": job_text("m")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, sandbox, jobs) as daemon:
        server = HealthServer(daemon.metrics, "127.0.0.1", 0, daemon.ready)
        server.start()
        try:
            assert wait_for(daemon.ready)
            assert wait_for(lambda: len(_book(sandbox)) == 6)
            text = requests.get(f"{server.url}/metrics", timeout=5).text
            assert 'rebalancer_passes_total{job="m",result="ok"} 1.0' in text
            assert 'rebalancer_orders_placed_total{job="m"} 6.0' in text
            assert "rebalancer_last_success_timestamp_seconds" in text
            assert requests.get(f"{server.url}/livez", timeout=5).status_code == 200
            assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200
            assert requests.get(f"{server.url}/nope", timeout=5).status_code == 404
        finally:
            server.stop()


def test_run_once_reports_success_and_failure(tmp_path, sandbox, job_text):
    good = _jobs(tmp_path, {"o": job_text("o")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        assert run_once(good, store, _opener(sandbox)) is True
        assert len(_book(sandbox)) == 6
        sandbox.faults.reject_place = 1.0
        bad = _jobs(tmp_path, {"o2": job_text("o2", symbol="ethusdt", size="0.5")})
        assert run_once(bad, store, _opener(sandbox)) is False


def test_backoff_grows_and_is_capped():
    delays = [backoff_delay(n, base=1, cap=30) for n in range(0, 10)]
    assert delays[0] == 0
    assert all(0.8 * min(30, 2 ** (n - 1)) <= d <= 1.2 * min(30, 2 ** (n - 1)) for n, d in enumerate(delays) if n)
    assert max(delays) <= 36


def test_an_overrunning_pass_is_never_doubled(tmp_path, sandbox, job_text, wait_for):
    sandbox.faults.latency = 0.3
    jobs = _jobs(tmp_path, {"slow": job_text("slow", every="100ms")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, sandbox, jobs) as daemon:
        assert wait_for(lambda: len(_book(sandbox)) == 6, timeout=30)
        assert wait_for(lambda: _sample(daemon, "rebalancer_passes_missed_total", job="slow") >= 1, timeout=30)
    placed = [o for o in _book(sandbox)]
    assert len(placed) == 6
    assert all(isinstance(o.price, Decimal) for o in placed)


class _Lines(logging.Handler):
    """Collects the structured fields of the daemon's ``pass`` lines."""

    def __init__(self) -> None:
        super().__init__()
        self.passes: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "pass":
            self.passes.append(dict(vars(record)))


def test_lateness_against_the_schedule_is_logged_and_observed(tmp_path, sandbox, job_text, wait_for):
    jobs = _jobs(tmp_path, {"late": job_text("late", every="200ms")})
    lines = _Lines()
    logger = logging.getLogger("rebalancer.daemon")
    logger.addHandler(lines)
    level = logger.level
    logger.setLevel(logging.DEBUG)  # passes with no changes are logged at debug
    try:
        with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, sandbox, jobs) as daemon:
            assert wait_for(lambda: len(lines.passes) >= 4)
            observed = _sample(daemon, "rebalancer_pass_lateness_seconds_count", job="late")
            total = _sample(daemon, "rebalancer_pass_lateness_seconds_sum", job="late")
            direct = daemon.run_pass_now("late")
            assert direct is not None
    finally:
        logger.removeHandler(lines)
        logger.setLevel(level)
    scheduled = [p for p in lines.passes if "late_ms" in p]
    assert len(scheduled) >= 4
    assert all(isinstance(p["late_ms"], int) and 0 <= p["late_ms"] < 5000 for p in scheduled)
    assert observed >= 4
    assert 0 <= total < observed * 5
    assert any("late_ms" not in p for p in lines.passes)  # run_pass_now was not scheduled: no lateness


def test_interval_jobs_are_phased_across_their_period(tmp_path, sandbox, job_text):
    """Many jobs on one period must not all come due at one instant (the ones at the back would starve)."""
    from datetime import UTC, datetime, timedelta

    from rebalancer.scheduler.timing import make_trigger

    jobs = _jobs(tmp_path, {f"j{i}": job_text(f"j{i}", every="10s") for i in range(20)})
    now = datetime(2026, 1, 1, tzinfo=UTC)
    firsts = {make_trigger(job, now).get_next_fire_time(None, now) for job in jobs}
    assert len(firsts) >= 15
    assert all(now <= first < now + timedelta(seconds=10) for first in firsts)


def test_a_reload_that_fails_unexpectedly_keeps_the_running_jobs(tmp_path, sandbox, job_text, monkeypatch, caplog):
    from rebalancer.daemon import supervisor

    def broken_reader(path):
        raise ValueError("reader bug\nsecond line")

    (tmp_path / "u.yaml").write_text(job_text("u", levels=1))
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        sup = supervisor.Supervisor([str(tmp_path)], store, daemon=Daemon(store, opener=_opener(sandbox)))
        sup.start()
        try:
            monkeypatch.setattr(supervisor, "read_job_file", broken_reader)
            with caplog.at_level(logging.ERROR, logger="rebalancer.daemon"):
                sup.reload()
            assert list(sup.daemon.jobs) == ["u"]
            monkeypatch.setattr(supervisor, "expand_paths", broken_reader)
            assert sup.reload() is None
            assert list(sup.daemon.jobs) == ["u"]
        finally:
            sup.stop()
    [record] = [r for r in caplog.records if r.getMessage().startswith("reload refused a job file")]
    assert record.problem == f"{tmp_path / 'u.yaml'}:1:1: cannot read the job files: ValueError: reader bug second line"
    [record] = [r for r in caplog.records if r.getMessage() == "reload refused, keeping the running jobs"]
    assert record.problem == "cannot list the job files: ValueError: reader bug second line"


def test_run_once_runs_every_job_when_one_fails_unexpectedly(tmp_path, sandbox, job_text, caplog):
    jobs = _jobs(tmp_path, {"first": job_text("first", symbol="ethusdt", size="0.5"), "second": job_text("second")})
    working = _opener(sandbox)

    def opener(job):
        if job.name == "first":
            raise ArithmeticError("a bug in the first job's pass")
        return working(job)

    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, caplog.at_level(logging.ERROR):
        assert run_once(jobs, store, opener) is False
    assert len(_book(sandbox)) == 6, "the second job ran"
    (failed,) = [r for r in caplog.records if getattr(r, "job", None) == "first"]
    assert failed.getMessage() == "pass failed" and failed.error == "ArithmeticError: a bug in the first job's pass"


def test_a_state_file_deleted_under_the_daemon_fails_its_passes_with_a_clear_error(
    tmp_path, sandbox, job_text, wait_for, caplog
):
    jobs = _jobs(tmp_path, {"gone": job_text("gone")})
    path = tmp_path / "state.db"
    with StateStore(f"sqlite:///{path}") as store, running(store, sandbox, jobs) as daemon:
        assert wait_for(lambda: _sample(daemon, "rebalancer_passes_total", job="gone", result="ok") >= 1)
        with caplog.at_level(logging.ERROR, logger="rebalancer"):
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            assert wait_for(lambda: _sample(daemon, "rebalancer_passes_total", job="gone", result="error") >= 1)
    errors = [getattr(r, "error", "") for r in caplog.records if getattr(r, "job", None) == "gone"]
    assert any("the database file was deleted or replaced" in e for e in errors), errors


def test_stop_releases_every_lease_even_of_a_pass_that_outlives_stop_wait(tmp_path, sandbox, job_text, wait_for):
    jobs = _jobs(tmp_path, {"a": job_text("a", levels=1), "b": job_text("b", symbol="ethusdt", size="0.5")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        daemon = Daemon(store, opener=_opener(sandbox), stop_wait=0.1)
        daemon.start(jobs)
        slots = [daemon._table.get(name) for name in ("a", "b")]
        try:
            assert wait_for(daemon.ready)
            assert [store.lease_holder(name) for name in ("a", "b")] == [daemon.holder] * 2
            sandbox.faults.latency = 1.0
            assert wait_for(lambda: any(slot.running.locked() for slot in slots))
        finally:
            daemon.stop()
        assert [store.lease_holder(name) for name in ("a", "b")] == [None, None]
        sandbox.faults.latency = 0.0
        assert wait_for(lambda: not any(slot.running.locked() for slot in slots), timeout=30)
        assert [store.lease_holder(name) for name in ("a", "b")] == [None, None]  # the late pass took nothing back
