"""The replay benchmark's quick profile still runs end to end: a recording written, replayed once, then --vary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_replay_bench_quick_profile_reports_both_figures(tmp_path: Path) -> None:
    out = tmp_path / "replay.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replay_bench.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    market = document["market"]
    assert market["seconds"] == 1200 and market["books"] == 1201 and market["trades"] > 0
    one = document["one_replay"]
    # A 10 s schedule over 20 minutes: the first pass at the start, then one every 10 s; each reads at least twice.
    assert one["passes"] == 121 and one["requests"] >= 2 * one["passes"]
    assert one["x_real_time_cpu"] > 0 and one["wall_s"] > 0
    vary = document["vary"]
    assert vary["values"] == 2 and vary["passes"] == [121, 121] and vary["x_one_replay"] > 0
    assert vary["workers_cpu_s"] > 0 and vary["x_one_replay_cpu_on_2_idle_cores"] > 0
    assert "one replay:" in done.stdout and "--vary with 2 values" in done.stdout
