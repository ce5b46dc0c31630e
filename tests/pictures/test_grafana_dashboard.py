"""deploy/grafana-dashboard.json: valid, per job, and every series it asks for is one the daemon exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from rebalancer.scheduler.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
_SERIES = re.compile(r"\b(rebalancer_[a-z_]+)")


def _exported() -> set[str]:
    """Every series name a daemon's registry exposes (counters with ``_total``, histograms with ``_bucket``...)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count"))
    return names


def _exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_every_series_the_dashboard_asks_for_is_exported() -> None:
    exported = _exported()
    asked = {name for expr in _exprs() for name in _SERIES.findall(expr)}
    assert asked and asked <= exported, sorted(asked - exported)


def test_the_dashboard_covers_passes_results_lateness_orders_and_open_orders_per_job() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    text = " ".join(_exprs())
    for series in (
        "rebalancer_passes_total",
        "rebalancer_pass_lateness_seconds_bucket",
        "rebalancer_orders_placed_total",
        "rebalancer_orders_cancelled_total",
        "rebalancer_orders_rejected_total",
        "rebalancer_open_orders",
    ):
        assert series in text, series
    assert "by (job, result)" in text
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert "label_values(rebalancer_passes_total, job)" in variables["job"]["definition"]
    job_series = [e for e in _exprs() if "reload" not in e]
    assert all('job=~"$job"' in e for e in job_series)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
