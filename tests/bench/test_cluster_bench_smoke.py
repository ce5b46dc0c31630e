"""The cluster benchmark's quick profile still runs end to end (members and the single daemon on the same jobs) and
reports CPU per pass for both; the figures themselves are not asserted (timings on a shared machine are no test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.conftest import postgres_unavailable

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_cluster_bench_quick_reports_cpu_per_pass_for_members_and_the_daemon(tmp_path: Path) -> None:
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    out = tmp_path / "cluster.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "cluster_bench.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert [run["members"] for run in doc["runs"]] == [1, 2]
    for row in [*doc["runs"], doc["daemon"]]:
        assert row["passes_per_s"] > 0 and row["cpu_ms_per_pass"] > 0, row
    assert sum(doc["runs"][1]["passes_per_member"]) > 0
    assert "takeover_s" in doc["runs"][1]
    assert doc["daemon"]["beside_members"] == 1, "the daemon is measured beside the one-member run, same window"
    assert doc["member_vs_daemon"] == round(doc["runs"][0]["cpu_ms_per_pass"] / doc["daemon"]["cpu_ms_per_pass"], 2)
