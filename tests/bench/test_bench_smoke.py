"""The churn benchmark's quick profile still runs end to end and reports every policy in every regime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICIES = {"replace_all", "all_or_nothing", "per_order", "rebalancer", "rebalancer_shared"}
LATE = {"rebalancer", "rebalancer_shared"}


def test_churn_quick_profile_writes_every_policy(tmp_path: Path) -> None:
    out = tmp_path / "churn.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "churn.py"), "--quick", "--passes", "6", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert set(document["results"]) == {"calm", "trending", "volatile"}
    for regime, rows in document["results"].items():
        assert set(rows) == POLICIES, regime
        base = rows["rebalancer"]
        # The first pass places the whole ladder (40 orders) for everyone: operations are never zero. A quiet pass of
        # rebalancer reads the ticker and the book (2 requests), the others the balances too (3).
        assert all(row["ops_per_pass"] > 0 for row in rows.values())
        assert base["requests_per_pass"] >= 2
        assert all(row["requests_per_pass"] >= 3 for name, row in rows.items() if name not in LATE)
        # The account is the same either way: only the balance reads differ, never fewer when nothing is carried.
        shared = rows["rebalancer_shared"]
        assert shared["ops_per_pass"] == base["ops_per_pass"]
        assert shared["requests_per_pass"] >= base["requests_per_pass"]
        # rebalancer sends exactly the minimum edit, per_order the same edit one request at a time.
        assert base["ops_per_pass"] == base["bound_per_pass"]
        assert rows["per_order"]["ops_per_pass"] == base["ops_per_pass"]
        assert rows["per_order"]["requests_per_pass"] > base["requests_per_pass"]
        assert rows["replace_all"]["ops_per_pass"] > base["ops_per_pass"]
        assert base["ops_vs_rebalancer"] == 1.0
    assert "rebalancer" in done.stdout and "ops/pass" in done.stdout
