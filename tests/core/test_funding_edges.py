"""funding.fund at its exact edges: what each cancel releases, spending exactly the budget, what the warning says.

Every expected figure here is computed by hand from the order's numbers, never with the function under test.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import funding
from rebalancer.models import Balance, Balances, OrderStatus, Side, Target
from tests.core.kit import D, order, snapshot, target
from tests.depth import examples

B, S = Side.BUY, Side.SELL


@pytest.mark.parametrize(
    ("side", "price", "volume", "deal", "status", "frees"),
    [
        (B, "29000", "0.02", "0", OrderStatus.NEW, "580.00"),  # quote: price × remaining
        (B, "29000", "0.02", "0.01", OrderStatus.PARTIALLY_FILLED, "290.00"),
        (S, "31000", "0.02", "0", OrderStatus.NEW, "0.02"),  # base: the remaining volume, never × price
        (S, "31000", "0.02", "0.005", OrderStatus.PARTIALLY_FILLED, "0.015"),
        (S, "0.5", "400", "0", OrderStatus.INITIAL, "400"),
        (B, "29000", "0.02", "0", OrderStatus.CANCEL_PENDING, "0"),  # already on its way out
        (S, "31000", "0.02", "0.02", OrderStatus.FILLED, "0"),
    ],
)
def test_what_a_cancel_releases(
    side: Side, price: str, volume: str, deal: str, status: OrderStatus, frees: str
) -> None:
    assert funding.released(order("7", side, price, volume, deal=deal, status=status)) == D(frees)


def test_a_cancelled_sell_releases_its_base_volume_to_the_sell_budget() -> None:
    # 0.01 BTC available + 0.02 released by the cancelled sell = 0.03: exactly three 0.01 sells, not more
    placements = [target(f"sell[{i}]", S, str(30100 + 100 * i), "0.01") for i in range(4)]
    books = snapshot(balances=Balances({"btc": Balance(D("0.01"))}))
    cancelled = [order("9", S, "31000", "0.02")]
    funded = funding.fund(placements, cancelled, books, D("30000"))
    assert [t.level for t in funded.placements] == ["sell[0]", "sell[1]", "sell[2]"]
    assert [(d.level, d.reason) for d in funded.dropped] == [("sell[3]", "insufficient_balance")]


def test_spending_exactly_the_budget_places_everything() -> None:
    # 100 × 1 + 50 × 2 = 200 USDT = the whole balance
    placements = [target("buy[0]", B, "100", "1"), target("buy[1]", B, "50", "2")]
    books = snapshot(balances=Balances({"usdt": Balance(D("200"))}))
    funded = funding.fund(placements, (), books, D("101"))
    assert [t.level for t in funded.placements] == ["buy[0]", "buy[1]"]
    assert funded.dropped == () and funded.warnings == ()


def test_one_unit_short_drops_the_farthest() -> None:
    placements = [target("buy[0]", B, "100", "1"), target("buy[1]", B, "50", "2")]
    books = snapshot(balances=Balances({"usdt": Balance(D("199.99"))}))
    funded = funding.fund(placements, (), books, D("101"))
    assert [t.level for t in funded.placements] == ["buy[0]"]
    dropped = funded.dropped[0]
    assert (dropped.level, dropped.side, dropped.price, dropped.volume) == ("buy[1]", B, D("50"), D("2"))


def test_the_warning_names_the_coin_and_what_was_available() -> None:
    placements = [target("buy[0]", B, "100", "3")]
    books = snapshot(balances=Balances({"usdt": Balance(D("250"))}))
    (warning,) = funding.fund(placements, (), books, D("101")).warnings
    assert warning == "buy[0]: not placed, USDT balance too low (available 250 plus released by cancels)"


def test_a_side_with_nothing_to_place_or_cancel_spends_nothing() -> None:
    funded = funding.fund((), (), snapshot(balances=Balances({})), D("1"))
    assert funded.placements == () and funded.dropped == () and funded.warnings == ()


def _hand_cost(t: Target) -> Decimal:
    return t.price * t.volume if t.side is B else t.volume


@settings(max_examples=examples(80), deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([B, S]), st.integers(1, 9999), st.integers(1, 999)), min_size=1, max_size=8),
    st.lists(st.tuples(st.sampled_from([B, S]), st.integers(1, 9999), st.integers(1, 999)), max_size=4),
    st.integers(0, 10**6),
    st.integers(0, 10**4),
)
def test_sub_unit_prices_keep_the_funded_set_the_nearest_that_fits(
    rows: list[tuple[Side, int, int]],
    cancels: list[tuple[Side, int, int]],
    quote_cents: int,
    base_milli: int,
) -> None:
    """With prices below 1 (cheap tokens), the kept placements are the nearest prefix of each side that fits."""
    ref = D("0.5")
    placements = [Target(f"{s.value.lower()}[{i}]", s, D(p) / 10000, D(v) / 10) for i, (s, p, v) in enumerate(rows)]
    cancelled = [order(str(100 + i), s, str(D(p) / 10000), str(D(v) / 10)) for i, (s, p, v) in enumerate(cancels)]
    quote, base = D(quote_cents) / 100, D(base_milli) / 1000
    books = snapshot(balances=Balances({"usdt": Balance(quote), "btc": Balance(base)}))
    funded = funding.fund(placements, cancelled, books, ref)
    for side, available in ((B, quote), (S, base)):
        freed = sum((o.price * o.volume if side is B else o.volume for o in cancelled if o.side is side), D(0))
        budget = available + freed
        mine = sorted(
            (t for t in placements if t.side is side),
            key=lambda t: (abs(t.price - ref), int(t.level.split("[")[1][:-1])),
        )
        expected, spent = [], D(0)
        for t in mine:  # the longest nearest-first prefix that fits
            if spent + _hand_cost(t) > budget:
                break
            expected.append(t.level)
            spent += _hand_cost(t)
        # fund trims from the far end, which keeps that same prefix whenever costs are positive
        assert sorted(t.level for t in funded.placements if t.side is side) == sorted(expected)


@pytest.mark.parametrize(
    ("placements", "cancelled", "needs"),
    [
        ([], [], False),
        ([target("buy[0]", B, "100", "1")], [], True),
        ([target("buy[0]", B, "100", "1")], [order("1", B, "100", "1")], False),  # the cancel pays exactly for it
        ([target("buy[0]", B, "100", "1")], [order("1", B, "99.99", "1")], True),
        ([target("buy[0]", B, "100", "1")], [order("1", S, "100", "100")], True),  # a sell's base pays no buy
        ([target("sell[0]", S, "100", "2")], [order("1", S, "50", "2")], False),  # base for base: 2 for 2
        ([target("sell[0]", S, "100", "2")], [order("1", S, "50", "1.9")], True),
        ([target("sell[0]", S, "100", "1")], [order("1", B, "100", "1")], True),
    ],
)
def test_when_the_balances_must_be_read(placements, cancelled, needs: bool) -> None:
    assert funding.needs_balances(placements, cancelled) is needs


def test_without_balances_placements_the_cancels_pay_for_are_kept_in_order() -> None:
    placements = [target("sell[1]", S, "102", "1"), target("buy[0]", B, "99", "1"), target("sell[0]", S, "101", "1")]
    cancelled = [order("1", B, "99", "1"), order("2", S, "150", "2")]
    books = dataclasses.replace(snapshot(), balances=None)
    funded = funding.fund(placements, cancelled, books, D("100"))
    assert [t.level for t in funded.placements] == ["buy[0]", "sell[0]", "sell[1]"]
    assert funded.dropped == () and funded.warnings == ()


def test_without_balances_a_placement_the_cancels_do_not_pay_for_is_an_error() -> None:
    books = dataclasses.replace(snapshot(), balances=None)
    with pytest.raises(ValueError, match="the placements need the balances, which were not read"):
        funding.fund([target("buy[0]", B, "100", "1")], [], books, D("100"))
