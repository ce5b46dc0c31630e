"""The pre-trade gate on a cluster member, in-process against PostgreSQL and the sandbox over real HTTP: a planner
bug's placement is dropped and counted in the member's metrics; the rest of the batch is sent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rebalancer.cluster.member import Member
from rebalancer.jobfile.load import load_job
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from tests.cluster.conftest import account, sandbox_job
from tests.gatekit import planner_bug, second_buy_zero


def test_a_member_drops_and_counts_a_planner_bugs_placement(cluster_url: str, sandbox, tmp_path: Path, monkeypatch):
    sandbox.engine.set_price("btcusdt", 30000)
    path, opener = sandbox_job(sandbox, tmp_path, levels=3)
    key = account(0)[0]
    planner_bug(monkeypatch, second_buy_zero())

    with StateStore(cluster_url) as store:
        member = Member(store, name="m", opener=opener)
        member.start([load_job(path)])
        try:
            assert member.reconcile("c000", to_ms(datetime.now(UTC)), pass_id=1) == "ok"
            book = sandbox.engine.open_orders(key, "btcusdt")
            assert len(book) == 6 and all(o.price != Decimal("20000.00") for o in book)
            sample = member.metrics.registry.get_sample_value("rebalancer_gate_refusals_total", {"job": "c000"})
            assert sample == 1.0
            (last,) = store.history("c000", limit=1)
            assert any(w.startswith("gate refused buy[0] BUY 20000.00") for w in last.warnings)
        finally:
            member.stop()
