"""The pre-trade gate in the daemon (``run``) and at its stop (``on_stop: cancel``), in-process over real HTTP: a
planner bug's placement and its cancel of a manual order are dropped and counted, the rest is sent."""

from __future__ import annotations

from decimal import Decimal

import requests

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.scheduler.metrics import HealthServer
from rebalancer.state.store import StateStore
from tests.gatekit import cancel_of, planner_bug, second_buy_zero


def test_the_daemon_drops_and_counts_a_planner_bug_and_its_stop_cancels_only_its_own(
    tmp_path, sandbox, job_text, wait_for, monkeypatch
):
    sandbox.engine.set_price("btcusdt", 30000)
    manual = str(sandbox.engine.place(sandbox.api_key, "btcusdt", Side.BUY, Decimal("29500.00"), Decimal("0.0300")))
    path = tmp_path / "g.yaml"
    path.write_text(job_text("g", ownership="tracked", on_stop="cancel"))
    bug_place, bug_cancel = second_buy_zero(), cancel_of(manual)
    planner_bug(monkeypatch, lambda plan: bug_place(plan) + bug_cancel(plan))
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}

    def book() -> tuple:
        return sandbox.engine.open_orders(sandbox.api_key, "btcusdt")

    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        daemon = Daemon(store, opener=lambda job: open_exchange(job, env), stop_wait=10)
        daemon.start([load_job(path)])
        server = HealthServer(daemon.metrics, "127.0.0.1", 0, daemon.ready)
        server.start()
        try:
            assert wait_for(lambda: len(book()) == 7)
            assert manual in {o.id for o in book()}
            assert all(o.price != Decimal("20000.00") for o in book())

            def refusals() -> float:
                text = requests.get(f"{server.url}/metrics", timeout=5).text
                line = next(
                    (x for x in text.splitlines() if x.startswith('rebalancer_gate_refusals_total{job="g"}')), ""
                )
                return float(line.split()[-1]) if line else 0.0

            assert wait_for(lambda: refusals() >= 2)
            assert refusals() % 2 == 0  # each pass refuses the bug's placement and its cancel, nothing else
        finally:
            server.stop()
            daemon.stop()
        assert [o.id for o in book()] == [manual]  # on_stop cancelled the job's own orders, never the manual one
