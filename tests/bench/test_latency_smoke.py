"""Smoke runs of the latency benchmarks (``--quick`` profiles) as the README runs them: as scripts, in subprocesses.

They prove the scripts still work end to end and write sensible JSON; the figures themselves are not asserted
against targets (timings on a shared CI machine are not a test).
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bench.daemon_bench import analyse, limit_verdict, percentile, table

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _run(script: str, out: Path, *args: str, timeout: float = 120.0) -> dict:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--quick", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "|" in done.stdout  # the table
    return json.loads(out.read_text())


def test_pass_latency_quick_splits_every_pass(tmp_path):
    doc = _run("pass_latency.py", tmp_path / "pass.json")
    rows = {(r["ladder_orders"], r["kind"]): r for r in doc["rows"]}
    assert set(rows) == {(n, k) for n in (20, 200) for k in ("initial", "quiet", "fills", "jump")}
    for row in rows.values():
        assert row["http_ms"] > 0 and row["wall_ms"] >= row["http_ms"]
        # Rules are cached after the first pass; a quiet pass reads the ticker and the open orders, nothing else.
        assert row["requests"] == 2 if row["kind"] == "quiet" else row["requests"] >= 3
        assert row["parse_ms"] > 0 and row["plan_ms"] > 0
    assert rows[(200, "initial")]["changes"]["place"] == 200
    assert rows[(200, "quiet")]["changes"] == {"place": 0, "cancel": 0, "keep": 200}
    assert rows[(200, "fills")]["changes"]["place"] == 20
    assert rows[(200, "quiet")]["meets_target"] in (True, False)


def test_cli_start_quick_times_both_commands(tmp_path):
    doc = _run("cli_start.py", tmp_path / "cli.json")
    assert [r["command"] for r in doc["rows"]] == ["rebalancer --help", "rebalancer validate jobs/"]
    for row in doc["rows"]:
        assert row["runs"] == 3 and 0 < row["min_ms"] <= row["median_ms"] <= row["max_ms"]
        assert any(o["module"].startswith("rebalancer") for o in row["import_offenders"])
    assert doc["interpreter_floor_ms"] > 0


def test_daemon_quick_reports_latency_lateness_and_resources(tmp_path):
    doc = _run("daemon_bench.py", tmp_path / "daemon.json", timeout=180.0)
    passes, resources = doc["passes"], doc["resources"]
    assert doc["profile"]["jobs"] == 10
    assert passes["passes"] > 0 and passes["errors"] == 0
    assert passes["duration_ms"]["p50"] is not None
    assert passes["late_ms"]["p50"] is not None  # the daemon logs late_ms on scheduled passes
    assert doc["lateness_metric_exported"]
    assert resources["daemon_cpu_s"] >= 0 and resources["daemon_rss_mib_end"] > 0
    assert doc["daemon_exit_code"] == 0
    assert doc["leases_held_after_exit"] == 0
    assert doc["metrics_first_scrape_s"] is not None and doc["metrics_scrape_s"] is not None
    before = {**doc, "source": "/elsewhere", "stop_s": 99.5}
    side_by_side = table(doc, before).splitlines()
    assert side_by_side[0] == f"| measure | /elsewhere | {doc['source']} |"
    assert all(line.count("|") == 4 for line in side_by_side)
    assert any("in 99.5 s" in line and f"in {doc['stop_s']} s" in line for line in side_by_side)


def test_daemon_quick_with_workers_counts_every_process(tmp_path):
    doc = _run("daemon_bench.py", tmp_path / "daemon.json", "--workers", "2", timeout=180.0)
    assert doc["profile"]["workers"] == 2
    assert doc["profile"]["processes"] == 2  # the parent runs a share itself beside one worker
    assert doc["passes"]["passes"] > 0 and doc["passes"]["errors"] == 0
    assert doc["passes"]["jobs_without_a_pass"] == 0
    assert doc["daemon_exit_code"] == 0 and doc["leases_held_after_exit"] == 0
    assert doc["lateness_metric_exported"]  # the parent's /metrics carries the workers' series


@pytest.mark.parametrize(
    ("daemon", "load", "workers", "verdict"),
    [
        (97.0, 1.0, 1, "saturated: the daemon's CPU (one core under the GIL)"),
        (97.0, 5.0, 2, "behind schedule on a full machine (load average 5.0 on 2 cores"),
        (170.0, 1.0, 2, "saturated: the daemon's CPU (2 worker processes, a core each at most)"),
        (60.0, 1.0, 1, "behind schedule with CPU to spare"),
    ],
)
def test_the_limit_is_read_with_the_workers_and_the_machine_load(daemon, load, workers, verdict):
    stats = {"passes": 100, "due": 1000, "late_ms": {"p99": 9000.0}}
    resources = {
        "daemon_cpu_percent_of_one_core": daemon,
        "sandbox_cpu_percent_of_one_core": 20.0,
        "window_s": 60.0,
        "load_average_end": load,
        "cores": 2,
        "daemon_cpu_ms_per_pass": 9.0,
    }
    assert limit_verdict(stats, resources, 5, workers).startswith(verdict)


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


def test_analyse_counts_stored_passes_and_takes_lateness_from_the_window_of_the_log():
    start = datetime(2026, 1, 1, tzinfo=UTC)

    def line(offset: float, msg: str, **fields: object) -> str:
        stamp = (start + timedelta(seconds=offset)).isoformat(timespec="milliseconds")
        return json.dumps({"ts": stamp, "msg": msg, **fields})

    lines = [
        line(-1, "pass", duration_ms=999, late_ms=999, placed=1),  # before the window
        line(2, "pass", duration_ms=30, late_ms=4, placed=2, cancelled=1),
        line(3, "pass", duration_ms=20, late_ms=2, placed=1),
        line(4, "pass failed", error="boom"),
        line(5, "pass skipped: the previous one overran or the daemon was late"),
        "not json",
        line(11, "pass", duration_ms=999, late_ms=999, placed=1),  # after the window
    ]
    stored = [("a", 10.0), ("a", 30.0), ("b", 20.0)]  # quiet passes are in the store, not in the log
    stats = analyse(stored, lines, start, start + timedelta(seconds=10), jobs=2, period=5)
    assert stats["passes"] == 3 and stats["due"] == 4
    assert stats["changed"] == 2 and stats["errors"] == 1 and stats["skipped"] == 1
    assert stats["duration_ms"]["p50"] == 20 and stats["duration_ms"]["max"] == 30
    assert stats["late_ms"]["p50"] == 2 and stats["late_ms"]["max"] == 4


def test_analyse_reports_passes_per_job_and_their_fairness():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = start + timedelta(seconds=10)
    stored = [("a", 1.0), ("a", 1.0), ("b", 1.0), ("b", 1.0)]
    even = analyse(stored, [], start, end, jobs=2, period=5)
    assert even["jain_fairness"] == 1.0 and even["passes_per_job"] == {"min": 2, "median": 2, "max": 2}
    skewed = analyse(stored[:2], [], start, end, jobs=2, period=5)
    assert skewed["jain_fairness"] == 0.5 and skewed["passes_per_job"]["min"] == 0
    assert skewed["jobs_without_a_pass"] == 1


def test_pass_cpu_quick_measures_quiet_and_replacing_daemon_passes(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH / "pass_cpu.py"), "--quick", "--out", str(tmp_path / "cpu.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    quiet, replacing = json.loads((tmp_path / "cpu.json").read_text())["rows"]
    assert (quiet["pass"], replacing["pass"]) == ("quiet", "replacing")
    assert quiet["levels_per_side"] == 5 and quiet["cpu_ms_median"] > 0
    assert quiet["requests_per_pass"] == 2.0, "a quiet pass reads the ticker and the open orders"
    assert quiet["orders_changed_per_pass"] == 0
    assert replacing["orders_changed_per_pass"] == 4, "a price step replaces the outermost level on each side"
    assert replacing["requests_per_pass"] > quiet["requests_per_pass"] and replacing["cpu_ms_median"] > 0
    assert quiet["connections_opened"] == replacing["connections_opened"] == 0, "one kept-alive connection"
    assert quiet["transactions_per_pass"] == 2, "the pass's read (the pause switch in it), the pass row"
    assert replacing["transactions_per_pass"] == 3, "the read, the write-ahead (fenced), the outcome"
    assert quiet["sql_statements_per_pass"] == 7, "6 SELECTs in the read (the pause switch in one), the pass row"
