"""A cluster member's pass that trips the loss limit tells the job's webhook, as every other path does."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rebalancer.cluster.member import Member, cluster_opener
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from tests.cluster.conftest import SYMBOL, account, job_text
from tests.daemon.conftest import wait_for
from tests.webhooks import receiver


def test_a_member_that_trips_the_loss_limit_tells_the_webhook(cluster_url: str, sandbox, tmp_path: Path) -> None:
    key, secret = account(0)
    sandbox.engine.add_account(key, secret, {"usdt": 100000, "btc": 10})
    with receiver() as (url, got), StateStore(cluster_url) as store:
        text = job_text(0, sandbox.url, levels=1).replace("ownership: symbol", "ownership: tracked")
        text = text.replace("post_only: true}", 'post_only: true, max_loss: "0.1"}')
        path = tmp_path / "c000.yaml"
        path.write_text(text + f'notify: {{webhook: "{url}"}}\n')
        job = load_job(path)
        member = Member(store, name="m", opener=cluster_opener(store, {"RB_KEY_0": key, "RB_SECRET_0": secret}))
        member.start([job])
        try:
            assert member.reconcile(job.name, to_ms(datetime.now(UTC)), pass_id=1) == "ok"
            (sell,) = [o for o in sandbox.engine.open_orders(key, SYMBOL) if o.side is Side.SELL]
            sandbox.engine.fill(int(sell.id))
            sandbox.engine.set_price(SYMBOL, sandbox.engine.mid(SYMBOL) * Decimal("1.05"))
            passes = iter(range(2, 10_000))

            def tripped() -> bool:
                # A member's jobs share a ticker read for a second (as the daemon's): passes until one sees the move.
                member.reconcile(job.name, to_ms(datetime.now(UTC)), pass_id=next(passes))
                return store.paused_by(job.name)[0] == "max_loss"

            assert wait_for(tripped, 30, 0.2)
            assert wait_for(lambda: [e["kind"] for e in got] == ["max_loss"])
        finally:
            member.stop()
