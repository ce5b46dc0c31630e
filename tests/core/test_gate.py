"""The pre-trade gate (rebalancer.core.gate): each rule at its exact boundary, adversarial batches against arbitrary
books checked by an independent checker, and every batch the real planner makes admitted unchanged."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from rebalancer.core import gate
from rebalancer.core.diff import Diff
from rebalancer.core.dropped import Dropped
from rebalancer.core.gate import Book, Rule
from rebalancer.core.lifecycle import Lifecycle
from rebalancer.core.plan import Action, compute_plan, draft_plan, finish_plan, plan_fingerprint
from rebalancer.job import Amount, FixedOrder, Inventory, Job, Limits, Ownership, Tolerance
from rebalancer.models import Balance, Balances, Order, OrderStatus, Side, SymbolRules
from rebalancer.vocab import ActionKind, CancelReason
from tests.core.kit import RULES, D, job, order, pct, side_ladder, snapshot, target
from tests.depth import examples

B, S = Side.BUY, Side.SELL
P, C, K = ActionKind.PLACE, ActionKind.CANCEL, ActionKind.KEEP
BID, ASK, REF = D("29990.00"), D("30010.00"), D("30000.00")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def place(level: str, side: Side, price: str, volume: str = "0.0100") -> Action:
    return Action(P, side, D(price), D(volume), level=level)


def cancel(oid: str, side: Side = B, price: str = "29000.00", volume: str = "0.0100") -> Action:
    return Action(C, side, D(price), D(volume), order_id=oid, reason=CancelReason.NOT_IN_LADDER)


def keep(oid: str, level: str, side: Side = B, price: str = "29850.00") -> Action:
    return Action(K, side, D(price), D("0.0100"), order_id=oid, level=level)


def book(
    *orders: Order,
    owned: frozenset[str] | None = None,
    reference: Decimal | None = REF,
    bid: Decimal | None = BID,
    ask: Decimal | None = ASK,
    rules: SymbolRules = RULES,
) -> Book:
    return Book(rules, tuple(orders), owned, reference, bid, ask)


def a_job(limits: Limits | None = None, **kw: object) -> Job:
    """Three buy and three sell levels of 0.01, no band, post-only off (so each table pins one rule)."""
    kw.setdefault("buy", side_ladder())
    kw.setdefault("sell", side_ladder())
    return job(limits=limits or Limits(post_only=False, max_jump=None), **kw)  # type: ignore[arg-type]


def rules_of(the_job: Job, the_book: Book, actions: Sequence[Action]) -> list[tuple[str, Rule]]:
    return [(r.action.level or r.action.order_id or "?", r.rule) for r in gate.check(the_job, the_book, actions)]


# --- each rule at its boundary ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "refused"),
    [
        (place("buy[0]", B, "29850.00"), []),
        (place("buy[0]", B, "29850.001"), [("buy[0]", Rule.TICK)]),
        (place("buy[0]", B, "29850.00", "0.01001"), [("buy[0]", Rule.LOT)]),
        (place("buy[0]", B, "0"), [("buy[0]", Rule.POSITIVE)]),
        (place("buy[0]", B, "29850.00", "0"), [("buy[0]", Rule.POSITIVE)]),
        (place("buy[0]", B, "1E+40"), [("buy[0]", Rule.TICK)]),
        (place("buy[0]", B, "29850.00", "1E-40"), [("buy[0]", Rule.LOT)]),
        (place("buy[2]", B, "29700.00"), []),
        (place("buy[3]", B, "29700.00"), [("buy[3]", Rule.LEVEL)]),
        (place("buy[01]", B, "29700.00"), [("buy[01]", Rule.LEVEL)]),
        (place("buy[-1]", B, "29700.00"), [("buy[-1]", Rule.LEVEL)]),
        (place("buy[0] ", B, "29700.00"), [("buy[0] ", Rule.LEVEL)]),
        (place("orders[0]", B, "29700.00"), [("orders[0]", Rule.LEVEL)]),
        (place("bid[0]", B, "29700.00"), [("bid[0]", Rule.LEVEL)]),
        (place("buy[0]", S, "30150.00"), [("buy[0]", Rule.SIDE)]),
        (place("sell[0]", B, "29850.00"), [("sell[0]", Rule.SIDE)]),
        (place("sell[2]", S, "30300.00"), []),
    ],
)
def test_a_placement_on_its_own(action: Action, refused: list[tuple[str, Rule]]) -> None:
    assert rules_of(a_job(), book(), [action]) == refused


def test_levels_of_a_job_without_a_side_or_with_fixed_orders() -> None:
    only_buys = a_job(sell=None, orders=(FixedOrder(S, D("31000"), D("0.5")),))
    assert rules_of(only_buys, book(), [place("sell[0]", S, "30150.00")]) == [("sell[0]", Rule.LEVEL)]
    assert rules_of(only_buys, book(), [place("orders[0]", S, "31000.00")]) == []
    assert rules_of(only_buys, book(), [place("orders[0]", B, "29000.00")]) == [("orders[0]", Rule.SIDE)]
    assert rules_of(only_buys, book(), [place("orders[1]", S, "31000.00")]) == [("orders[1]", Rule.LEVEL)]
    assert gate.level_side(only_buys, "buy[2]") is B
    assert gate.level_side(only_buys, "buy[999999999]") is None
    assert gate.level_side(only_buys, "buy[1000000000]") is None


@pytest.mark.parametrize(
    ("limits", "action", "refused"),
    [
        (Limits(price_ceiling=D("29850")), place("buy[0]", B, "29849.99"), []),
        (Limits(price_ceiling=D("29850")), place("buy[0]", B, "29850.00"), [Rule.PRICE_LIMIT]),
        (Limits(price_ceiling=D("29850")), place("sell[0]", S, "30150.00"), []),
        (Limits(price_floor=D("30150")), place("sell[0]", S, "30150.01"), []),
        (Limits(price_floor=D("30150")), place("sell[0]", S, "30150.00"), [Rule.PRICE_LIMIT]),
        (Limits(price_floor=D("30150")), place("buy[0]", B, "29850.00"), []),
        (Limits(band=pct("1")), place("buy[0]", B, "29700.00"), []),
        (Limits(band=pct("1")), place("buy[0]", B, "29699.99"), [Rule.BAND]),
        (Limits(band=pct("1")), place("sell[0]", S, "30300.00"), []),
        (Limits(band=pct("1")), place("sell[0]", S, "30300.01"), [Rule.BAND]),
        (Limits(band=Amount(D("150"))), place("buy[0]", B, "29850.00"), []),
        (Limits(band=Amount(D("150"))), place("buy[0]", B, "29849.99"), [Rule.BAND]),
        (Limits(post_only=True), place("buy[0]", B, "30009.99"), []),
        (Limits(post_only=True), place("buy[0]", B, "30010.00"), [Rule.POST_ONLY]),
        (Limits(post_only=True), place("sell[0]", S, "29990.01"), []),
        (Limits(post_only=True), place("sell[0]", S, "29990.00"), [Rule.POST_ONLY]),
        (Limits(post_only=False), place("buy[0]", B, "30010.00"), []),
        (Limits(post_only=False), place("sell[0]", S, "29990.00"), []),
    ],
)
def test_price_limits_band_and_post_only(limits: Limits, action: Action, refused: list[Rule]) -> None:
    assert [r for _, r in rules_of(a_job(limits), book(), [action])] == refused


def test_a_band_without_a_trusted_reference_places_nothing_and_no_band_needs_none() -> None:
    action = place("buy[0]", B, "29850.00")
    assert rules_of(a_job(Limits(band=pct("50"))), book(reference=None), [action]) == [("buy[0]", Rule.BAND)]
    assert rules_of(a_job(Limits(post_only=False)), book(reference=None), [action]) == []


def test_post_only_against_an_empty_side_of_the_book() -> None:
    the_job = a_job(Limits(post_only=True))
    assert rules_of(the_job, book(bid=None, ask=None), [place("buy[0]", B, "40000.00")]) == []
    assert rules_of(the_job, book(bid=None, ask=None), [place("sell[0]", S, "1.00")]) == []


def test_the_batch_goes_to_the_jobs_symbol_or_nothing_goes() -> None:
    other = SymbolRules("ethusdt", "eth", "usdt", price_precision=2, amount_precision=4)
    mine = order("1", B, "29000.00", "0.0100")
    refused = gate.check(a_job(), book(mine, rules=other), [cancel("1"), place("buy[0]", B, "29850.00")])
    assert [(r.action.action, r.rule) for r in refused] == [(C, Rule.SYMBOL), (P, Rule.SYMBOL)]
    assert "the batch is for ethusdt, the job trades btcusdt" in refused[0].why


@pytest.mark.parametrize(
    ("action", "why"),
    [
        (place("buy[7]", B, "29850.00"), "not a level the job declares"),
        (place("buy[0]", S, "29850.00"), "the level is a buy level"),
        (place("buy[0]", B, "0"), "price and volume must be positive"),
        (place("buy[0]", B, "29850.001"), "the price is not on the symbol's tick 0.01"),
        (place("buy[0]", B, "29850.00", "0.00001"), "the volume is not on the symbol's lot 0.0001"),
        (cancel("404"), "not an open order of the book read in this pass"),
    ],
)
def test_each_refusal_says_why_in_words(action: Action, why: str) -> None:
    (refusal,) = gate.check(a_job(), book(), [action])
    assert refusal.why == why


def test_a_level_placed_twice_and_an_order_cancelled_twice_say_so() -> None:
    batch = [cancel("7"), cancel("7"), place("buy[0]", B, "29850.00"), place("buy[0]", B, "29840.00")]
    refused = gate.check(a_job(), book(MINE), batch)
    assert [r.why for r in refused] == ["cancelled twice in one batch", "the level is placed twice"]
    # the first cancel of the two is admitted, so its order does not stand against max_orders
    one = a_job(Limits(post_only=False, max_orders=1))
    assert rules_of(one, book(MINE), [cancel("7"), cancel("7"), place("buy[0]", B, "29850.00")]) == [
        ("7", Rule.NOT_OWNED)
    ]


# --- cancels and ownership ---------------------------------------------------------------------------------------

MINE, MANUAL = order("7", B, "29000.00", "0.0100"), order("8", B, "29100.00", "0.0100")


@pytest.mark.parametrize(
    ("owned", "actions", "refused"),
    [
        (frozenset({"7"}), [cancel("7")], []),
        (frozenset({"7"}), [cancel("8")], [("8", Rule.NOT_OWNED)]),
        (None, [cancel("8")], []),
        (None, [cancel("9")], [("9", Rule.NOT_OWNED)]),
        (frozenset({"7", "9"}), [cancel("9")], [("9", Rule.NOT_OWNED)]),
        (frozenset({"7"}), [cancel("7"), cancel("7")], [("7", Rule.NOT_OWNED)]),
    ],
)
def test_cancels_only_of_open_orders_the_job_owns(
    owned: frozenset[str] | None, actions: list[Action], refused: list[tuple[str, Rule]]
) -> None:
    assert rules_of(a_job(), book(MINE, MANUAL, owned=owned), actions) == refused


def test_a_cancel_refusal_says_which_order_and_why() -> None:
    (refusal,) = gate.check(a_job(), book(MINE, MANUAL, owned=frozenset({"7"})), [cancel("8")])
    assert refusal.sentence() == (
        "cancel of order 8 (BUY 29000.00 × 0.0100): not an order this job owns (ownership tracked) (not_owned)"
    )
    (twice, _) = gate.check(a_job(), book(MINE), [cancel("9"), cancel("9")])
    assert twice.why == "not an open order of the book read in this pass"


# --- levels placed twice ------------------------------------------------------------------------------------------


def test_a_level_is_placed_once_and_never_beside_a_kept_order_of_it() -> None:
    standing = order("7", B, "29851.00", "0.0100")
    twice = [place("buy[0]", B, "29850.00"), place("buy[0]", B, "29849.00")]
    assert rules_of(a_job(), book(), twice) == [("buy[0]", Rule.DUPLICATE_LEVEL)]
    beside = [keep("7", "buy[0]"), place("buy[0]", B, "29850.00")]
    refused = gate.check(a_job(), book(standing), beside)
    assert [(r.action.level, r.rule, r.why) for r in refused] == [
        ("buy[0]", Rule.DUPLICATE_LEVEL, "a kept order already stands for the level")
    ]
    # a keep of an order the batch cancels, or that is not on the book, stands for nothing
    assert rules_of(a_job(), book(standing), [cancel("7"), keep("7", "buy[0]"), beside[1]]) == []
    assert rules_of(a_job(), book(), beside) == []


def paired(*orders: Order, levels: dict[str, str], owned: frozenset[str] | None = None) -> Book:
    return Book(RULES, tuple(orders), owned, REF, BID, ASK, levels)


SEVEN = order("7", B, "29851.00", "0.0100")
AGAIN = place("buy[0]", B, "29850.00")
HELD_BY_SEVEN = [("buy[0]", Rule.DUPLICATE_LEVEL)]


@pytest.mark.parametrize(
    ("the_book", "actions", "refused"),
    [
        # the plan leaves the KEEP out: the book's pairing still says order 7 stands for buy[0]
        (paired(SEVEN, levels={"7": "buy[0]"}), [AGAIN], HELD_BY_SEVEN),
        (paired(SEVEN, levels={"7": "buy[0]"}), [keep("7", "buy[1]"), AGAIN], HELD_BY_SEVEN),
        # cancelled in the same batch (a refresh, a replacement): the level is free
        (paired(SEVEN, levels={"7": "buy[0]"}), [cancel("7"), AGAIN], []),
        (paired(SEVEN, levels={"7": "buy[0]"}), [AGAIN, cancel("7")], []),
        # the pairing names the level, not a price: order 7 stands for buy[1], so buy[0] beside it is placed
        (paired(SEVEN, levels={"7": "buy[1]"}), [AGAIN], []),
        (paired(SEVEN, levels={"7": "buy[1]"}), [place("buy[1]", B, "29700.00")], [("buy[1]", Rule.DUPLICATE_LEVEL)]),
        # not standing: pending cancellation, filled, not the job's, or not on the book at all
        (
            paired(order("7", B, "29851.00", "0.01", status=OrderStatus.CANCEL_PENDING), levels={"7": "buy[0]"}),
            [AGAIN],
            [],
        ),
        (paired(order("7", B, "29851.00", "0.01", status=OrderStatus.FILLED), levels={"7": "buy[0]"}), [AGAIN], []),
        (paired(SEVEN, levels={"7": "buy[0]"}, owned=frozenset({"8"})), [AGAIN], []),
        (paired(SEVEN, levels={"6": "buy[0]"}), [AGAIN], []),
        (paired(SEVEN, levels={"7": "buy[0]"}, owned=frozenset({"7"})), [AGAIN], HELD_BY_SEVEN),
        # a partly filled order still stands for its level
        (
            paired(order("7", B, "29851.00", "0.02", "0.01", OrderStatus.PARTIALLY_FILLED), levels={"7": "buy[0]"}),
            [AGAIN],
            HELD_BY_SEVEN,
        ),
        # two orders paired with one level: the level stays taken until both are cancelled
        (
            paired(SEVEN, order("8", B, "29849.00", "0.01"), levels={"7": "buy[0]", "8": "buy[0]"}),
            [cancel("7"), AGAIN],
            HELD_BY_SEVEN,
        ),
        (
            paired(SEVEN, order("8", B, "29849.00", "0.01"), levels={"7": "buy[0]", "8": "buy[0]"}),
            [cancel("7"), cancel("8"), AGAIN],
            [],
        ),
    ],
)
def test_a_level_a_standing_order_stands_for_is_never_placed_again(
    the_book: Book, actions: list[Action], refused: list[tuple[str, Rule]]
) -> None:
    assert rules_of(a_job(), the_book, actions) == refused


def test_the_refusal_names_the_standing_order_the_lowest_id_first() -> None:
    both = paired(SEVEN, order("10", B, "29849.00", "0.01"), levels={"10": "buy[0]", "7": "buy[0]"})
    (refusal,) = gate.check(a_job(), both, [AGAIN])
    assert refusal.sentence() == (
        "buy[0] BUY 29850.00 × 0.0100: the job's order 7 already stands for the level (duplicate_level)"
    )


def test_standing_levels_pairs_keeps_spares_and_a_refreshed_order_with_their_levels() -> None:
    kept, stale, spare = (
        order("1", B, "29851.00", "0.01"),
        order("2", S, "30224.00", "0.01"),
        order("3", B, "29.00", "1"),
    )
    gone = order("4", S, "30500.00", "0.01")
    result = Diff(
        keep=((kept, target("buy[0]", B, "29850.00", "0.01")), (spare, target("buy[2]", B, "29700.00", "0.01"))),
        cancel=((stale, CancelReason.MAX_AGE), (gone, CancelReason.NOT_IN_LADDER)),
        place=(
            target("sell[1]", S, "30225.00", "0.01"),
            target("sell[0]", S, "30150.00", "0.01"),
            target("buy[1]", B, "30149.00", "0.01"),
        ),
    )
    assert gate.standing_levels(result) == {"1": "buy[0]", "3": "buy[2]", "2": "sell[1]"}  # the nearest sell
    # a refreshed order with no placement of its side left (trimmed) stands for nothing the batch places
    assert gate.standing_levels(Diff(keep=(), cancel=((stale, CancelReason.MAX_AGE),), place=())) == {}


def test_the_planners_pairing_of_a_refresh_and_a_held_level_reaches_the_gate() -> None:
    the_job = a_job(buy=side_ladder(levels=2), sell=None)
    old = Order("1", B, D("29850.00"), D("0.0100"), D(0), OrderStatus.NEW, created_at=0)
    far = order("2", B, "29000.00", "0.0100")
    life = Lifecycle(NOW, max_age=timedelta(seconds=1))
    draft = draft_plan(the_job, snapshot((old, far)), None, held_levels={"buy[1]": "held"}, life=life)
    levels = gate.standing_levels(draft.result)
    assert levels == {"1": "buy[0]", "2": "buy[1]"}
    plan = finish_plan(draft, None)
    the_book = paired(old, far, levels=levels)
    assert rules_of(the_job, the_book, plan.actions) == []
    forged = [a for a in plan.actions if a.order_id != "1"]
    assert rules_of(the_job, the_book, forged) == [("buy[0]", Rule.DUPLICATE_LEVEL)]
    assert rules_of(the_job, the_book, [*plan.actions, place("buy[1]", B, "29700.00")]) == [
        ("buy[1]", Rule.DUPLICATE_LEVEL)
    ]


# --- the count ---------------------------------------------------------------------------------------------------


def test_max_orders_counts_the_jobs_open_orders_left_plus_the_placements() -> None:
    the_job = a_job(Limits(post_only=False, max_orders=3))
    a, b = order("1", B, "29000.00", "0.0100"), order("2", S, "31000.00", "0.0100")
    places = [place("buy[0]", B, "29850.00"), place("sell[0]", S, "30150.00")]
    assert rules_of(the_job, book(a), places) == []
    assert rules_of(the_job, book(a, b), places) == [("sell[0]", Rule.MAX_ORDERS)]
    assert rules_of(the_job, book(a, b), [cancel("1"), *places]) == []
    pending = order("3", B, "29000.00", "0.0100", status=OrderStatus.CANCEL_PENDING)
    filled = order("4", B, "29000.00", "0.0100", status=OrderStatus.FILLED)
    assert rules_of(the_job, book(a, pending, filled), places) == []
    # a manual order counts only when the job owns the whole symbol
    assert rules_of(the_job, book(a, b, owned=frozenset({"1"})), places) == []
    assert rules_of(the_job, book(a, b, owned=None), places) == [("sell[0]", Rule.MAX_ORDERS)]
    (refusal,) = gate.check(the_job, book(a, b), places)
    assert refusal.why == "4 of the job's orders would stand, more than max_orders 3"


# --- self-trade --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("standing", "action", "refused"),
    [
        (order("1", S, "30100.00", "0.0100"), place("buy[0]", B, "30099.99"), []),
        (order("1", S, "30100.00", "0.0100"), place("buy[0]", B, "30100.00"), [Rule.SELF_TRADE]),
        (order("1", B, "29900.00", "0.0100"), place("sell[0]", S, "29900.01"), []),
        (order("1", B, "29900.00", "0.0100"), place("sell[0]", S, "29900.00"), [Rule.SELF_TRADE]),
        (
            order("1", S, "30100.00", "0.0100", status=OrderStatus.CANCEL_PENDING),
            place("buy[0]", B, "30100.00"),
            [],
        ),
        (order("1", S, "30100.00", "0.0100", status=OrderStatus.CANCELLED), place("buy[0]", B, "30100.00"), []),
        (order("1", B, "30100.00", "0.0100"), place("buy[0]", B, "30100.00"), []),
    ],
)
def test_no_placement_crosses_the_jobs_own_orders(standing: Order, action: Action, refused: list[Rule]) -> None:
    assert [r for _, r in rules_of(a_job(), book(standing), [action])] == refused


def test_self_trade_spares_cancelled_and_manual_orders_and_sees_earlier_placements() -> None:
    sell = order("1", S, "30100.00", "0.0100")
    assert rules_of(a_job(), book(sell), [cancel("1", S), place("buy[0]", B, "30100.00")]) == []
    assert rules_of(a_job(), book(sell, owned=frozenset()), [place("buy[0]", B, "30100.00")]) == []
    pair = [place("buy[0]", B, "30050.00"), place("sell[0]", S, "30050.00"), place("sell[1]", S, "30050.01")]
    assert rules_of(a_job(), book(), pair) == [("sell[0]", Rule.SELF_TRADE)]
    later = [place("sell[0]", S, "30050.00"), place("sell[1]", S, "30040.00"), place("buy[0]", B, "30040.00")]
    assert rules_of(a_job(), book(), later) == [("buy[0]", Rule.SELF_TRADE)]
    lowest = [place("sell[0]", S, "30050.00"), place("sell[1]", S, "30100.00"), place("buy[0]", B, "30060.00")]
    assert rules_of(a_job(), book(), lowest) == [("buy[0]", Rule.SELF_TRADE)]
    highest = [place("buy[0]", B, "29990.00"), place("buy[1]", B, "29995.00"), place("sell[0]", S, "29992.00")]
    assert rules_of(a_job(), book(), highest) == [("sell[0]", Rule.SELF_TRADE)]


# --- volume ------------------------------------------------------------------------------------------------------


NO_TOL = Tolerance(size=Amount(D("0")))


@pytest.mark.parametrize(
    ("the_job", "bound"),
    [
        (a_job(), D("0.033")),  # 3 × 0.01, each widened by 10 %
        (a_job(tolerance=Tolerance(size=Amount(D("0.001")))), D("0.033")),
        (a_job(tolerance=Tolerance(size=Amount(D("0")))), D("0.03")),
        (a_job(inventory=Inventory(D(50), D(20))), D("0.066")),
        (a_job(orders=(FixedOrder(B, D("29000"), D("0.5")), FixedOrder(S, D("31000"), D("7")))), D("0.583")),
        (a_job(buy=side_ladder(size="0.01", size_step=D("-0.006"))), D("0.0154")),  # 0.01, 0.004, -0.002 → 0
        (a_job(buy=side_ladder(size="0.01", size_factor=D("2"))), D("0.077")),
        (a_job(buy=side_ladder(levels=12, size="1", size_factor=D("1E+100000"))), None),
        (a_job(buy=side_ladder(levels=2, size="9E+999999"), tolerance=Tolerance(size=pct("0"))), D("9E+999999")),
        (a_job(buy=side_ladder(levels=2, size="9.5E+999999")), D("0")),
        (a_job(buy=None), D("0")),
        (
            a_job(
                buy=side_ladder(levels=1, size="1E+30"), orders=(FixedOrder(B, D(1), D("0.0001")),), tolerance=NO_TOL
            ),
            D("1.000000000000000000000000001E+30"),
        ),  # a sum beyond 28 digits rounds up, never down
        (
            a_job(
                buy=side_ladder(levels=2, size="9E+999999"), orders=(FixedOrder(B, D(1), D("0.5")),), tolerance=NO_TOL
            ),
            D("9.000000000000000000000000001E+999999"),
        ),  # the second level overflows the sum; the fixed order adds on
        (a_job(buy=side_ladder(levels=1, size="9.5E+999999"), orders=(FixedOrder(B, D(1), D("0.5")),)), D("0.55")),
    ],
)
def test_the_volume_a_side_may_hold_is_what_the_ladder_declares(the_job: Job, bound: Decimal | None) -> None:
    declared = gate.declared_volume(the_job, B)
    if bound is None:  # sizes that overflow are never placed: the bound is what the others add up to
        assert D("1.1E+900000") <= declared < D("1.2E+900000")
    else:
        assert declared == bound


def test_volume_per_side_at_the_boundary() -> None:
    standing = order("1", B, "29000.00", "0.0200", "0.0100")  # 0.01 remaining
    on = [place("buy[0]", B, "29850.00", "0.0110"), place("buy[1]", B, "29800.00", "0.0120")]
    over = [on[0], place("buy[1]", B, "29800.00", "0.0121")]
    assert rules_of(a_job(), book(standing), on) == []
    assert rules_of(a_job(), book(standing), over) == [("buy[1]", Rule.VOLUME)]
    sells = order("2", S, "31000.00", "0.0300")  # the other side's volume does not count
    assert rules_of(a_job(), book(standing, sells), on) == []
    (refusal,) = gate.check(a_job(), book(standing), over)
    assert refusal.why == "buy volume would reach 0.0331, more than the ladder declares (0.033 with tolerance and skew)"


def test_each_level_holds_its_size_widened_and_a_level_of_size_zero_holds_nothing() -> None:
    the_job = a_job(buy=side_ladder(size="0.01", size_step=D("-0.005")))  # 0.01, 0.005, 0
    assert gate.level_volumes(the_job, B) == [D("0.011"), D("0.0055")]
    assert gate.level_volumes(the_job, S) == [D("0.011")] * 3


def test_the_smallest_level_is_the_sides_own_and_a_side_without_levels_takes_nothing_beyond() -> None:
    the_job = a_job(sell=side_ladder(size="0.05"))  # sells of 0.055 do not measure the buys
    spared = order("1", B, "29000.00", "0.0200")
    assert rules_of(the_job, book(spared), [place("buy[0]", B, "29850.00", "0.0220")]) == []
    assert rules_of(the_job, book(spared), [place("buy[0]", B, "29850.00", "0.0221")]) == [("buy[0]", Rule.VOLUME)]
    sells_only = a_job(buy=None)
    assert rules_of(sells_only, book(spared), [place("sell[0]", S, "30150.00")]) == []


def test_what_standing_orders_hold_beyond_the_smallest_level_is_not_the_batchs() -> None:
    # levels of 0.011 at most (10 %): an order of 0.02 holds 0.009 beyond, so the side may hold 0.033 + 0.009
    spared = order("1", B, "29000.00", "0.0200")
    assert rules_of(a_job(), book(spared), [place("buy[0]", B, "29850.00", "0.0220")]) == []
    assert rules_of(a_job(), book(spared), [place("buy[0]", B, "29850.00", "0.0221")]) == [("buy[0]", Rule.VOLUME)]
    # the smallest level is the measure: a fixed order of 0.5 beside the levels of 0.011 does not widen it
    fixed = a_job(orders=(FixedOrder(B, D("29000"), D("0.5")),))
    assert gate.declared_volume(fixed, B) == D("0.583")
    assert rules_of(fixed, book(spared), [place("buy[0]", B, "29850.00", "0.5720")]) == []
    assert rules_of(fixed, book(spared), [place("buy[0]", B, "29850.00", "0.5721")]) == [("buy[0]", Rule.VOLUME)]


def test_a_side_already_over_its_volume_may_shrink_but_never_grow() -> None:
    four = [order(str(i), B, f"2900{i}.00", "0.0110") for i in range(4)]  # 0.044 against 0.033
    # what the other side holds and what is pending cancellation are not this side's volume before the batch
    four += [
        order("8", S, "31000.00", "1.0000"),
        order("9", B, "29000.00", "1.0000", status=OrderStatus.CANCEL_PENDING),
    ]
    same = [cancel("0"), place("buy[0]", B, "29850.00", "0.0110")]
    grow = [cancel("0"), place("buy[0]", B, "29850.00", "0.0111")]
    assert rules_of(a_job(), book(*four), same) == []
    assert rules_of(a_job(), book(*four), grow) == [("buy[0]", Rule.VOLUME)]
    assert rules_of(a_job(), book(*four), [place("buy[0]", B, "29850.00", "0.0001")]) == [("buy[0]", Rule.VOLUME)]


# --- a planned pass through the gate ------------------------------------------------------------------------------

LOW = (order("9", B, "1.00", "0.0100"),)


def test_admit_drops_what_the_gate_refuses_and_says_so() -> None:
    the_job = a_job(Limits(post_only=False, price_ceiling=D("29800")))
    plan = compute_plan(a_job(), snapshot(LOW), frozenset({"9"}))
    the_book = book(*LOW, owned=frozenset())
    admitted, refused = gate.admit(the_job, the_book, plan)
    assert [(r.action.level or r.action.order_id, r.rule) for r in refused] == [
        ("9", Rule.NOT_OWNED),
        ("buy[0]", Rule.PRICE_LIMIT),
    ]
    assert [a.level or a.order_id for a in admitted.actions] == ["buy[1]", "buy[2]", "sell[0]", "sell[1]", "sell[2]"]
    assert admitted.dropped[len(plan.dropped) :] == (Dropped("buy[0]", B, D("29850.00"), D("0.0100"), "gate"),)
    assert admitted.warnings[-1] == (
        "gate refused buy[0] BUY 29850.00 × 0.0100: at or above the price ceiling 29800 (price_limit); not sent"
    )
    assert admitted.fingerprint == plan_fingerprint(plan.job_hash, the_book.orders, admitted.actions)
    assert gate.check(the_job, the_book, admitted.actions) == ()
    unchanged, none = gate.admit(a_job(), book(*LOW), plan)
    assert unchanged is plan and none == ()


def test_the_refusal_message_names_every_problem_on_one_line() -> None:
    refused = gate.check(
        a_job(buy=side_ladder(levels=5)), book(), [place(f"buy[{i}]", B, "29850.001") for i in range(5)]
    )
    message = gate.refused_message(refused)
    assert "\n" not in message and message.count("(tick)") == 5
    assert "(tick); buy[1] BUY 29850.001" in message
    assert message.startswith("refused by the pre-trade gate: buy[0] BUY 29850.001 × 0.0100: the price is not on")


def test_a_book_from_a_pass_trusts_no_reference_of_zero() -> None:
    assert gate.book_of(RULES, (), None, D(0), BID, ASK).reference is None
    assert gate.book_of(RULES, (), None, D(1), BID, ASK).reference == D(1)
    assert gate.book_of(RULES, (), None, REF, BID, ASK) == Book(RULES, (), None, REF, BID, ASK)
    checkpoint = gate.Checkpoint(a_job(), book())
    assert checkpoint.refusals([place("buy[9]", B, "1.00")])[0].rule is Rule.LEVEL


# --- properties: adversarial batches ------------------------------------------------------------------------------

_LEVELS = ["buy[0]", "buy[1]", "buy[2]", "buy[3]", "sell[0]", "sell[1]", "sell[2]", "orders[0]", "orders[1]", "x[0]"]
_prices = st.integers(29_500_00, 30_500_00).map(lambda c: D(c) / 100) | st.sampled_from(
    [D("29850.005"), D("0"), D("30000.00"), D("29990.00"), D("30010.00")]
)
_volumes = st.integers(0, 600).map(lambda v: D(v) / 10_000) | st.sampled_from([D("0.00005"), D("0.05")])


@st.composite
def adversarial(draw: st.DrawFn) -> tuple[Job, Book, list[Action], Decimal]:
    """A job with flat 0.01 levels, a book of the job's and manual orders, and a batch of anything."""
    n_buy, n_sell = draw(st.integers(0, 3)), draw(st.integers(0, 3))
    fixed = tuple(
        FixedOrder(s, D(p), D("0.02"))
        for s, p in draw(st.lists(st.tuples(st.sampled_from([B, S]), st.integers(1, 9)), max_size=2))
    )
    tol = draw(st.sampled_from(["0", "10", "25"]))
    skew = draw(st.booleans())
    limits = Limits(
        max_orders=draw(st.none() | st.integers(1, 6)),
        band=draw(st.none() | st.sampled_from([pct("0.5"), pct("2"), Amount(D("100"))])),
        post_only=draw(st.booleans()),
        price_ceiling=draw(st.none() | st.integers(29_800, 30_200).map(D)),
        price_floor=draw(st.none() | st.integers(29_800, 30_200).map(D)),
    )
    the_job = job(
        buy=side_ladder(levels=n_buy) if n_buy else None,
        sell=side_ladder(levels=n_sell) if n_sell else None,
        orders=fixed,
        limits=limits,
        tolerance=Tolerance(size=pct(tol)),
        inventory=Inventory(D(50), D(20)) if skew else None,
    )
    statuses = st.sampled_from(
        [OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCEL_PENDING, OrderStatus.FILLED]
    )
    rows = draw(st.lists(st.tuples(st.sampled_from([B, S]), _prices, _volumes, statuses), max_size=6))
    orders = tuple(Order(str(i), s, p, v, D(0), st_) for i, (s, p, v, st_) in enumerate(rows))
    owned = draw(st.none() | st.sets(st.sampled_from([str(i) for i in range(8)])).map(frozenset))
    reference = draw(st.none() | st.sampled_from([REF, D("29900"), D("30100.5")]))
    bid = draw(st.none() | st.sampled_from([BID, D("30050.00")]))
    ask = draw(st.none() | st.sampled_from([ASK, D("29950.00")]))
    ids = [o.id for o in orders] + ["99"]
    levels = draw(st.dictionaries(st.sampled_from(ids), st.sampled_from(_LEVELS), max_size=4))
    the_book = Book(RULES, orders, owned, reference, bid, ask, levels)
    actions = draw(
        st.lists(
            st.one_of(
                st.builds(lambda oid: cancel(oid), st.sampled_from(ids)),
                st.builds(lambda oid, lv: keep(oid, lv), st.sampled_from(ids), st.sampled_from(_LEVELS)),
                st.builds(
                    lambda lv, s, p, v: Action(P, s, p, v, level=lv),
                    st.sampled_from(_LEVELS),
                    st.sampled_from([B, S]),
                    _prices,
                    _volumes,
                ),
            ),
            max_size=10,
        )
    )
    bound_factor = (D(2) if skew else D(1)) * (1 + D(tol) / 100)
    return the_job, the_book, actions, bound_factor


def _declared_side(the_job: Job, level: str) -> Side | None:
    m = re.fullmatch(r"(buy|sell|orders)\[(\d+)\]", level)
    if m is None or (len(m.group(2)) > 1 and m.group(2).startswith("0")):
        return None
    i = int(m.group(2))
    if m.group(1) == "orders":
        return the_job.orders[i].side if i < len(the_job.orders) else None
    spec = the_job.buy if m.group(1) == "buy" else the_job.sell
    if spec is None or i >= spec.levels:
        return None
    return B if m.group(1) == "buy" else S


def _assert_invariants(the_job: Job, the_book: Book, admitted: list[Action], factor: Decimal) -> None:
    """An independent statement of what any batch the gate admits leaves true."""
    lim, tol_factor = the_job.limits, factor
    cancels = [a.order_id for a in admitted if a.action is C]
    places = [a for a in admitted if a.action is P]
    by_id = {o.id: o for o in the_book.orders}
    assert len(set(cancels)) == len(cancels)
    for oid in cancels:
        assert oid in by_id and (the_book.owned is None or oid in the_book.owned)
    mine = [o for o in the_book.orders if the_book.owned is None or o.id in the_book.owned]
    left = [o for o in mine if o.status in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED) and o.id not in cancels]
    live = left
    kept_levels = {a.level for a in admitted if a.action is K and a.order_id in {o.id for o in left}}
    levels = [a.level for a in places]
    assert len(set(levels)) == len(levels) and not kept_levels & set(levels)
    standing_for = {the_book.levels[o.id] for o in left if o.id in the_book.levels}
    assert not standing_for & set(levels)
    for a in places:
        assert _declared_side(the_job, a.level or "") is a.side
        assert a.price > 0 and a.volume > 0
        assert a.price == a.price.quantize(D("0.01")) and a.volume == a.volume.quantize(D("0.0001"))
        assert lim.price_ceiling is None or a.side is S or a.price < lim.price_ceiling
        assert lim.price_floor is None or a.side is B or a.price > lim.price_floor
        if lim.band is not None:
            assert the_book.reference is not None and abs(a.price - the_book.reference) <= lim.band.of(
                the_book.reference
            )
        if lim.post_only and a.side is B and the_book.ask is not None:
            assert a.price < the_book.ask
        if lim.post_only and a.side is S and the_book.bid is not None:
            assert a.price > the_book.bid
        others = [o.price for o in live if o.side is not a.side] + [x.price for x in places if x.side is not a.side]
        assert all(a.price < p for p in others) if a.side is B else all(a.price > p for p in others)
    if places and lim.max_orders is not None:
        assert len(left) + len(places) <= lim.max_orders
    for side in (B, S):
        added = [a.volume for a in places if a.side is side]
        if not added:
            continue
        spec = the_job.buy if side is B else the_job.sell
        each = [D("0.01") * tol_factor] * (spec.levels if spec else 0)
        each += [f.size * tol_factor / (2 if the_job.inventory else 1) for f in the_job.orders if f.side is side]
        smallest = min(each, default=D(0))
        beyond = sum((max(D(0), o.remaining - smallest) for o in left if o.side is side), D(0))
        bound = sum(each, D(0)) + beyond
        after = sum((o.remaining for o in left if o.side is side), D(0)) + sum(added, D(0))
        before = sum((o.remaining for o in mine if o.is_open and o.side is side), D(0))
        assert after <= bound or after <= before


@settings(max_examples=examples(400), deadline=None)
@given(adversarial())
def test_whatever_the_gate_admits_keeps_every_invariant(case: tuple[Job, Book, list[Action], Decimal]) -> None:
    the_job, the_book, actions, factor = case
    refused = gate.check(the_job, the_book, actions)
    out = {id(r.action) for r in refused}
    assert all(r.action.action is not K for r in refused)
    admitted = [a for a in actions if id(a) not in out]
    _assert_invariants(the_job, the_book, admitted, factor)
    assert gate.check(the_job, the_book, admitted) == ()  # what it admits it admits again: dropping is stable


# --- properties: the planner's own batches -------------------------------------------------------------------------


@st.composite
def planned(draw: st.DrawFn) -> tuple[Job, Book, tuple[Action, ...]]:
    """A plan from the real planner: ladders, fixed orders, limits, inventory, ownership, held levels."""

    def a_side(name: str) -> object:
        n = draw(st.integers(0, 5))
        if not n:
            return None
        sizes = draw(st.sampled_from([{}, {"size_step": D("-0.003")}, {"size_factor": D("1.5")}]))
        first = draw(st.sampled_from([pct("0.1"), pct("0.5"), Amount(D("5"))]))
        return side_ladder(levels=n, first=first, step=draw(st.sampled_from([pct("0.05"), pct("0.3")])), **sizes)

    # fixed orders on their own side of the ladder: a job file may ask for a crossing book, see the table above
    buys = st.tuples(st.just(B), st.integers(29_000, 29_990))
    sells = st.tuples(st.just(S), st.integers(30_010, 31_000))
    fixed = tuple(FixedOrder(s, D(p), D("0.02")) for s, p in draw(st.lists(buys | sells, max_size=2)))
    limits = Limits(
        max_orders=draw(st.none() | st.integers(1, 8)),
        band=draw(st.none() | st.sampled_from([pct("0.3"), pct("1"), pct("5")])),
        post_only=draw(st.booleans()),
        max_jump=None,
        price_ceiling=draw(st.none() | st.integers(29_900, 30_100).map(D)),
        price_floor=draw(st.none() | st.integers(29_900, 30_100).map(D)),
    )
    tolerance = Tolerance(
        price=draw(st.sampled_from([pct("0.1"), pct("1"), Amount(D("20"))])),
        size=draw(st.sampled_from([pct("10"), pct("0"), Amount(D("0.005"))])),
    )
    the_job = job(
        buy=a_side("buy"),  # type: ignore[arg-type]
        sell=a_side("sell"),  # type: ignore[arg-type]
        orders=fixed,
        limits=limits,
        tolerance=tolerance,
        inventory=draw(st.none() | st.just(Inventory(D(50), D(20)))),
    )
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from([B, S]),
                st.integers(0, 40),  # resting orders: buys at or below the reference, sells at or above
                st.integers(5, 30),
                st.sampled_from([OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.CANCEL_PENDING]),
            ),
            max_size=10,
        )
    )
    orders = tuple(
        Order(str(i), s, D(30000) + D(k) * 10 * (-1 if s is B else 1), D(v) / 1000, D(0), status, created_at=i)
        for i, (s, k, v, status) in enumerate(rows)
    )
    owned = draw(st.none() | st.sets(st.sampled_from([str(i) for i in range(10)])).map(frozenset))
    base = draw(st.sampled_from(["0", "1", "5"]))
    balances = Balances({"usdt": Balance(D(10) ** 5), "btc": Balance(D(base))})
    snap = snapshot(orders, balances=balances)
    held = draw(st.sets(st.sampled_from(["buy[0]", "buy[1]", "sell[0]", "orders[0]"])))
    filled = draw(st.sets(st.sampled_from(["buy[0]", "buy[2]", "sell[1]", "orders[0]"])))
    life = Lifecycle(
        NOW,
        max_age=draw(st.none() | st.just(timedelta(seconds=1))),  # every order was created in 1970: all are stale
        fill_delay=draw(st.none() | st.just(timedelta(minutes=5))),
        last_fill={level: NOW - timedelta(minutes=1) for level in filled},
    )
    held_levels = {level: "held" for level in held}
    draft = draft_plan(the_job, snap, owned, held_levels=held_levels, life=life)
    plan = finish_plan(draft, snap.balances)
    mine = owned if the_job.ownership is Ownership.TRACKED and owned is not None else None
    levels = gate.standing_levels(draft.result)
    the_book = gate.book_of(RULES, orders, mine, plan.reference_price, snap.ticker.bid, snap.ticker.ask, levels)
    return the_job, the_book, plan.actions


def test_a_held_level_spares_a_buy_above_the_sells_and_the_gate_drops_the_crossing_sell() -> None:
    # The planner keeps the cancel nearest a held level's price in its place, wherever it stands: here a buy
    # above the reference, which the first sell would trade with. The gate stops that self-trade.
    the_job = a_job()
    crossing = order("1", B, "30150.00", "0.0100")
    plan = compute_plan(the_job, snapshot((crossing,)), None, held_levels={"buy[0]": "held"})
    assert [a.level for a in plan.actions if a.action is K and a.order_id == "1"] == ["buy[0]"]
    refused = gate.check(the_job, book(crossing), plan.actions)
    assert [(r.action.level, r.rule) for r in refused] == [("sell[0]", Rule.SELF_TRADE)]


@settings(max_examples=examples(300), deadline=None)
@given(planned())
def test_every_batch_the_planner_makes_is_admitted_unchanged(case: tuple[Job, Book, tuple[Action, ...]]) -> None:
    the_job, the_book, actions = case
    assert [r.sentence() for r in gate.check(the_job, the_book, actions)] == []


# under load, drawing real plans until one pairs an order with a level can trip the speed and filter checks
@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(planned(), st.data())
def test_a_forged_batch_never_places_a_level_a_standing_order_holds(
    case: tuple[Job, Book, tuple[Action, ...]], data: st.DataObject
) -> None:
    # Forged from a real plan: an order the planner paired with a level stays (its KEEP and its cancel left out)
    # and the level is placed again, at the order's own price and volume or at any other, first or last.
    the_job, the_book, actions = case
    open_mine = {o.id: o for o in the_book.orders if o.is_open and (the_book.owned is None or o.id in the_book.owned)}
    pairs = sorted((oid, level) for oid, level in the_book.levels.items() if oid in open_mine)
    assume(pairs)
    oid, level = data.draw(st.sampled_from(pairs))
    standing = open_mine[oid]
    price = data.draw(st.sampled_from([standing.price, standing.price - D("0.01"), D("29990.00"), D("30010.00")]))
    volume = data.draw(st.sampled_from([standing.remaining, D("0.0100")]))
    again = Action(P, standing.side, price, volume, level=level)
    rest = [a for a in actions if a.order_id != oid]
    forged = [again, *rest] if data.draw(st.booleans()) else [*rest, again]
    refused = gate.check(the_job, the_book, forged)
    for a in (a for a in forged if a.action is P and a.level == level):
        assert any(r.action is a and r.rule is Rule.DUPLICATE_LEVEL for r in refused), [r.sentence() for r in refused]


def test_the_volume_bound_rounds_up_where_a_sum_passes_28_digits() -> None:
    # 0.1234567890123456789012345671 widened by 10 % is 0.13580246791358024679135802381: up to ...0239, never down
    many_digits = a_job(buy=side_ladder(levels=1, size="0.1234567890123456789012345671"))
    assert gate.level_volumes(many_digits, B) == [D("0.1358024679135802467913580239")]
    # an order of 12345678901234567890123456.72 holds ...456.702 beyond a level of 0.018: up to .71, plus 0.054
    flat = a_job(buy=side_ladder(size="0.018"), tolerance=NO_TOL)
    huge = order("1", B, "1.00", "12345678901234567890123456.72")
    assert gate._bound(flat, B, [huge]) == D("12345678901234567890123456.77")
