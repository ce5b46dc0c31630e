"""The fills ledger against the sandbox: fills made by its control (``engine.fill``) and by its walking market
(``engine.advance``) are learnt once each, from open orders' deal volume and from ``order_info`` of orders gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rebalancer.engine.runner import run_pass
from rebalancer.models import Side
from rebalancer.state.store import StateStore
from tests.reliability.kit import fast_client, load

T0 = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _wall(moments: list[datetime]):  # type: ignore[no-untyped-def]
    return lambda: moments[0]


def test_a_partial_then_full_fill_is_learnt_once_each_with_its_level(sandbox, tmp_path) -> None:
    job = load(tmp_path, "ledger", sandbox.url, ownership="tracked")
    now = [T0]
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        first = run_pass(job, client, store, apply=True, mode="run", wall=_wall(now))
        assert first.result == "ok" and first.fills == ()
        buy = max(
            (o for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol) if o.side is Side.BUY),
            key=lambda o: o.price,
        )
        sandbox.engine.fill(int(buy.id), buy.volume / 4)
        now[0] = T0 + timedelta(seconds=30)
        second = run_pass(job, client, store, apply=True, mode="run", wall=_wall(now))
        assert [(f.order_id, f.side, f.volume, f.level) for f in second.fills] == [
            (buy.id, Side.BUY, buy.volume / 4, "buy[0]")
        ]
        sell = min(
            (o for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol) if o.side is Side.SELL),
            key=lambda o: o.price,
        )
        sandbox.engine.fill(int(sell.id))  # all of it: the order leaves the book, order_info tells what it did
        now[0] = T0 + timedelta(seconds=60)
        third = run_pass(job, client, store, apply=True, mode="run", wall=_wall(now))
        assert [(f.order_id, f.side, f.volume, f.deal_volume, f.level) for f in third.fills] == [
            (sell.id, Side.SELL, sell.volume, sell.volume, "sell[0]")
        ]
        now[0] = T0 + timedelta(seconds=90)
        fourth = run_pass(job, client, store, apply=True, mode="run", wall=_wall(now))
        assert fourth.fills == (), "the partly filled buy, cancelled since, adds nothing; nothing is learnt twice"
        ledger = store.fills(job.name)
        assert [(f.side, f.volume) for f in ledger] == [(Side.BUY, buy.volume / 4), (Side.SELL, sell.volume)]
        assert store.fill_totals()[job.name] == {"BUY": buy.volume / 4, "SELL": sell.volume}
        second_id = store.history(job.name)[2].id
        assert [f.volume for f in store.fills(job.name, pass_id=second_id)] == [buy.volume / 4]


def test_recording_the_same_fill_twice_stores_it_once(tmp_path) -> None:
    from rebalancer.core.fills import Fill

    fill = Fill("7", Side.SELL, Decimal("101"), Decimal("0.5"), Decimal("0.5"), T0, "sell[0]")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store:
        store.record_fills("j", None, [fill], [], [], T0)
        store.record_fills("j", None, [fill], [], [], T0)
        assert store.fills("j") == [fill]


def test_the_walking_market_fills_orders_and_the_ledger_learns_them(sandbox, tmp_path) -> None:
    job = load(tmp_path, "walker", sandbox.url, ownership="tracked")
    now = [T0]
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        run_pass(job, client, store, apply=True, mode="run", wall=_wall(now))
        before = {o.id: o for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}
        learnt = []
        for step in range(1, 40):
            sandbox.engine.advance(3600)
            now[0] = T0 + timedelta(minutes=step)
            learnt += run_pass(job, client, store, apply=True, mode="run", wall=_wall(now)).fills
            if learnt:
                break
        assert learnt, "the walking market crossed no order in 39 hours"
        for fill in learnt:
            if fill.order_id in before:
                assert fill.price == before[fill.order_id].price and fill.side is before[fill.order_id].side
            assert fill.volume > 0
        assert store.fills(job.name) == learnt
