"""The daemon learns the fills of its jobs' orders (made by the sandbox's control endpoint) and counts them."""

from __future__ import annotations

from decimal import Decimal

import requests

from rebalancer.models import Side
from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _book, _jobs, _sample
from tests.daemonkit import running


def test_a_fill_made_through_the_control_endpoint_is_counted_once_in_metrics_and_status(
    tmp_path, sandbox, job_text, wait_for
):
    jobs = _jobs(tmp_path, {"f": job_text("f")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, jobs) as daemon:
        assert wait_for(lambda: len(_book(sandbox)) == 6)
        daemon.run_pass_now("f")
        sell = min((o for o in _book(sandbox) if o.side is Side.SELL), key=lambda o: o.price)
        before = max((f.trade_id for f in sandbox.engine.fills), default=0)
        crossed = {"symbol": "btcusdt", "price": str(sell.price * 1001 / 1000)}
        answer = requests.post(f"{sandbox.url}/sandbox/price", params=crossed, timeout=5)
        assert answer.status_code == 200, answer.text
        assert wait_for(lambda: _sample(daemon, "rebalancer_filled_volume_total", job="f", side="SELL") > 0)
        daemon.run_pass_now("f")
        made = [f for f in sandbox.engine.fills if f.trade_id > before]
        sold = sum((f.volume for f in made if f.side is Side.SELL), Decimal(0))
        assert sold > 0 and not [f for f in made if f.side is Side.BUY]
        assert _sample(daemon, "rebalancer_filled_volume_total", job="f", side="SELL") == float(sold)
        assert _sample(daemon, "rebalancer_filled_volume_total", job="f", side="BUY") == 0.0
        (status,) = [s for s in store.job_statuses() if s.job == "f"]
        assert status.fills == {"SELL": sold}
