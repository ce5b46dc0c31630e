"""ladder.build and ladder.fund: tables for levels, sizes, rounding and guards; properties for safety."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import funding, ladder
from rebalancer.errors import ConfigError, UnsafePlanError
from rebalancer.job import Amount, FixedOrder, Limits, Reference, ReferenceKind, Spacing
from rebalancer.models import Balance, Balances, OrderStatus, Side, SymbolRules, Target, Ticker
from tests.core.kit import RULES, D, ab, job, order, pct, side_ladder, snapshot
from tests.depth import examples

B, S = Side.BUY, Side.SELL


def rows(built: ladder.Ladder) -> list[tuple[str, str, str]]:
    return [(t.level, f"{t.price:f}", f"{t.volume:f}") for t in built.targets]


def reasons(built: ladder.Ladder) -> list[tuple[str, str]]:
    return [(d.level, d.reason) for d in built.dropped]


@pytest.mark.parametrize(
    ("side", "price", "size", "want_price", "want_volume"),
    [
        (B, "100.009", "0.12349", "100.00", "0.1234"),
        (S, "100.001", "0.12349", "100.01", "0.1234"),
        (B, "100.00", "1", "100.00", "1.0000"),
        (S, "100.00", "1", "100.00", "1.0000"),
        (B, "0.019", "5.00009", "0.01", "5.0000"),
        (S, "99.9999", "0.99999", "100.00", "0.9999"),
    ],
)
def test_rounding_buy_down_sell_up_volume_down(
    side: Side, price: str, size: str, want_price: str, want_volume: str
) -> None:
    built = ladder.build(job(orders=(FixedOrder(side, D(price), D(size)),)), snapshot())
    assert rows(built) == [("orders[0]", want_price, want_volume)]


@pytest.mark.parametrize(
    ("spec", "buy", "sell"),
    [
        (side_ladder(), ["29850.00", "29775.00", "29700.00"], ["30150.00", "30225.00", "30300.00"]),
        (
            side_ladder(first=ab("10"), step=ab("2.5")),
            ["29990.00", "29987.50", "29985.00"],
            ["30010.00", "30012.50", "30015.00"],
        ),
        (
            side_ladder(step=pct("1"), spacing=Spacing.GEOMETRIC),
            ["29850.00", "29551.50", "29255.98"],
            ["30150.00", "30451.50", "30756.02"],
        ),
    ],
    ids=["linear-percent", "linear-absolute", "geometric"],
)
def test_level_prices(spec: object, buy: list[str], sell: list[str]) -> None:
    built = ladder.build(job(buy=spec, sell=spec), snapshot())  # type: ignore[arg-type]
    assert [p for level, p, _ in rows(built) if level.startswith("buy")] == buy
    assert [p for level, p, _ in rows(built) if level.startswith("sell")] == sell
    assert built.reference_price == D("30000")


@pytest.mark.parametrize(
    ("kw", "volumes", "dropped"),
    [
        ({}, ["0.0100"] * 4, []),
        ({"size_step": D("0.004")}, ["0.0100", "0.0140", "0.0180", "0.0220"], []),
        ({"size_step": D("-0.004")}, ["0.0100", "0.0060", "0.0020"], [("buy[3]", "non_positive_size")]),
        ({"size_factor": D("1.5")}, ["0.0100", "0.0150", "0.0225", "0.0337"], []),
        ({"size_factor": D("0.1")}, ["0.0100", "0.0010", "0.0001"], [("buy[3]", "below_min_volume")]),
    ],
)
def test_level_sizes(kw: dict[str, Decimal], volumes: list[str], dropped: list[tuple[str, str]]) -> None:
    built = ladder.build(job(buy=side_ladder(levels=4, **kw)), snapshot())
    assert [v for _, _, v in rows(built)] == volumes
    assert reasons(built) == dropped
    assert len(built.warnings) == len(dropped)


def test_max_notional_scales_every_size_by_one_ratio_then_rounds_down() -> None:
    built = ladder.build(job(buy=side_ladder(size_step=D("0.01"), max_notional=D("1000"))), snapshot())
    ratio = D("1000") / (D("29850") * D("0.01") + D("29775") * D("0.02") + D("29700") * D("0.03"))
    assert [t.volume for t in built.targets] == [RULES.round_volume(D("0.01") * k * ratio) for k in (1, 2, 3)]
    assert sum(t.price * t.volume for t in built.targets) <= D("1000")
    assert any("max_notional" in w for w in built.warnings)


def test_max_notional_above_the_ladder_changes_nothing() -> None:
    built = ladder.build(job(buy=side_ladder(max_notional=D("100000"))), snapshot())
    assert [t.volume for t in built.targets] == [D("0.0100")] * 3 and built.warnings == ()


def test_fixed_orders_stand_beside_the_ladder() -> None:
    fixed = (FixedOrder(B, D("25000"), D("0.5")), FixedOrder(S, D("35000.001"), D("0.25")))
    built = ladder.build(job(buy=side_ladder(levels=1), orders=fixed), snapshot())
    assert rows(built) == [
        ("buy[0]", "29850.00", "0.0100"),
        ("orders[0]", "25000.00", "0.5000"),
        ("orders[1]", "35000.01", "0.2500"),
    ]


def test_levels_on_one_tick_are_merged_into_the_nearer_one() -> None:
    # buy: 29999, 29998.996 → .99, 29998.992 → .99, 29998.988 → .98 (sell mirrors it, rounding up)
    spec = side_ladder(levels=4, first=ab("1"), step=ab("0.004"))
    built = ladder.build(job(buy=spec, sell=spec), snapshot())
    assert rows(built) == [
        ("buy[0]", "29999.00", "0.0100"),
        ("buy[1]", "29998.99", "0.0200"),
        ("buy[3]", "29998.98", "0.0100"),
        ("sell[0]", "30001.00", "0.0100"),
        ("sell[1]", "30001.01", "0.0200"),
        ("sell[3]", "30001.02", "0.0100"),
    ]
    assert reasons(built) == [("buy[2]", "merged"), ("sell[2]", "merged")]


def test_levels_under_the_minimum_volume_are_dropped_after_merging() -> None:
    rules = SymbolRules("btcusdt", "btc", "usdt", 2, 4, min_volume=D("0.01"))
    built = ladder.build(job(buy=side_ladder(levels=2, size="0.0099")), snapshot(rules=rules))
    assert built.targets == ()
    assert reasons(built) == [("buy[0]", "below_min_volume"), ("buy[1]", "below_min_volume")]
    merged = ladder.build(
        job(buy=side_ladder(levels=2, first=ab("1.001"), step=ab("0.001"), size="0.006")),
        snapshot(rules=rules),
    )
    assert rows(merged) == [("buy[0]", "29998.99", "0.0120")]


def test_non_positive_buy_prices_are_dropped() -> None:
    built = ladder.build(job(buy=side_ladder(levels=3, first=ab("29999"), step=ab("1"))), snapshot())
    assert rows(built) == [("buy[0]", "1.00", "0.0100")]
    assert reasons(built) == [("buy[1]", "non_positive_price"), ("buy[2]", "non_positive_price")]


def test_band_drops_targets_farther_than_the_band() -> None:
    built = ladder.build(
        job(buy=side_ladder(), sell=side_ladder(), limits=Limits(band=pct("0.6"), post_only=False)),
        snapshot(),
    )
    assert [t.level for t in built.targets] == ["buy[0]", "sell[0]"]
    assert reasons(built) == [
        ("buy[1]", "outside_band"),
        ("buy[2]", "outside_band"),
        ("sell[1]", "outside_band"),
        ("sell[2]", "outside_band"),
    ]
    assert all("band" in w for w in built.warnings)


def test_post_only_drops_what_would_cross_the_book() -> None:
    spec = side_ladder(levels=2, first=ab("50"), step=ab("50"))
    built = ladder.build(
        job(
            buy=spec,
            sell=spec,
            limits=Limits(post_only=True),
            reference=Reference(ReferenceKind.FIXED, D("30100")),
        ),
        snapshot(),
    )
    # buy[0] at 30050 would take the 30010 ask; every sell is above the 29990 bid
    assert [t.level for t in built.targets] == ["buy[1]", "sell[0]", "sell[1]"]
    assert reasons(built) == [("buy[0]", "post_only")]
    low = ladder.build(
        job(sell=spec, limits=Limits(post_only=True), reference=Reference(ReferenceKind.FIXED, D("29900"))),
        snapshot(),
    )
    assert [t.level for t in low.targets] == ["sell[1]"] and reasons(low) == [("sell[0]", "post_only")]


def test_max_orders_keeps_the_nearest_across_both_sides() -> None:
    built = ladder.build(
        job(
            buy=side_ladder(),
            sell=side_ladder(first=pct("0.6")),
            limits=Limits(max_orders=3, post_only=False),
        ),
        snapshot(),
    )
    assert [t.level for t in built.targets] == ["buy[0]", "buy[1]", "sell[0]"]
    assert [t.level for t in built.over_limit] == ["buy[2]", "sell[1]", "sell[2]"]
    assert [r for _, r in reasons(built)] == ["over_max_orders"] * 3


@pytest.mark.parametrize(
    ("kind", "ticker", "want"),
    [
        (ReferenceKind.MID, Ticker(D("99"), D("101"), D("50")), D("100")),
        (ReferenceKind.BID, Ticker(D("99"), D("101"), D("50")), D("99")),
        (ReferenceKind.ASK, Ticker(D("99"), D("101"), D("50")), D("101")),
        (ReferenceKind.LAST, Ticker(None, None, D("50")), D("50")),
    ],
)
def test_reference_kinds(kind: ReferenceKind, ticker: Ticker, want: Decimal) -> None:
    assert ladder.build(job(reference=Reference(kind)), snapshot(ticker=ticker)).reference_price == want


@pytest.mark.parametrize(
    ("kind", "ticker", "words"),
    [
        (ReferenceKind.MID, Ticker(None, D("101"), D("50")), "no 'mid' price"),
        (ReferenceKind.BID, Ticker(None, D("101"), D("50")), "no 'bid' price"),
        (ReferenceKind.ASK, Ticker(D("99"), None, D("50")), "no 'ask' price"),
        (ReferenceKind.LAST, Ticker(D("99"), D("101"), None), "no 'last' price"),
        (ReferenceKind.MID, Ticker(D("102"), D("101"), D("50")), "crossed"),
    ],
)
def test_missing_reference_is_unsafe(kind: ReferenceKind, ticker: Ticker, words: str) -> None:
    with pytest.raises(UnsafePlanError, match=words):
        ladder.build(job(buy=side_ladder(), reference=Reference(kind)), snapshot(ticker=ticker))


def test_fixed_reference_ignores_the_book() -> None:
    built = ladder.build(
        job(buy=side_ladder(levels=1), reference=Reference(ReferenceKind.FIXED, D("6400"))),
        snapshot(ticker=Ticker(None, None, None)),
    )
    assert rows(built) == [("buy[0]", "6368.00", "0.0100")]


def test_geometric_spacing_with_an_absolute_step_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="geometric"):
        ladder.build(job(buy=side_ladder(step=ab("5"), spacing=Spacing.GEOMETRIC)), snapshot())


def test_fund_trims_the_farthest_placements_first() -> None:
    placements = ladder.build(job(buy=side_ladder(), sell=side_ladder()), snapshot()).targets
    poor = Balances({"usdt": Balance(D("600")), "btc": Balance(D("0.015"))})
    funded = funding.fund(placements, (), snapshot(balances=poor), D("30000"))
    assert [t.level for t in funded.placements] == ["buy[0]", "buy[1]", "sell[0]"]
    assert [(d.level, d.reason) for d in funded.dropped] == [
        ("buy[2]", "insufficient_balance"),
        ("sell[2]", "insufficient_balance"),
        ("sell[1]", "insufficient_balance"),
    ]
    assert len(funded.warnings) == 3


def test_fund_counts_what_the_cancels_release() -> None:
    placements = ladder.build(job(buy=side_ladder()), snapshot()).targets  # costs 893.25 USDT
    poor = snapshot(balances=Balances({"usdt": Balance(D("600"))}))
    half = order("1", B, "29000", "0.02", deal="0.01", status=OrderStatus.PARTIALLY_FILLED)
    assert len(funding.fund(placements, [half], poor, D("30000")).placements) == 2  # releases 290
    whole = order("2", B, "29500", "0.01")
    assert len(funding.fund(placements, [half, whole], poor, D("30000")).placements) == 3  # releases 585


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from([B, S]), st.integers(1, 50), st.integers(1, 30)), max_size=12),
    st.integers(0, 3000),
    st.integers(0, 300),
    st.lists(st.integers(1, 20), max_size=4),
)
def test_funded_placements_always_fit_the_budget(
    rows_: list[tuple[Side, int, int]], quote: int, base: int, cancel_volumes: list[int]
) -> None:
    placements = [Target(f"{s.value.lower()}[{i}]", s, D(p), D(v) / 10) for i, (s, p, v) in enumerate(rows_)]
    cancelled = [order(str(i), B if i % 2 else S, "10", str(v)) for i, v in enumerate(cancel_volumes)]
    balances = Balances({"usdt": Balance(D(quote)), "btc": Balance(D(base) / 10)})
    funded = funding.fund(placements, cancelled, snapshot(balances=balances), D("25"))
    for side, coin in ((B, "usdt"), (S, "btc")):
        budget = balances.available(coin) + sum((funding.released(o) for o in cancelled if o.side is side), D(0))
        assert sum((funding.cost(t) for t in funded.placements if t.side is side), D(0)) <= budget
    assert len(funded.placements) + len(funded.dropped) == len(placements)


prices = st.decimals(min_value=D("0.5"), max_value=D("100000"), places=6)
percents = st.decimals(min_value=D("0.001"), max_value=D("5"), places=3)


@settings(max_examples=examples(80), deadline=None)
@given(
    prices,
    percents,
    percents,
    st.integers(1, 6),
    st.integers(0, 8),
    st.integers(0, 8),
    st.decimals(min_value=D("0.0001"), max_value=D("10"), places=5),
)
def test_rounding_never_makes_an_order_more_aggressive(
    ref: Decimal,
    first: Decimal,
    step: Decimal,
    levels: int,
    price_places: int,
    amount_places: int,
    size: Decimal,
) -> None:
    rules = SymbolRules("x", "b", "q", price_places, amount_places)
    spec = side_ladder(levels=levels, first=Amount(first, True), step=Amount(step, True), size=str(size))
    built = ladder.build(job(buy=spec, sell=spec, reference=Reference(ReferenceKind.FIXED, ref)), snapshot(rules=rules))
    for t in built.targets:
        i = int(t.level.split("[")[1].rstrip("]"))
        distance = ref * first / 100 + i * (ref * step / 100)
        assert isinstance(t.price, Decimal) and isinstance(t.volume, Decimal)
        if t.side is B:
            assert t.price <= ref - distance and t.price < ref
        else:
            assert t.price >= ref + distance
        merged = 1 + sum(1 for d in built.dropped if d.reason == "merged" and d.side is t.side)
        assert rules.round_volume(size) <= t.volume <= size * merged  # volumes round down; merging only adds
        assert t.price == rules.round_price(t.price, t.side) and t.volume == rules.round_volume(t.volume)
    for d in built.dropped:
        assert d.reason in ("merged", "below_min_volume", "non_positive_price")


def _fits(value: Decimal, places: int) -> bool:
    """True when ``value`` can be rounded to ``places`` in the default context (what every later step does)."""
    try:
        value.quantize(Decimal(1).scaleb(-places))
    except ArithmeticError:
        return False
    return True


@pytest.mark.parametrize(
    ("spec", "side", "first_dropped"),
    [
        (side_ladder(1000, step=pct("10"), spacing=Spacing.GEOMETRIC), "sell", "sell[520]"),
        (side_ladder(500, size_factor=D("1.2")), "buy", "buy[329]"),
        (side_ladder(500, size_factor=D("1.2")), "sell", "sell[329]"),
        (side_ladder(3, first=ab("1E+30")), "sell", "sell[0]"),
    ],
)
def test_a_ladder_past_what_a_decimal_holds_drops_those_levels_with_a_reason(
    spec: object, side: str, first_dropped: str
) -> None:
    built = ladder.build(job(**{side: spec}), snapshot())
    out_of_range = [d.level for d in built.dropped if d.reason == "out_of_range"]
    assert out_of_range and out_of_range[0] == first_dropped
    assert any(w.startswith(f"{first_dropped}: ") and "out of range" in w for w in built.warnings)
    assert all(_fits(t.price, RULES.price_precision) and _fits(t.volume, RULES.amount_precision) for t in built.targets)


def test_an_overflowing_side_under_max_notional_still_builds() -> None:
    spec = side_ladder(500, size_factor=D("1.2"), max_notional=D("100000"))
    built = ladder.build(job(buy=spec), snapshot())
    assert built.targets and sum(t.price * t.volume for t in built.targets) <= D("100000")


@settings(max_examples=80, deadline=None)
@given(
    levels=st.integers(1, 1000),
    step=st.decimals(D("0.01"), D("99"), places=2),
    factor=st.one_of(st.none(), st.decimals(D("0.01"), D("50"), places=2)),
    geometric=st.booleans(),
)
def test_any_valid_side_builds_into_targets_every_later_step_can_round(
    levels: int, step: Decimal, factor: Decimal | None, geometric: bool
) -> None:
    spacing = Spacing.GEOMETRIC if geometric else Spacing.LINEAR
    spec = side_ladder(levels, step=pct(str(step)), spacing=spacing, size_factor=factor)
    built = ladder.build(job(buy=spec, sell=spec), snapshot())
    assert all(_fits(t.price, RULES.price_precision) and _fits(t.volume, RULES.amount_precision) for t in built.targets)
