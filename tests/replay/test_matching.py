"""The pure fill matching: tables for price-time order and the queue, Hypothesis for what holds of every print."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rebalancer.models import Side
from rebalancer.replay.matching import FillModel, Resting, match_print

D = Decimal


def test_a_print_is_shared_best_price_first_then_first_joined() -> None:
    orders = [
        Resting("a", Side.BUY, D("100"), D("1"), joined=1),
        Resting("b", Side.BUY, D("101"), D("1"), joined=3),
        Resting("c", Side.BUY, D("101"), D("1"), joined=2),
    ]
    matched = match_print(FillModel.TOUCH, D("100"), D("2.5"), orders)
    assert matched.fills == (("c", D("1")), ("b", D("1")), ("a", D("0.5")))
    assert match_print(FillModel.CROSS, D("100"), D("2.5"), orders).fills == (("c", D("1")), ("b", D("1")))


def test_sells_mirror_buys() -> None:
    orders = [Resting("s1", Side.SELL, D("102"), D("2"), joined=1), Resting("s2", Side.SELL, D("101"), D("1"), 2)]
    assert match_print(FillModel.TOUCH, D("102"), D("2"), orders).fills == (("s2", D("1")), ("s1", D("1")))
    assert match_print(FillModel.CROSS, D("102"), D("2"), orders).fills == (("s2", D("1")),)


def test_the_queue_eats_the_print_first_and_is_ahead_of_later_orders_too() -> None:
    orders = [
        Resting("first", Side.BUY, D("100"), D("1"), joined=1, ahead=D("2")),
        Resting("later", Side.BUY, D("100"), D("1"), joined=2, ahead=D("3")),
    ]
    matched = match_print(FillModel.QUEUE, D("100"), D("4"), orders)
    # 2 eaten ahead of "first", "first" fills 1; of "later"'s 3 ahead, those 2 were eaten: 1 more, then 0 left.
    assert matched.fills == (("first", D("1")),)
    assert dict(matched.ahead) == {"first": D("0"), "later": D("0")}
    through = match_print(FillModel.QUEUE, D("99"), D("5"), orders)
    assert through.fills == (("first", D("1")), ("later", D("1")))


volumes = st.decimals(min_value=D("0.0001"), max_value=D("10"), places=4)
prices = st.integers(min_value=95, max_value=105).map(D)
resting = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), prices, volumes, volumes), min_size=0, max_size=8)


@given(st.sampled_from(list(FillModel)), prices, volumes, resting)
def test_fills_never_exceed_the_print_or_an_order_and_only_reach_orders_at_or_through(
    model: FillModel, price: Decimal, volume: Decimal, raw: list[tuple[Side, Decimal, Decimal, Decimal]]
) -> None:
    orders = [Resting(str(i), side, p, rem, i, ahead) for i, (side, p, rem, ahead) in enumerate(raw)]
    by_id = {o.order_id: o for o in orders}
    fills = match_print(model, price, volume, orders).fills
    assert sum((v for _, v in fills), D(0)) <= volume
    for order_id, filled in fills:
        order = by_id[order_id]
        assert 0 < filled <= order.remaining
        at_or_through = price <= order.price if order.side is Side.BUY else price >= order.price
        strictly = price < order.price if order.side is Side.BUY else price > order.price
        assert strictly if model is FillModel.CROSS else at_or_through
    touch = {i for i, _ in match_print(FillModel.TOUCH, price, volume, orders).fills}
    if sum(o.remaining for o in orders) <= volume:  # the print is large enough for everything it reaches
        assert {i for i, _ in fills} <= touch
