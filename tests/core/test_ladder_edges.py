"""ladder.build at its exact boundaries: post_only at the touch, the band's edge, the minimum volume, ties that
max_orders must break, cheap tokens (a reference below 1), geometric steps, and fixed orders that cannot stand.

Each dropped level is checked in full (level, side, price, volume, reason) and every expected figure is worked out by
hand in the comment beside it.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import ladder
from rebalancer.errors import ConfigError, UnsafePlanError
from rebalancer.job import FixedOrder, Limits, Reference, ReferenceKind, Spacing
from rebalancer.models import Side, SymbolRules, Ticker
from tests.core.kit import D, ab, job, pct, side_ladder, snapshot
from tests.depth import examples

B, S = Side.BUY, Side.SELL
CHEAP = SymbolRules("pepeusdt", "pepe", "usdt", price_precision=6, amount_precision=0)


def rows(built: ladder.Ladder) -> list[tuple[str, Side, str, str]]:
    return [(t.level, t.side, f"{t.price:f}", f"{t.volume:f}") for t in built.targets]


def dropped(built: ladder.Ladder) -> list[tuple[str, Side, str | None, str | None, str]]:
    return [
        (d.level, d.side, None if d.price is None else f"{d.price:f}", None if d.volume is None else f"{d.volume:f}",
         d.reason)
        for d in built.dropped
    ]  # fmt: skip


def fixed_ref(price: str) -> Reference:
    return Reference(ReferenceKind.FIXED, D(price))


# post_only at the touch: the book is bid 29990.00 / ask 30010.00 (tests.core.kit.TICKER)
@pytest.mark.parametrize(
    ("side", "price", "stands"),
    [
        (B, "30010.00", False),  # at the best ask: would take it
        (B, "30009.99", True),  # one tick under: rests
        (B, "30010.01", False),
        (S, "29990.00", False),  # at the best bid: would take it
        (S, "29990.01", True),
        (S, "29989.99", False),
    ],
)
def test_post_only_at_exactly_the_touch(side: Side, price: str, stands: bool) -> None:
    built = ladder.build(job(orders=(FixedOrder(side, D(price), D("0.5")),), limits=Limits(post_only=True)), snapshot())
    if stands:
        assert rows(built) == [("orders[0]", side, price, "0.5000")]
        assert built.dropped == ()
    else:
        assert rows(built) == []
        assert dropped(built) == [("orders[0]", side, price, "0.5000", "post_only")]
        (warning,) = built.warnings
        assert "post_only" in warning and price in warning


def test_post_only_off_lets_a_crossing_order_stand() -> None:
    built = ladder.build(
        job(orders=(FixedOrder(B, D("30010.00"), D("1")),), limits=Limits(post_only=False)), snapshot()
    )
    assert rows(built) == [("orders[0]", B, "30010.00", "1.0000")]


@pytest.mark.parametrize(
    ("price", "inside"),
    [
        ("28500.00", True),  # 5 % of 30000 = 1500 away: on the edge, inside
        ("28499.99", False),  # one tick beyond
        ("31500.00", True),
        ("31500.01", False),
    ],
)
def test_the_band_edge_is_inside(price: str, inside: bool) -> None:
    side = B if D(price) < 30000 else S
    built = ladder.build(
        job(orders=(FixedOrder(side, D(price), D("0.1")),), limits=Limits(band=pct("5"), post_only=False)),
        snapshot(),
    )
    assert [t.level for t in built.targets] == (["orders[0]"] if inside else [])
    assert dropped(built) == ([] if inside else [("orders[0]", side, price, "0.1000", "outside_band")])


def test_an_absolute_band_is_in_price_units() -> None:
    spec = side_ladder(levels=3, first=ab("10"), step=ab("10"))  # buys 29990, 29980, 29970
    built = ladder.build(job(buy=spec, limits=Limits(band=ab("20"), post_only=False)), snapshot())
    assert [t.level for t in built.targets] == ["buy[0]", "buy[1]"]
    assert dropped(built) == [("buy[2]", B, "29970.00", "0.0100", "outside_band")]


@pytest.mark.parametrize(
    ("size", "stands"),
    [("0.01", True), ("0.0100", True), ("0.0099", False), ("0.01009", True)],
)
def test_the_minimum_volume_itself_stands(size: str, stands: bool) -> None:
    rules = SymbolRules("btcusdt", "btc", "usdt", 2, 4, min_volume=D("0.01"))
    built = ladder.build(job(orders=(FixedOrder(B, D("29000"), D(size)),)), snapshot(rules=rules))
    if stands:
        assert rows(built) == [("orders[0]", B, "29000.00", f"{D(size).quantize(D('0.0001'), 'ROUND_FLOOR'):f}")]
    else:
        assert dropped(built) == [("orders[0]", B, "29000.00", "0.0099", "below_min_volume")]
        assert built.warnings == ("orders[0]: volume 0.0099 is below the minimum 0.01; level dropped",)


def test_a_volume_that_rounds_to_zero_is_dropped_with_the_lot_as_minimum() -> None:
    built = ladder.build(job(orders=(FixedOrder(S, D("31000"), D("0.00009")),)), snapshot())
    assert dropped(built) == [("orders[0]", S, "31000.00", "0.0000", "below_min_volume")]
    assert built.warnings == ("orders[0]: volume 0.0000 is below the minimum 0.0001; level dropped",)


def test_max_orders_breaks_distance_ties_buy_first_then_ladder_before_fixed() -> None:
    # buy[0] 29900 and sell[0] 30100 are both 100 away; orders[0] is a buy on buy[0]'s tick, also 100 away
    spec = side_ladder(levels=1, first=ab("100"), step=ab("1"))
    fixed = (FixedOrder(B, D("29900"), D("0.2")),)
    built = ladder.build(
        job(buy=spec, sell=spec, orders=fixed, limits=Limits(max_orders=2, post_only=False)), snapshot()
    )
    assert rows(built) == [("buy[0]", B, "29900.00", "0.0100"), ("orders[0]", B, "29900.00", "0.2000")]
    assert [t.level for t in built.over_limit] == ["sell[0]"]
    assert dropped(built) == [("sell[0]", S, "30100.00", "0.0100", "over_max_orders")]
    one = ladder.build(job(buy=spec, sell=spec, orders=fixed, limits=Limits(max_orders=1, post_only=False)), snapshot())
    assert [t.level for t in one.targets] == ["buy[0]"]
    assert [d.level for d in one.dropped] == ["orders[0]", "sell[0]"]


def test_max_orders_equal_to_the_count_drops_nothing() -> None:
    built = ladder.build(
        job(buy=side_ladder(levels=2), sell=side_ladder(levels=2), limits=Limits(max_orders=4, post_only=False)),
        snapshot(),
    )
    assert len(built.targets) == 4 and built.dropped == () and built.over_limit == ()


@pytest.mark.parametrize(
    ("step", "buys", "sells"),
    [
        # 30000 × 0.995 = 29850; × 0.98 = 29253 → 29253.00; × 0.98 = 28667.94
        ("2", ["29850.00", "29253.00", "28667.94"], ["30150.00", "30753.00", "31368.06"]),
        # × 0.995 each: 29850, 29700.75, 29552.246… → 29552.24 (down); sells 30150, 30300.75, 30452.25375 → .26
        ("0.5", ["29850.00", "29700.75", "29552.24"], ["30150.00", "30300.75", "30452.26"]),
    ],
)
def test_geometric_steps_other_than_one_percent(step: str, buys: list[str], sells: list[str]) -> None:
    spec = side_ladder(levels=3, first=pct("0.5"), step=pct(step), spacing=Spacing.GEOMETRIC)
    built = ladder.build(job(buy=spec, sell=spec), snapshot())
    assert [p for level, _, p, _ in rows(built) if level.startswith("buy")] == buys
    assert [p for level, _, p, _ in rows(built) if level.startswith("sell")] == sells


def test_a_reference_below_one_builds_every_level() -> None:
    # mid of 0.000120 / 0.000124 = 0.000122; first 1 %, step 1 %: buys 0.00012078 → 0.000120, 0.00011956 → 0.000119
    ticker = Ticker(D("0.000120"), D("0.000124"), D("0.000122"))
    spec = side_ladder(levels=2, first=pct("1"), step=pct("1"), size="1000000")
    built = ladder.build(job(buy=spec, sell=spec), snapshot(ticker=ticker, rules=CHEAP))
    assert built.reference_price == D("0.000122")
    assert rows(built) == [
        ("buy[0]", B, "0.000120", "1000000"),
        ("buy[1]", B, "0.000119", "1000000"),
        ("sell[0]", S, "0.000124", "1000000"),  # 0.00012322 up
        ("sell[1]", S, "0.000125", "1000000"),  # 0.00012444 up
    ]
    assert built.dropped == ()


def test_a_fixed_reference_below_one_is_used_as_given() -> None:
    built = ladder.build(
        job(buy=side_ladder(levels=1, first=pct("10"), size="5"), reference=fixed_ref("0.5")),
        snapshot(ticker=Ticker(None, None, None), rules=CHEAP),
    )
    assert built.reference_price == D("0.5")
    assert rows(built) == [("buy[0]", B, "0.450000", "5")]


def test_a_buy_that_rounds_to_zero_is_dropped_and_says_so() -> None:
    rules = SymbolRules("pepeusdt", "pepe", "usdt", price_precision=2, amount_precision=0)
    spec = side_ladder(levels=1, first=pct("10"), size="5")
    built = ladder.build(job(buy=spec, reference=fixed_ref("0.005")), snapshot(rules=rules))  # 0.0045 → 0.00
    assert built.targets == ()
    assert dropped(built) == [("buy[0]", B, None, None, "non_positive_price")]
    assert built.warnings == ("buy[0]: price 0.0045000 rounds to zero at the symbol's tick; level dropped",)


POSITIVE = "orders[0]: price and size must be positive; order dropped"


@pytest.mark.parametrize(
    ("fixed", "reason", "warning"),
    [
        (FixedOrder(B, D("0"), D("1")), "non_positive_price", POSITIVE),
        (FixedOrder(S, D("-5"), D("1")), "non_positive_price", POSITIVE),
        (FixedOrder(S, D("30000"), D("0")), "non_positive_size", POSITIVE),
        (FixedOrder(B, D("30000"), D("-1")), "non_positive_size", POSITIVE),
        (FixedOrder(B, D("0.004"), D("1")), "non_positive_price",
         "orders[0]: price 0.004 rounds to zero at the symbol's tick; order dropped"),
    ],
)  # fmt: skip
def test_fixed_orders_that_cannot_stand(fixed: FixedOrder, reason: str, warning: str) -> None:
    built = ladder.build(job(orders=(fixed,)), snapshot())
    assert built.targets == ()
    assert dropped(built) == [("orders[0]", fixed.side, None, None, reason)]
    assert built.warnings == (warning,)


def test_a_sell_fixed_order_below_a_tick_rounds_up_and_stands() -> None:
    built = ladder.build(job(orders=(FixedOrder(S, D("0.004"), D("1")),)), snapshot())
    assert rows(built) == [("orders[0]", S, "0.01", "1.0000")]


def test_fixed_orders_keep_their_side_and_order() -> None:
    fixed = (FixedOrder(S, D("29000"), D("1")), FixedOrder(B, D("31000"), D("2")))
    built = ladder.build(job(orders=fixed), snapshot())
    assert rows(built) == [("orders[1]", B, "31000.00", "2.0000"), ("orders[0]", S, "29000.00", "1.0000")]


def test_non_positive_sizes_report_the_level_and_its_size() -> None:
    built = ladder.build(job(sell=side_ladder(levels=3, size="0.01", size_step=D("-0.01"))), snapshot())
    assert [t.level for t in built.targets] == ["sell[0]"]
    assert dropped(built) == [
        ("sell[1]", S, None, None, "non_positive_size"),
        ("sell[2]", S, None, None, "non_positive_size"),
    ]
    assert built.warnings == (
        "sell[1]: size 0.00 is not positive; level dropped",
        "sell[2]: size -0.01 is not positive; level dropped",
    )


def test_merged_levels_report_the_tick_and_the_volume_moved() -> None:
    spec = side_ladder(levels=2, first=ab("1"), step=ab("0.004"), size="0.01", size_step=D("0.01"))
    built = ladder.build(job(sell=spec), snapshot())  # 30001.000 and 30001.004 → 30001.01 is not the same tick
    assert [t.level for t in built.targets] == ["sell[0]", "sell[1]"]
    spec = side_ladder(levels=2, first=ab("1.001"), step=ab("0.004"), size="0.01", size_step=D("0.01"))
    built = ladder.build(job(sell=spec), snapshot())  # 30001.001 → .01, 30001.005 → .01: merged
    assert rows(built) == [("sell[0]", S, "30001.01", "0.0300")]
    assert dropped(built) == [("sell[1]", S, "30001.01", "0.0200", "merged")]
    assert built.warnings == ("sell[1]: rounds to the same tick 30001.01 as sell[0]; merged into it",)


def test_max_notional_warning_names_the_side_the_notional_and_the_ratio() -> None:
    # 29850 × 0.01 + 29775 × 0.01 = 596.25 > 298.125: ratio 0.5
    built = ladder.build(job(buy=side_ladder(levels=2, max_notional=D("298.125"))), snapshot())
    assert [f"{t.volume:f}" for t in built.targets] == ["0.0050", "0.0050"]
    assert built.warnings == ("buy: notional 596.25 exceeds max_notional 298.125; every size scaled by 0.5000",)


@settings(max_examples=examples(80), deadline=None)
@given(
    st.integers(1, 999_999).map(lambda v: D(v) / 10**6),
    st.integers(1, 300).map(lambda v: D(v) / 100),
    st.integers(1, 300).map(lambda v: D(v) / 100),
    st.integers(1, 8),
)
def test_cheap_token_ladders_never_cross_their_reference(ref: Decimal, first: Decimal, step: Decimal, n: int) -> None:
    """With a reference below 1, every buy stands below it and every sell above it, at prices above zero."""
    spec = side_ladder(levels=n, first=pct(f"{first}"), step=pct(f"{step}"), size="1000")
    built = ladder.build(job(buy=spec, sell=spec, reference=fixed_ref(f"{ref}")), snapshot(rules=CHEAP))
    for t in built.targets:
        assert t.price > 0
        assert (t.price < ref) if t.side is B else (t.price > ref)
    assert len(built.targets) + len(built.dropped) == 2 * n


def test_a_ladder_level_wins_a_distance_tie_with_a_fixed_order_whatever_its_index() -> None:
    # buy[1] (29800) and orders[0] (29800) are equally far; the ladder's level stays, the fixed order goes
    spec = side_ladder(levels=2, first=ab("100"), step=ab("100"))
    fixed = (FixedOrder(B, D("29800"), D("0.3")),)
    built = ladder.build(job(buy=spec, orders=fixed, limits=Limits(max_orders=2, post_only=False)), snapshot())
    assert [t.level for t in built.targets] == ["buy[0]", "buy[1]"]
    assert dropped(built) == [("orders[0]", B, "29800.00", "0.3000", "over_max_orders")]


@pytest.mark.parametrize(
    ("reference", "ticker"),
    [
        (Reference(ReferenceKind.FIXED, D("0")), Ticker(D("1"), D("2"), D("1"))),
        (Reference(ReferenceKind.FIXED, D("-1")), Ticker(D("1"), D("2"), D("1"))),
        (Reference(ReferenceKind.MID), Ticker(D("0"), D("0"), D("1"))),
        (Reference(ReferenceKind.LAST), Ticker(D("1"), D("2"), D("0"))),
        (Reference(ReferenceKind.BID), Ticker(D("-1"), D("2"), D("1"))),
    ],
)
def test_a_reference_of_zero_or_less_is_refused(reference: Reference, ticker: Ticker) -> None:
    with pytest.raises(UnsafePlanError):
        ladder.build(job(buy=side_ladder(), reference=reference), snapshot(ticker=ticker))


def test_a_geometric_ladder_with_an_absolute_step_names_its_side() -> None:
    with pytest.raises(ConfigError) as raised:
        ladder.build(job(sell=side_ladder(step=ab("5"), spacing=Spacing.GEOMETRIC)), snapshot())
    assert str(raised.value) == "sell: geometric spacing needs a percent step, got 5"


def test_a_level_exactly_at_zero_is_not_positive() -> None:
    built = ladder.build(job(buy=side_ladder(levels=2, first=ab("29999"), step=ab("1"))), snapshot())
    assert rows(built) == [("buy[0]", B, "1.00", "0.0100")]
    assert dropped(built) == [("buy[1]", B, None, None, "non_positive_price")]
    assert built.warnings == ("buy[1]: price 0.00 is not positive; level dropped",)


def test_a_fixed_reference_of_zero_says_which_job_and_what_it_got() -> None:
    with pytest.raises(UnsafePlanError) as raised:
        ladder.build(job(buy=side_ladder(), reference=fixed_ref("0")), snapshot())
    assert str(raised.value) == "test-job: the fixed reference price must be positive, got 0"


def test_a_notional_exactly_at_max_notional_is_left_alone() -> None:
    # 29850 × 0.01 + 29775 × 0.01 = 596.25 exactly
    built = ladder.build(job(buy=side_ladder(levels=2, max_notional=D("596.25"))), snapshot())
    assert [f"{t.volume:f}" for t in built.targets] == ["0.0100", "0.0100"]
    assert built.warnings == ()


def test_a_ladder_level_under_the_minimum_volume_is_reported_in_full() -> None:
    rules = SymbolRules("btcusdt", "btc", "usdt", 2, 4, min_volume=D("0.01"))
    built = ladder.build(job(sell=side_ladder(levels=1, size="0.0099")), snapshot(rules=rules))
    assert dropped(built) == [("sell[0]", S, "30150.00", "0.0099", "below_min_volume")]


def test_a_fixed_order_with_a_price_below_one_and_no_size_is_a_size_problem() -> None:
    built = ladder.build(job(orders=(FixedOrder(B, D("0.5"), D("0")),)), snapshot())
    assert dropped(built) == [("orders[0]", B, None, None, "non_positive_size")]


def test_a_bad_fixed_order_does_not_stop_the_ones_after_it() -> None:
    fixed = (FixedOrder(B, D("0"), D("1")), FixedOrder(S, D("31000"), D("1")))
    built = ladder.build(job(orders=fixed), snapshot())
    assert rows(built) == [("orders[1]", S, "31000.00", "1.0000")]


def test_fixed_orders_on_one_price_are_ranked_by_their_index_as_a_number() -> None:
    # eleven fixed buys on one price: max_orders 10 keeps orders[0..9] and drops orders[10], not orders[9]
    fixed = tuple(FixedOrder(B, D("29000"), D("0.1")) for _ in range(11))
    built = ladder.build(job(orders=fixed, limits=Limits(max_orders=10, post_only=False)), snapshot())
    assert [d.level for d in built.dropped] == ["orders[10]"]


def test_sell_levels_past_28_digits_at_the_tick_are_dropped_and_the_rest_stand() -> None:
    # 30150 × 1.1^i needs more than 28 digits at a 0.01 tick once it reaches 10^26: from about level 520 on
    spec = side_ladder(levels=1000, first=pct("0.5"), step=pct("10"), spacing=Spacing.GEOMETRIC)
    built = ladder.build(job(sell=spec), snapshot())
    gone = [d for d in built.dropped if d.reason == "out_of_range"]
    first_gone = int(gone[0].level[5:-1])
    assert 500 < first_gone < 540
    assert [d.level for d in gone] == [f"sell[{i}]" for i in range(first_gone, 1000)]  # every later level too
    assert [t.level for t in built.targets] == [f"sell[{i}]" for i in range(first_gone)]
    assert all(t.price < D(10) ** 26 for t in built.targets)
    last = gone[-1]
    assert (last.side, last.price, f"{last.volume:f}") == (S, None, "0.01")
    assert built.warnings[-1].startswith("sell[999]: price ")
    assert built.warnings[-1].endswith(" out of range at the symbol's tick; level dropped")


def test_sizes_past_28_digits_at_the_lot_are_dropped_with_their_price() -> None:
    # 0.01 × 1.2^i reaches 10^24 (28 digits at a 0.0001 lot) near level 329; prices stay 1 apart above zero
    spec = side_ladder(levels=500, first=ab("1"), step=ab("1"), size="0.01", size_factor=D("1.2"))
    built = ladder.build(job(buy=spec), snapshot())
    gone = [d for d in built.dropped if d.reason == "out_of_range"]
    first_gone = int(gone[0].level[4:-1])
    assert 320 < first_gone < 340
    assert [d.level for d in gone] == [f"buy[{i}]" for i in range(first_gone, 500)]
    assert (gone[0].side, gone[0].price, gone[0].volume) == (B, D(29999 - first_gone), None)
    assert len(built.targets) == first_gone


def test_a_value_past_any_decimal_is_dropped_as_out_of_range() -> None:
    spec = side_ladder(levels=3, size="1", size_factor=D("1e500000"))
    built = ladder.build(job(buy=spec), snapshot())
    assert [t.level for t in built.targets] == ["buy[0]"]
    assert dropped(built) == [
        ("buy[2]", B, None, None, "out_of_range"),  # 10^1000000: past any Decimal
        ("buy[1]", B, "29775.00", None, "out_of_range"),  # 10^500000: past 28 digits at the lot
    ]
    assert built.warnings == (
        "buy[2]: size out of range; level dropped",
        "buy[1]: size 1.000000E+500000 out of range at the symbol's lot; level dropped",
    )


@pytest.mark.parametrize(
    ("fixed", "warning"),
    [
        (FixedOrder(B, D("1e40"), D("1")), "orders[0]: price out of range; order dropped"),
        (FixedOrder(S, D("100"), D("1e40")), "orders[0]: size out of range; order dropped"),
    ],
)
def test_a_fixed_order_past_28_digits_is_dropped_and_says_which_value(fixed: FixedOrder, warning: str) -> None:
    built = ladder.build(job(orders=(fixed, FixedOrder(B, D("29000"), D("1")))), snapshot())
    assert dropped(built) == [("orders[0]", fixed.side, None, None, "out_of_range")]
    assert built.warnings == (warning,)
    assert [t.level for t in built.targets] == ["orders[1]"]


def test_the_price_limit_warning_names_the_limit() -> None:
    limits = Limits(post_only=False, price_ceiling=D("29800"), price_floor=D("30200"))
    built = ladder.build(job(buy=side_ladder(levels=1), sell=side_ladder(levels=1), limits=limits), snapshot())
    assert dropped(built) == [
        ("buy[0]", B, "29850.00", "0.0100", "price_limit"),
        ("sell[0]", S, "30150.00", "0.0100", "price_limit"),
    ]
    assert built.warnings == (
        "buy[0]: 29850.00 is at or above the price ceiling 29800; dropped",
        "sell[0]: 30150.00 is at or below the price floor 30200; dropped",
    )


def test_merging_two_huge_levels_past_28_digits_drops_the_farther_one() -> None:
    # both round to the 0.01 tick; 6e23 + 6e23 needs 29 digits at the 0.0001 lot
    spec = side_ladder(levels=2, first=ab("29999.985"), step=ab("0.001"), size="600000000000000000000000")
    built = ladder.build(job(buy=spec), snapshot())
    assert rows(built) == [("buy[0]", B, "0.01", "600000000000000000000000.0000")]
    assert dropped(built) == [("buy[1]", B, "0.01", "600000000000000000000000.0000", "out_of_range")]
