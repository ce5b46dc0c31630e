"""A cluster member follows its jobs' market stream: a move of the sandbox's market sets the job's next due time to
now (its schedule is an hour), and the pass the dispatcher then hands out reads its prices from the stream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancer.cluster.member import Member
from rebalancer.engine.connect import open_exchange
from rebalancer.exchange.marketdata import forget as forget_market_data
from rebalancer.jobfile.load import load_job
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from tests.stream.conftest import Streamed, stream_server, streamed, wait_for  # noqa: F401  (fixtures)

ENV = {"REBALANCER_API_KEY": DEMO_API_KEY, "REBALANCER_SECRET_KEY": DEMO_SECRET_KEY}


def test_a_stream_wake_makes_the_job_due_now_on_a_member(
    cluster_url: str,
    streamed: Streamed,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="rebalancer.cluster")
    forget_market_data()
    path = tmp_path / "w1.yaml"
    path.write_text(
        f"""\
version: 1
name: w1
symbol: btcusdt
exchange: {{url: "{streamed.url}", stream: "{streamed.stream_url}", stream_stale: 600s}}
schedule: {{every: 1h, min_gap: 100ms}}
reference: mid
ladder:
  buy: {{levels: 2, first: 0.5%, step: 0.25%, size: "0.01"}}
  sell: {{levels: 2, first: 0.5%, step: 0.25%, size: "0.01"}}
tolerance: {{price: 0.1%, size: 10%}}
limits: {{}}
"""
    )
    with StateStore(cluster_url) as store:
        member = Member(store, name="m", opener=lambda job: open_exchange(job, ENV))
        member.start([load_job(path)])
        try:
            assert member.reconcile("w1", to_ms(datetime.now(UTC)), pass_id=1) == "ok"
            store.set_next_due({"w1": to_ms(datetime.now(UTC)) + 3_600_000})
            wait_for(lambda: member.streams.state("w1").source == "stream", "the member follows the stream")  # type: ignore[union-attr]
            mid = streamed.engine.market_view("btcusdt").ticker.mid
            assert mid is not None
            streamed.engine.set_price("btcusdt", mid * Decimal("1.003"))
            wait_for(lambda: store.cluster_job("w1").next_due_ms <= to_ms(datetime.now(UTC)), "due now")  # type: ignore[union-attr]
            tickers = streamed.server.app.request_counts().get("/open/api/get_ticker", 0)
            due = store.cluster_job("w1").next_due_ms  # type: ignore[union-attr]  (the time the wake set)
            assert member.reconcile("w1", due, pass_id=2) == "ok"
            assert streamed.server.app.request_counts().get("/open/api/get_ticker", 0) == tickers
            (woken,) = store.history("w1", limit=1)
            assert (woken.wake, woken.prices) == ("reference", "stream")
            lines = [r.__dict__ for r in caplog.records if r.getMessage() == "pass"]
            assert lines[-1]["wake"] == "reference"
            assert member.reconcile("w1", due + 3_600_000, pass_id=3) in ("ok", "no_changes")  # the timer's, later
            assert store.history("w1", limit=1)[0].wake == "timer"
            assert member.metrics.registry.get_sample_value(
                "rebalancer_stream_wakes_total", {"job": "w1", "reason": "reference"}
            )
        finally:
            member.stop()
