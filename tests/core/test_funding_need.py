"""``funding_need``: per coin, what placements lock and the shortfall the balances must cover, computed here by hand
and checked against ``fund``'s decision (every placement kept exactly when each coin's balance covers its shortfall).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.funding import fund, funding_need
from rebalancer.models import Balance, Balances, MarketSnapshot, Order, OrderStatus, Side, SymbolRules, Target, Ticker
from tests.depth import examples

D = Decimal
RULES = SymbolRules("btcusdt", "BTC", "USDT", 2, 4)


def _order(side: Side, price: str, volume: str, dealt: str = "0", status: OrderStatus = OrderStatus.NEW) -> Order:
    return Order(f"{side}{price}{volume}{dealt}", side, D(price), D(volume), D(dealt), status)


def _target(side: Side, price: str, volume: str, level: str = "x[1]") -> Target:
    return Target(level, side, D(price), D(volume))


def test_a_table_of_needs() -> None:
    buy, sell = Side.BUY, Side.SELL
    need = funding_need(
        [_target(buy, "0.5", "3"), _target(buy, "0.25", "2"), _target(sell, "0.75", "1.5")],
        [_order(buy, "0.4", "2", dealt="0.5"), _order(sell, "0.8", "1", status=OrderStatus.CANCEL_PENDING)],
        RULES,
    )
    # buys lock 1.5 + 0.5 = 2 USDT; the cancelled buy frees 0.4 × 1.5 = 0.6; the cancel-pending sell frees nothing
    assert need.locks == {"usdt": D("2.00"), "btc": D("1.5")}
    assert need.shortfall == {"usdt": D("1.40"), "btc": D("1.5")}


def test_cancels_that_pay_for_everything_leave_no_shortfall() -> None:
    need = funding_need([_target(Side.BUY, "1", "1")], [_order(Side.BUY, "1", "1")], RULES)
    assert need.shortfall == {} and need.locks == {"usdt": D(1)}
    assert funding_need([], [_order(Side.SELL, "2", "1")], RULES).locks == {}


prices = st.decimals(D("0.0001"), D("50"), places=4)
volumes = st.decimals(D("0.0001"), D("5"), places=4)
sides = st.sampled_from([Side.BUY, Side.SELL])


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.tuples(sides, prices, volumes), max_size=6),
    st.lists(st.tuples(sides, prices, volumes), max_size=6),
    st.decimals(D(0), D("100"), places=4),
    st.decimals(D(0), D("10"), places=4),
)
def test_fund_keeps_everything_exactly_when_the_balances_cover_the_shortfall(placed, cancelled, usdt, btc) -> None:
    targets = [Target(f"l[{i}]", s, p, v) for i, (s, p, v) in enumerate(placed)]
    orders = [Order(str(i), s, p, v, D(0), OrderStatus.NEW) for i, (s, p, v) in enumerate(cancelled)]
    need = funding_need(targets, orders, RULES)
    balances = Balances({"usdt": Balance(usdt), "btc": Balance(btc)})
    snapshot = MarketSnapshot(RULES, Ticker(D(1), D(2), D("1.5")), balances, ())
    kept = fund(targets, orders, snapshot, D("1.5")).placements
    covered = usdt >= need.shortfall.get("usdt", 0) and btc >= need.shortfall.get("btc", 0)
    assert (len(kept) == len(targets)) is covered
    locked_buys = sum((t.price * t.volume for t in targets if t.side is Side.BUY), D(0))
    assert need.locks.get("usdt", D(0)) == locked_buys


def test_funding_without_balances_refuses_placements_that_need_them() -> None:
    snapshot = MarketSnapshot(RULES, Ticker(D(1), D(2), D("1.5")), None, ())
    with pytest.raises(ValueError, match=r"^the placements need the balances, which were not read$"):
        fund([_target(Side.BUY, "1", "1")], [], snapshot, D("1.5"))
