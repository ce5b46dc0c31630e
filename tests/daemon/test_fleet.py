"""``rebalancer run --workers N``: the split of the jobs, the merged ``/metrics``, and the processes for real."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rebalancer.cli.main import main
from rebalancer.daemon.fleet import labelled, merged, share_of

# The split must not change between versions: a job that moved at an upgrade would run in two workers at once
# until the old lease expired.
SPLITS = [("a", 3, 0), ("b", 3, 2), ("btc-ladder", 2, 0), ("btc-ladder", 3, 1), ("job-17", 4, 1), ("é", 5, 1)]


@pytest.mark.parametrize(("name", "count", "share"), SPLITS)
def test_the_split_by_name_is_fixed(name: str, count: int, share: int) -> None:
    assert share_of(name, count) == share


@given(st.text(min_size=1, max_size=64), st.integers(1, 64))
def test_every_job_falls_in_exactly_one_share(name: str, count: int) -> None:
    assert [share_of(name, count) == share for share in range(count)].count(True) == 1


def _exposition(jobs: list[str], waiting: int) -> bytes:
    registry = CollectorRegistry()
    passes = Counter("rebalancer_passes", "Passes made.", ["job"], registry=registry)
    for job in jobs:
        passes.labels(job).inc()
    Gauge("rebalancer_waiting", "Jobs due and waiting.", registry=registry).set(waiting)
    return generate_latest(registry)


def test_merged_keeps_one_header_per_family_and_tells_the_workers_apart() -> None:
    text = merged([_exposition(["a", "c"], 3), _exposition(["b"], 5)]).decode()
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert text.count("# TYPE rebalancer_passes_total counter") + text.count("# TYPE rebalancer_passes counter") == 1
    samples = [s for s in families["rebalancer_passes"].samples if s.name.endswith("_total")]
    totals = {(s.labels["job"], s.labels["worker"]) for s in samples}
    assert totals == {("a", "0"), ("c", "0"), ("b", "1")}
    waiting = {s.labels["worker"]: s.value for s in families["rebalancer_waiting"].samples}
    assert waiting == {"0": 3.0, "1": 5.0}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('m_total{job="a b{c}"} 1.0', 'm_total{worker="2",job="a b{c}"} 1.0'),
        ("m 4.0", 'm{worker="2"} 4.0'),
        ("m{} 4.0", 'm{worker="2"} 4.0'),
    ],
)
def test_a_sample_gains_the_worker_label_whatever_its_labels(line: str, expected: str) -> None:
    ((_header, samples),) = labelled(f"# HELP m x\n# TYPE m gauge\n{line}\n".encode(), 2)
    assert samples == [expected]


def _free_port() -> int:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        return int(listener.getsockname()[1])


def _get(url: str) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5)
    except requests.RequestException:
        return None


def _passes_by_worker(metrics: str) -> dict[str, set[str]]:
    """Which worker labels each job's pass counter carries, from a ``/metrics`` text."""
    found: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(metrics):
        if family.name == "rebalancer_passes":
            for sample in family.samples:
                if sample.name.endswith("_total") and "job" in sample.labels and sample.value > 0:
                    found.setdefault(sample.labels["job"], set()).add(sample.labels["worker"])
    return found


def _leases_held(state: Path, job: str | None = None) -> int:
    """How many leases (of every job, or of ``job``) are held at this moment."""
    with sqlite3.connect(state / "state.db") as db:
        now_ms = int(time.time() * 1000)
        query = "SELECT count(*) FROM leases WHERE expires_at_ms > ? AND (? IS NULL OR job = ?)"
        return int(db.execute(query, (now_ms, job, job)).fetchone()[0])


def _worker_pids(parent: int) -> list[int]:
    return [int(pid) for pid in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]


def test_parent_and_workers_share_the_jobs_serve_one_metrics_reload_and_stop_clean(tmp_path, job_text, spawn, wait_for):
    folder = tmp_path / "jobs"
    folder.mkdir()
    names = [f"w{i}" for i in range(6)]
    for name in names:
        (folder / f"{name}.yaml").write_text(job_text(name, levels=1, ownership="tracked"))
    http = f"127.0.0.1:{_free_port()}"
    daemon = spawn(str(folder), "--workers", "2", "--http", http, "--no-watch")
    assert wait_for(lambda: (r := _get(f"http://{http}/readyz")) is not None and r.status_code == 200, timeout=60)
    expected = {name: {str(share_of(name, 2))} for name in names}
    assert {share_of(name, 2) for name in names} == {0, 1}, "the test needs jobs in both shares"
    # One worker process only: the jobs of share 0 (worker="0") get their passes from the parent itself.
    assert wait_for(lambda: len(_worker_pids(daemon.process.pid)) == 1, timeout=30)
    assert wait_for(lambda: _passes_by_worker(_get(f"http://{http}/metrics").text) == expected, timeout=30)

    (folder / "w6.yaml").write_text(job_text("w6", levels=1, ownership="tracked"))
    daemon.send(signal.SIGHUP)
    expected["w6"] = {str(share_of("w6", 2))}
    assert wait_for(lambda: _passes_by_worker(_get(f"http://{http}/metrics").text) == expected, timeout=30)

    workers = _worker_pids(daemon.process.pid)
    assert len(workers) == 1
    assert _leases_held(tmp_path / "state") == len(expected)
    assert daemon.stop(signal.SIGTERM) == 0
    assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=10)
    assert _leases_held(tmp_path / "state") == 0
    assert "Traceback" not in daemon.log
    assert daemon.log.count("daemon stopped") == 2


def test_a_worker_that_dies_stops_the_others_and_the_parent_fails(tmp_path, job_text, spawn, wait_for):
    folder = tmp_path / "jobs"
    folder.mkdir()
    for name in ("a", "b"):  # a in the parent's own share 0, b in share 2 (SPLITS)
        (folder / f"{name}.yaml").write_text(job_text(name, levels=1, ownership="tracked"))
    daemon = spawn(str(folder), "--workers", "3", "--no-watch")
    assert wait_for(lambda: daemon.log.count("daemon started") == 3, timeout=60)
    assert wait_for(lambda: _leases_held(tmp_path / "state", "a") == 1, timeout=30)
    first, *others = _worker_pids(daemon.process.pid)
    assert len(others) == 1
    os.kill(first, signal.SIGKILL)
    assert daemon.process.wait(30) == 1
    assert re.search(r"a worker stopped; stopping the others", daemon.log)
    assert not any(_alive(pid) for pid in others)
    assert _leases_held(tmp_path / "state", "a") == 0, "the parent's own passes stopped and released their lease"
    assert daemon.log.count("daemon stopped") == 2  # the parent's own and the other worker's


def _alive(pid: int) -> bool:
    """True unless the process has exited (a zombie not yet reaped counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--workers", "2", "--once"], "it does not go with --once"),
        (["--workers", "2", "--cluster"], "it does not go with --cluster"),
        (["--workers", "0"], "'--workers': 0 is not in the range 1<=x<=64"),
        (["--workers", "two"], "'--workers': 'two' is not a valid integer"),
    ],
)
def test_bad_workers_is_one_error_line_and_nothing_runs(tmp_path, job_text, daemon_env, sandbox, args, said):
    job = tmp_path / "o.yaml"
    job.write_text(job_text("o"))
    result = CliRunner().invoke(main, ["run", str(job), *args], env=daemon_env)
    assert result.exit_code == 1, result.output
    assert said in result.stderr
    assert "Traceback" not in result.output
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()


def test_workers_stop_when_the_parent_is_killed(tmp_path, job_text, spawn, wait_for):
    job = tmp_path / "a.yaml"
    job.write_text(job_text("a", levels=1, ownership="tracked"))  # share 1 of 2: the worker's, not the parent's
    daemon = spawn(str(job), "--workers", "2", "--no-watch")
    assert wait_for(lambda: daemon.log.count("daemon started") == 2, timeout=60)
    assert wait_for(lambda: _leases_held(tmp_path / "state", "a") == 1, timeout=30)
    workers = _worker_pids(daemon.process.pid)
    daemon.kill()
    assert wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=30)
    assert daemon.log.count("the parent process is gone: stopping") == 1
    assert _leases_held(tmp_path / "state") == 0
