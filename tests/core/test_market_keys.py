"""Inventory skew, price ceiling and floor, and a reference from another venue, in the pure core."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import ladder, limits
from rebalancer.core.plan import compute_plan
from rebalancer.core.plan_codec import plan_to_json
from rebalancer.core.skew import base_share, inventory_skew
from rebalancer.job import FixedOrder, Inventory, Limits, Reference, ReferenceKind, ReferenceSource
from rebalancer.models import Balance, Balances, OrderStatus, Side, Ticker
from rebalancer.vocab import CancelReason
from tests.core.kit import RULES, D, job, order, pct, side_ladder, snapshot
from tests.depth import examples

B, S = Side.BUY, Side.SELL
AIM = Inventory(target_base=D(50), range=D(20))


def holding(btc: str, usdt: str, locked_btc: str = "0", locked_usdt: str = "0") -> Balances:
    return Balances({"btc": Balance(D(btc), D(locked_btc)), "usdt": Balance(D(usdt), D(locked_usdt))})


@pytest.mark.parametrize(
    ("btc", "usdt", "share", "buy", "sell"),
    [
        # base value 1 × 30000 = 30000 of 48387.09…: 62 % → d = 0.6 → buy ×0.40, sell ×1.60
        ("0.62", "11400", "62", "0.40", "1.60"),
        ("1", "30000", "50", "1", "1"),  # on target
        ("0.7", "9000", "70", "0", "2"),  # at target + range: buys stop, sells double
        ("1", "0", "100", "0", "2"),  # beyond: clamped
        ("0.3", "21000", "30", "2", "0"),  # at target − range: the mirror
        ("0", "500", "0", "2", "0"),
    ],
)
def test_skew_table(btc: str, usdt: str, share: str, buy: str, sell: str) -> None:
    skew = inventory_skew(AIM, holding(btc, usdt), RULES, D(30000))
    assert skew.base_share == D(share)
    assert (skew.buy_factor, skew.sell_factor) == (D(buy), D(sell))


def test_locked_balances_count_as_held() -> None:
    assert base_share(holding("0.2", "15000", locked_btc="0.3", locked_usdt="0"), RULES, D(30000)) == D(50)


def test_the_plan_line_and_json_say_the_same_figures() -> None:
    plan = compute_plan(
        job(buy=side_ladder(), sell=side_ladder(), inventory=AIM), snapshot(balances=holding("0.62", "11400")), None
    )
    assert plan.inventory is not None
    assert plan.inventory.describe() == "inventory: base 62% (target 50% ±20%) → buy ×0.40, sell ×1.60"
    assert plan_to_json(plan)["inventory"] == {
        "base_share": "62%", "target": "50%", "range": "20%", "buy_factor": "0.40", "sell_factor": "1.60",
    }  # fmt: skip
    assert [t.volume for t in plan.placements if t.side is B] == [D("0.0040")] * 3
    assert [t.volume for t in plan.placements if t.side is S] == [D("0.0160")] * 3


def test_no_balance_of_either_coin_leaves_sizes_alone() -> None:
    skew = inventory_skew(AIM, Balances({}), RULES, D(30000))
    assert skew.base_share is None and skew.buy_factor == skew.sell_factor == 1
    assert skew.describe() == "inventory: no balance of either coin (target 50% ±20%) → sizes unchanged"


def test_buys_at_zero_are_dropped_with_the_reason() -> None:
    built = ladder.build(
        job(buy=side_ladder(levels=2), sell=side_ladder(levels=1), inventory=AIM),
        snapshot(),
        inventory_skew(AIM, holding("1", "0"), RULES, D(30000)),
    )
    assert [t.level for t in built.targets] == ["sell[0]"]
    assert [(d.level, d.reason) for d in built.dropped] == [("buy[0]", "inventory"), ("buy[1]", "inventory")]


shares = st.integers(0, 10_000).map(lambda v: D(v) / 100)


@settings(max_examples=examples(200), deadline=None)
@given(shares, shares, st.integers(0, 100).map(D), st.integers(1, 100).map(D))
def test_skew_is_monotone_in_the_base_share(low: Decimal, high: Decimal, target: Decimal, spread: Decimal) -> None:
    low, high = min(low, high), max(low, high)
    aim = Inventory(target, spread)
    # a holding whose base share is exactly ``share`` at a reference of 1
    first = inventory_skew(aim, holding(str(low), str(100 - low)), RULES, D(1))
    second = inventory_skew(aim, holding(str(high), str(100 - high)), RULES, D(1))
    assert second.buy_factor <= first.buy_factor and second.sell_factor >= first.sell_factor
    for skew in (first, second):
        assert 0 <= skew.buy_factor <= 2 and 0 <= skew.sell_factor <= 2
        assert skew.buy_factor + skew.sell_factor == 2


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(0, 200), st.integers(0, 6_000_000))
def test_skew_never_makes_the_funding_check_worse(btc_cents: int, usdt: int) -> None:
    """Over the target the buys (which spend the scarce quote) only shrink, under it the sells: the scarce side
    asks for no more than without the skew, so the funding check trims no more of it."""
    balances = holding(str(D(btc_cents) / 100), str(usdt))
    plain = job(buy=side_ladder(levels=4), sell=side_ladder(levels=4))
    skewed = job(buy=side_ladder(levels=4), sell=side_ladder(levels=4), inventory=AIM)
    skew = inventory_skew(AIM, balances, RULES, D(30000))
    if skew.base_share is None or skew.base_share == 50:
        return
    scarce = B if skew.base_share > 50 else S
    asked = {
        name: sum((t.price * t.volume if scarce is B else t.volume for t in built.targets if t.side is scarce), D(0))
        for name, built in (
            ("plain", ladder.build(plain, snapshot(balances=balances))),
            ("skewed", ladder.build(skewed, snapshot(balances=balances), skew)),
        )
    }
    assert asked["skewed"] <= asked["plain"]
    trimmed = {
        name: sum(1 for d in compute_plan(j, snapshot(balances=balances), None).dropped
                  if d.reason == "insufficient_balance" and d.side is scarce)
        for name, j in (("plain", plain), ("skewed", skewed))
    }  # fmt: skip
    assert trimmed["skewed"] <= trimmed["plain"]


CEILING = Limits(post_only=False, price_ceiling=D("29800"), price_floor=D("30200"))


def test_ceiling_and_floor_drop_targets_and_cancel_standing_orders() -> None:
    # buys 29850 (at or above the ceiling 29800: dropped), 29775, 29700; sells 30150 (≤ floor 30200: dropped), 30225…
    book = (
        order("1", B, "29850.00", "0.0100"),  # exactly its target, but above the ceiling
        order("2", S, "30200.00", "0.0100"),  # at the floor
        order("3", B, "29775.00", "0.0100"),  # fine: kept
        order("4", S, "30100.00", "0.0100", status=OrderStatus.CANCEL_PENDING),  # already going
    )
    plan = compute_plan(job(buy=side_ladder(), sell=side_ladder(), limits=CEILING), snapshot(book), None)
    cancels = {a.order_id: a.reason for a in plan.actions if a.action == "cancel"}
    assert cancels == {"1": CancelReason.PRICE_LIMIT, "2": CancelReason.PRICE_LIMIT}
    assert {a.order_id for a in plan.actions if a.action == "keep"} == {"3"}
    assert {(d.level, d.reason) for d in plan.dropped} >= {("buy[0]", "price_limit"), ("sell[0]", "price_limit")}
    assert all(t.price < D("29800") for t in plan.placements if t.side is B)
    assert all(t.price > D("30200") for t in plan.placements if t.side is S)
    assert plan_to_json(plan)["actions"][0]["reason"] == "price_limit"


@settings(max_examples=examples(100), deadline=None)
@given(
    st.integers(25000, 35000).map(D),
    st.integers(25000, 35000).map(D),
    st.lists(st.tuples(st.sampled_from([B, S]), st.integers(25000, 35000)), max_size=8),
)
def test_no_plan_ever_buys_at_the_ceiling_or_sells_at_the_floor(ceiling: Decimal, floor: Decimal, rows) -> None:
    limits = Limits(post_only=False, price_ceiling=ceiling, price_floor=floor)
    book = tuple(order(str(i), side, f"{p}.00", "0.0100") for i, (side, p) in enumerate(rows))
    plan = compute_plan(job(buy=side_ladder(levels=6), sell=side_ladder(levels=6), limits=limits), snapshot(book), None)
    for a in plan.actions:
        if a.action == "cancel":
            continue
        assert a.price < ceiling if a.side is B else a.price > floor


OTHER = ReferenceSource(url="https://other.example", symbol="btcusdt", factor=D("1.1"))


def test_the_other_venues_quote_is_the_reference() -> None:
    the_job = job(buy=side_ladder(levels=1), reference=Reference(ReferenceKind.MID, source=OTHER))
    quote = Ticker(D("9990"), D("10010"), None)  # already scaled by the board
    books = dataclasses.replace(snapshot(ticker=Ticker(D("29990"), D("30010"), None)), reference_quote=quote)
    plan = compute_plan(the_job, books, None)
    assert plan.reference_price == D("10000")
    assert [t.price for t in plan.placements] == [D("9950.00")]  # 0.5 % under the other venue's mid
    assert (plan.best_bid, plan.best_ask) == (D("29990"), D("30010"))  # this venue's touch, for post_only
    assert plan.paused is None and plan.paused_by is None


def test_no_quote_from_the_other_venue_pauses_placements_and_keeps_what_stands() -> None:
    the_job = job(buy=side_ladder(), reference=Reference(ReferenceKind.MID, source=OTHER), limits=Limits(band=pct("5")))
    base = snapshot((order("1", B, "29850.00", "0.0100"), order("2", B, "20000.00", "0.0100")))
    problem = "the reference from other.example btcusdt is unavailable: HTTP 503"
    broken = dataclasses.replace(base, reference_problem=problem)
    plan = compute_plan(the_job, broken, None, previous_reference=D("30000"))
    assert plan.paused == "placements paused: " + problem
    assert plan.paused_by == "market_data"
    assert plan.placements == ()
    assert {(a.action, a.order_id) for a in plan.actions} == {("keep", "1"), ("cancel", "2")}
    assert plan_to_json(plan)["paused_by"] == "market_data"


def test_a_skew_of_zero_says_so_and_a_size_of_zero_stays_a_size_problem() -> None:
    skew = inventory_skew(AIM, holding("1", "0"), RULES, D(30000))  # buys ×0
    spec = side_ladder(levels=2, size="0.01", size_step=D("-0.01"))  # buy[1] is 0 before any skew
    built = ladder.build(job(buy=spec, inventory=AIM), snapshot(), skew)
    assert [(d.level, d.side, d.reason) for d in built.dropped] == [
        ("buy[0]", B, "inventory"),
        ("buy[1]", B, "non_positive_size"),
    ]
    assert built.warnings[0] == "buy[0]: not placed, the inventory skew sets buy sizes to 0"


def test_a_job_without_another_venue_ignores_a_quote_from_one() -> None:
    books = dataclasses.replace(snapshot(), reference_quote=Ticker(D("9990"), D("10010"), None))
    assert ladder.quote_of(job(buy=side_ladder()), books) == books.ticker
    assert compute_plan(job(buy=side_ladder(levels=1)), books, None).reference_price == D("30000")


@pytest.mark.parametrize(
    ("side", "price", "breaks"),
    [(B, "29800", True), (B, "29799.99", False), (S, "30200", True), (S, "30200.01", False)],
)
def test_a_price_exactly_at_the_limit_breaks_it(side: Side, price: str, breaks: bool) -> None:
    assert limits.breaches(CEILING, side, D(price)) is breaks
    book = (order("7", side, price, "0.0100"),)
    plan = compute_plan(job(limits=CEILING, orders=(FixedOrder(side, D(price), D("0.01")),)), snapshot(book), None)
    assert [a.action for a in plan.actions] == (["cancel"] if breaks else ["keep"])
    if breaks:
        assert plan.actions[0].reason == CancelReason.PRICE_LIMIT


def test_the_words_of_a_breach() -> None:
    assert limits.why(CEILING, B) == "at or above the price ceiling 29800"
    assert limits.why(CEILING, S) == "at or below the price floor 30200"


def test_no_balance_is_null_in_the_json() -> None:
    assert inventory_skew(AIM, Balances({}), RULES, D(1)).to_json_dict()["base_share"] is None
