"""The stream benchmark's quick profile runs end to end as the README runs it (a script, in a subprocess), and its
arithmetic is right. Timings are reported, never asserted: a shared CI machine is not a stopwatch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from bench.stream_bench import MODES, jobs_per_key, request_rates

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_quick_profile_measures_every_mode_and_the_scale_part(tmp_path: Path) -> None:
    out = tmp_path / "stream.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "stream_bench.py"), "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| stream |" in done.stdout
    doc = json.loads(out.read_text())
    side = doc["side_by_side"]
    assert side["failed_passes"] == 0
    for mode in MODES:
        latency = side["latency_ms"][mode]
        # One job per group, three moves: every move got its batch within the period plus 5 s, in every mode.
        assert latency["samples"] == 3 and latency["missed"] == 0, (mode, latency)
        assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    rates = side["requests_per_job_minute"]
    for market in ("calm", "trending"):
        # Every pass of every mode reads the open orders; a polling pass also needs a ticker, shared per deployment.
        for mode in MODES:
            assert rates[f"{market}-{mode}"]["by_path"].get("v2/new_order", 0) > 0, (market, mode)
        assert rates[f"{market}-poll"]["by_path"].get("get_allticker", 0) > 0
        assert rates[f"{market}-fastpoll"]["own"] > rates[f"{market}-poll"]["own"]
        for mode in MODES:
            assert side["budget"][market][mode]["jobs_per_key"] >= 1
    scale = doc["scale"]
    assert scale["jobs"] == 20 and scale["failed_passes"] == 0
    assert scale["reaction_ms"]["samples"] + scale["reaction_ms"]["missed"] == 20


@pytest.mark.parametrize(
    ("own", "shared", "jobs"),
    [
        (60.0, 60.0, 2),  # polling every second: the shared ticker saturates at 60/min, 120 left for own reads
        (60.0, 0.0, 3),
        (6.0, 0.0, 30),
        (6.0, 6.0, 20),  # 20 jobs: 120 own + min(60, 120) shared = 180 exactly
        (6.0, 3.0, 20),  # 20 × 6 + 60 = 180 beats 180 / 9 = 20 as well
        (1.0, 0.1, 163),  # 163 × 1.1 = 179.3
        (200.0, 0.0, 0),  # one job alone is over the budget
        (0.0, 5.0, None),  # a job that spends nothing of its own has no bound
    ],
)
def test_jobs_per_key_is_the_largest_count_that_fits_180_requests_a_minute(
    own: float, shared: float, jobs: int | None
) -> None:
    assert jobs_per_key(own, shared) == jobs
    if jobs is not None:
        spent = jobs * own + min(60.0, jobs * shared)
        assert spent <= 180 + 1e-9
        assert (jobs + 1) * own + min(60.0, (jobs + 1) * shared) > 180


def test_request_rates_split_own_from_shared_reads_per_job_and_minute() -> None:
    before = Counter({"v2/new_order": 10, "get_allticker": 4})
    after = Counter(
        {"v2/new_order": 40, "get_allticker": 10, "mass_replaceV2": 6, "user/account": 2, "common/symbols": 2}
    )
    rates = request_rates(before, after, jobs=2, minutes=3.0)
    assert rates["own"] == round((30 + 6 + 2) / 6, 2)
    assert rates["shared"] == round((6 + 2) / 6, 2)
    assert rates["writes"] == 1.0 and rates["reads"] == round((30 + 6 + 2 + 2) / 6, 2)
    assert rates["by_path"]["v2/new_order"] == 5.0
