"""The engine itself: fills as the market walks, exact balance moves, determinism, save/load, catching up."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.errors import StateError
from rebalancer.models import OrderStatus, Side
from rebalancer.sandbox import world
from rebalancer.sandbox.book import Reject
from rebalancer.sandbox.engine import DEMO_API_KEY, MAX_CATCH_UP_TICKS, TICK_MS, Engine
from rebalancer.sandbox.world import open_world

KEY = DEMO_API_KEY
D = Decimal


def manual() -> Engine:
    return Engine.create(seed=7, clock="manual")


def test_defaults() -> None:
    engine = manual()
    assert engine.mid("btcusdt") == D("30000.00") and engine.mid("ethusdt") == D("2000.00")
    rules = engine.rules("btcusdt")
    assert (rules.price_precision, rules.amount_precision, rules.min_volume) == (2, 4, D("0.0001"))
    balances = engine.balances(KEY)
    assert balances.available("USDT") == D(1_000_000) and balances.available("btc") == 20
    assert balances.available("eth") == 300
    with pytest.raises(ValueError):
        Engine.create(clock="sometimes")


def test_same_seed_and_steps_give_the_same_prices() -> None:
    a, b, other = manual(), manual(), Engine.create(seed=8, clock="manual")
    path_a, path_b, path_other = [], [], []
    for steps in (1, 5, 1, 30):
        for engine, path in ((a, path_a), (b, path_b), (other, path_other)):
            engine.advance(steps)
            path.append((engine.mid("btcusdt"), engine.mid("ethusdt")))
    assert path_a == path_b
    assert path_a != path_other
    assert all(p.as_tuple().exponent == -2 for pair in path_a for p in pair)


def test_prices_do_not_depend_on_the_orders() -> None:
    quiet, busy = manual(), manual()
    busy.place(KEY, "btcusdt", Side.BUY, D("29995.00"), D("0.5000"))
    busy.place(KEY, "btcusdt", Side.SELL, D("30005.00"), D("0.5000"))
    quiet.advance(120)
    busy.advance(120)
    assert quiet.mid("btcusdt") == busy.mid("btcusdt")


def test_a_buy_fills_when_the_walk_crosses_it() -> None:
    engine = manual()
    price = engine.ticker("btcusdt").bid - D("15.00")  # type: ignore[operator]
    oid = engine.place(KEY, "btcusdt", Side.BUY, price, D("0.4000"))
    seconds = 0
    while engine.order_record(KEY, "btcusdt", oid).status is not OrderStatus.FILLED:
        engine.advance(1)
        seconds += 1
        assert seconds < 20_000, "the walk never reached the order"
    order = engine.order_record(KEY, "btcusdt", oid)
    assert sum(f.volume for f in order.fills) == D("0.4000")
    assert all(f.price == price for f in order.fills)
    balances = engine.balances(KEY)
    assert balances.coins["btc"].available == D("20.4000")
    assert balances.coins["usdt"].available == D(1_000_000) - price * D("0.4")
    assert balances.coins["usdt"].locked == 0
    assert engine.open_orders(KEY, "btcusdt") == ()


def test_set_price_through_a_sell_fills_it_partially_then_fully() -> None:
    engine = manual()
    oid = engine.place(KEY, "btcusdt", Side.SELL, D("30100.00"), D("1.0000"))
    statuses = []
    for _ in range(40):
        engine.set_price("btcusdt", D("30200"))
        statuses.append(engine.order_record(KEY, "btcusdt", oid).status)
        if statuses[-1] is OrderStatus.FILLED:
            break
    assert statuses[-1] is OrderStatus.FILLED
    assert set(statuses) <= {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED}
    coins = engine.balances(KEY).coins
    assert coins["btc"].available == 19 and coins["btc"].locked == 0
    assert coins["usdt"].available == D(1_000_000) + D("30100.00")


def test_partial_fill_is_visible_over_http(sandbox: Any, api: Any) -> None:
    [oid] = api.placed_ids(api.replace("btcusdt", place=[api.item("BUY", "29900.00", "0.8000")]))
    sandbox.engine.set_price("btcusdt", D("29800"))
    rows = api.open_orders("btcusdt")
    record = sandbox.engine.order_record(sandbox.api_key, "btcusdt", oid)
    if record.status is OrderStatus.PARTIALLY_FILLED:
        [row] = rows
        assert row["status"] == 3
        assert D(row["deal_volume"]) + D(row["remain_volume"]) == D("0.8")
        assert row["avg_price"] == "29900.00"
    else:
        assert rows == []
    info = api.sget("/open/api/order_info", {"symbol": "btcusdt", "order_id": str(oid)})["data"]
    assert sum(D(t["volume"]) for t in info["trade_list"]) == record.deal_volume > 0


def test_fill_by_hand() -> None:
    engine = manual()
    oid = engine.place(KEY, "btcusdt", Side.BUY, D("25000.00"), D("0.0101"))
    engine.fill(oid, D("0.0101") / 2)
    order = engine.order_record(KEY, "btcusdt", oid)
    assert order.status is OrderStatus.PARTIALLY_FILLED and order.deal_volume == D("0.0050")
    assert engine.balances(KEY).coins["usdt"].locked == D("25000.00") * D("0.0051")
    for bad in ("0", "0.0052", "-1"):
        with pytest.raises(Reject):
            engine.fill(oid, bad)
    engine.fill(oid)
    assert engine.order_record(KEY, "btcusdt", oid).status is OrderStatus.FILLED
    assert engine.balances(KEY).coins["btc"].available == D("20.0101")
    with pytest.raises(Reject):
        engine.fill(oid)


def test_set_price_rejects_nonsense() -> None:
    engine = manual()
    for bad in ("0", "-1", "NaN"):
        with pytest.raises(Reject):
            engine.set_price("btcusdt", bad)
    with pytest.raises(Reject):
        engine.set_price("nope", "1")


def test_save_and_load_give_an_identical_world(tmp_path: Path) -> None:
    engine = manual()
    engine.place(KEY, "btcusdt", Side.BUY, D("29950.00"), D("0.3000"))
    engine.place(KEY, "ethusdt", Side.SELL, D("2001.00"), D("2.000"))
    engine.advance(600)
    path = tmp_path / "world" / "sandbox-world.json"
    world.save(engine, path)
    loaded = world.load(path)
    assert world.dump(loaded) == world.dump(engine)
    assert json.loads(path.read_text()) == world.dump(engine)
    assert not [p for p in path.parent.iterdir() if p.name != path.name]
    # The two worlds also have the same future.
    engine.place(KEY, "btcusdt", Side.SELL, D("30010.00"), D("0.1000"))
    loaded.place(KEY, "btcusdt", Side.SELL, D("30010.00"), D("0.1000"))
    engine.advance(300)
    loaded.advance(300)
    assert world.dump(loaded) == world.dump(engine)


def test_world_json_holds_no_floats() -> None:
    engine = manual()
    engine.place(KEY, "btcusdt", Side.BUY, D("29950.00"), D("0.3000"))
    engine.advance(50)

    def walk(value: Any) -> None:
        assert not isinstance(value, float), value
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(world.dump(engine))


def test_loading_garbage_is_a_state_error(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_text("{not json")
    with pytest.raises(StateError):
        world.load(path)
    path.write_text(json.dumps({"format_version": 1}))
    with pytest.raises(StateError):
        world.load(path)
    with pytest.raises(StateError):
        world.load(tmp_path / "missing.json")


def test_catch_up_runs_the_ticks_that_passed_and_caps_them() -> None:
    engine = Engine.create(seed=7, clock="real")
    start = engine.clock_ms
    assert engine.catch_up(start + 5 * TICK_MS + 10) == 5
    assert engine.clock_ms == start + 5 * TICK_MS
    assert engine.catch_up(start + 5 * TICK_MS + 999) == 0
    far = start + 10 * 24 * 3600 * TICK_MS
    assert engine.catch_up(far) == MAX_CATCH_UP_TICKS
    assert engine.clock_ms == far
    assert manual().catch_up(far) == 0


def test_open_world_loads_or_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "sandbox-world.json"
    fresh = open_world(path, seed=3)
    assert fresh.seed == 3 and fresh.clock == "real"
    fresh.place(KEY, "btcusdt", Side.BUY, D("20000.00"), D("0.0100"))
    world.save(fresh, path)
    assert len(open_world(path).open_orders(KEY, "btcusdt")) == 1
    assert open_world(path, reset=True).open_orders(KEY, "btcusdt") == ()


OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("place"),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(-60, 60),
            st.integers(1, 20_000),
        ),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("advance"), st.integers(1, 30)),
        st.tuples(st.just("price"), st.integers(-80, 80)),
    ),
    max_size=40,
)


@settings(max_examples=40, deadline=None)
@given(OPS)
def test_money_is_conserved_and_locks_match_open_orders(ops: list[Any]) -> None:
    engine = manual()
    for op in ops:
        if op[0] == "place":
            _, side, offset, lots = op
            price = engine.mid("btcusdt") + D(offset)
            try:
                engine.place(KEY, "btcusdt", side, price, D(lots) * D("0.0001"))
            except Reject as exc:
                assert exc.code in ("19", "10064")
        elif op[0] == "cancel":
            orders = engine.open_orders(KEY, "btcusdt")
            if orders:
                engine.cancel(KEY, "btcusdt", int(orders[op[1] % len(orders)].id))
        elif op[0] == "advance":
            engine.advance(op[1])
        else:
            engine.set_price("btcusdt", engine.mid("btcusdt") + D(op[1]))
    coins = engine.balances(KEY).coins
    fills = [f for f in engine.recent_fills() if f.symbol == "btcusdt"]
    bought = sum((f.volume if f.side is Side.BUY else -f.volume for f in fills), D(0))
    spent = sum((f.price * f.volume if f.side is Side.BUY else -f.price * f.volume for f in fills), D(0))
    assert coins["btc"].available + coins["btc"].locked == D(20) + bought
    assert coins["usdt"].available + coins["usdt"].locked == D(1_000_000) - spent
    open_orders = engine.open_orders(KEY, "btcusdt")
    assert coins["usdt"].locked == sum((o.price * o.remaining for o in open_orders if o.side is Side.BUY), D(0))
    assert coins["btc"].locked == sum((o.remaining for o in open_orders if o.side is Side.SELL), D(0))
    assert min(c.available for c in coins.values()) >= 0


def test_an_order_reaching_the_crowd_moves_the_crowd_instead_of_crossing_the_ticker() -> None:
    """What is left of an order through the crowd after it traded rests; the crowd's best price never rests
    behind it."""
    engine = Engine.create(seed=7, clock="manual")
    ticker = engine.ticker("btcusdt")
    assert ticker.ask is not None and ticker.bid is not None
    through = ticker.ask + Decimal("5.00")
    oid = engine.place(DEMO_API_KEY, "btcusdt", Side.BUY, through, Decimal("20.0000"))  # beyond the depth
    assert engine.order_record(DEMO_API_KEY, "btcusdt", oid).status is OrderStatus.PARTIALLY_FILLED
    after = engine.ticker("btcusdt")
    assert not after.crossed
    assert (after.bid, after.ask) == (through, through + Decimal("0.01"))
    engine.place(DEMO_API_KEY, "btcusdt", Side.SELL, ticker.bid - Decimal("5.00"), Decimal("10.0000"))
    assert engine.ticker("btcusdt").crossed, "our own orders crossing each other are shown as they are"
