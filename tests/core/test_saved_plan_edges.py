"""check_saved_plan at its exact boundaries on a sub-1 symbol (5 price places, lot 0.1): a placement exactly at the
band's edge, one tick off the other side of the book, exactly at the price and size tolerance (absolute here); the
post_only check without the book side it needs; a reference of 0 (no band to measure); max_orders counting
placements and keeps but not cancels; the paused plan; the first three problems and how many more."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from rebalancer.core.plan import Action, Plan, compute_plan
from rebalancer.core.saved_plan import check_saved_plan
from rebalancer.errors import UnsafePlanError
from rebalancer.job import FixedOrder, Job, Limits, Reference, ReferenceKind, Tolerance
from rebalancer.models import Balance, Balances, MarketSnapshot, Side, SymbolRules, Ticker
from rebalancer.vocab import ActionKind, CancelReason
from tests.core.kit import ab, job, pct, snapshot

D = Decimal
B, S = Side.BUY, Side.SELL
RULES = SymbolRules("dogeusdt", "doge", "usdt", price_precision=5, amount_precision=1)
TICKER = Ticker(bid=D("0.49990"), ask=D("0.50010"), last=D("0.5"))  # mid 0.50000
RICH = Balances({"usdt": Balance(D(10) ** 9), "doge": Balance(D(10) ** 9)})
SNAP = snapshot(rules=RULES, ticker=TICKER, balances=RICH)
ORDERS = (
    FixedOrder(B, D("0.475"), D(10)),  # orders[0]: exactly 5 % below the reference, the band's edge
    FixedOrder(B, D("0.50009"), D(10)),  # orders[1]: one tick below the best ask
    FixedOrder(S, D("0.49991"), D(10)),  # orders[2]: one tick above the best bid
    FixedOrder(S, D("0.525"), D(10)),  # orders[3]: exactly 5 % above
)
TOLERANCE = Tolerance(price=ab("0.0001"), size=ab("0.5"))
JOB = job(orders=ORDERS, limits=Limits(band=pct("5"), post_only=True, max_orders=4), tolerance=TOLERANCE)
FRESH = compute_plan(JOB, SNAP, None)
PREFIX = "saved plan refused by the job's guards: "


def _problems(saved: Plan, the_job: Job = JOB, fresh: Plan = FRESH, snap: MarketSnapshot = SNAP) -> str | None:
    """The refusal without its prefix, or None when the saved plan passes."""
    try:
        check_saved_plan(the_job, saved, fresh, snap)
    except UnsafePlanError as exc:
        text = str(exc)
        assert text.startswith(PREFIX)
        return text[len(PREFIX) :]
    return None


def _placing(level: str, **changes: object) -> Plan:
    """FRESH with the placement of ``level`` changed."""
    actions = [
        dataclasses.replace(a, **changes) if a.level == level and a.action is ActionKind.PLACE else a  # type: ignore[arg-type]
        for a in FRESH.actions
    ]
    assert any(a.level == level for a in FRESH.actions)
    return dataclasses.replace(FRESH, actions=tuple(actions))


def test_the_fresh_plan_places_all_four_levels_and_passes() -> None:
    assert sorted(a.level or "" for a in FRESH.actions if a.action is ActionKind.PLACE) == [
        "orders[0]",
        "orders[1]",
        "orders[2]",
        "orders[3]",
    ]
    assert FRESH.reference_price == D("0.5") and _problems(FRESH) is None


@pytest.mark.parametrize(
    ("level", "changes", "problem"),
    [
        # the band: exactly at its edge is inside (orders[0] and [3] are there already), a tick beyond is not
        ("orders[0]", {"price": D("0.47499")}, "orders[0] BUY 0.47499 × 10.0: farther than the band 5% from the "
                                                 "reference 0.50000"),
        ("orders[3]", {"price": D("0.52501")}, "orders[3] SELL 0.52501 × 10.0: farther than the band 5% from the "
                                                 "reference 0.50000"),
        # post_only: at the other side's best price is refused, a tick off it is not
        ("orders[1]", {"price": D("0.50010")}, "orders[1] BUY 0.50010 × 10.0: would take the best ask 0.50010 "
                                                 "(post_only)"),
        ("orders[2]", {"price": D("0.49990")}, "orders[2] SELL 0.49990 × 10.0: would take the best bid 0.49990 "
                                                 "(post_only)"),
        # the price tolerance (0.0001 absolute): exactly at it passes, a tick past it does not
        ("orders[1]", {"price": D("0.49999")}, None),
        ("orders[1]", {"price": D("0.49998")}, "orders[1] BUY 0.49998 × 10.0: the price is not within tolerance "
                                                 "0.0001 of its target 0.50009"),
        ("orders[3]", {"price": D("0.52490")}, None),
        ("orders[3]", {"price": D("0.52489")}, "orders[3] SELL 0.52489 × 10.0: the price is not within tolerance "
                                                 "0.0001 of its target 0.52500"),
        # the size tolerance (0.5 absolute), both ways
        ("orders[2]", {"volume": D("10.5")}, None),
        ("orders[2]", {"volume": D("9.5")}, None),
        ("orders[2]", {"volume": D("10.6")}, "orders[2] SELL 0.49991 × 10.6: the volume is not within tolerance 0.5 "
                                               "of its target 10.0"),
        ("orders[2]", {"volume": D("9.4")}, "orders[2] SELL 0.49991 × 9.4: the volume is not within tolerance 0.5 "
                                              "of its target 10.0"),
        # the tick and the lot, whichever way a price would round
        ("orders[1]", {"price": D("0.500085")}, "orders[1] BUY 0.500085 × 10.0: the price is not on the symbol's "
                                                  "tick 0.00001"),
        ("orders[2]", {"price": D("0.499915")}, "orders[2] SELL 0.499915 × 10.0: the price is not on the symbol's "
                                                  "tick 0.00001"),
        ("orders[2]", {"volume": D("10.05")}, "orders[2] SELL 0.49991 × 10.05: the volume is not on the symbol's "
                                                "lot 0.1"),
        # a trailing zero is on the tick
        ("orders[1]", {"price": D("0.500090")}, None),
    ],
)  # fmt: skip
def test_boundary_table(level: str, changes: dict[str, object], problem: str | None) -> None:
    assert _problems(_placing(level, **changes)) == problem


def test_a_placement_of_the_other_side_on_a_level_is_not_a_level_of_the_ladder() -> None:
    moved = _placing("orders[3]", side=B, price=D("0.49000"))
    assert _problems(moved) == "orders[3] BUY 0.49000 × 10.0: not a level of the job's ladder now"


def test_without_post_only_a_placement_at_the_other_sides_best_price_passes() -> None:
    orders = (FixedOrder(B, D("0.5001"), D(10)), FixedOrder(S, D("0.4999"), D(10)))
    free = job(orders=orders, limits=Limits(post_only=False), tolerance=TOLERANCE)
    fresh = compute_plan(free, SNAP, None)
    assert len(fresh.placements) == 2
    assert _problems(fresh, free, fresh) is None


@pytest.mark.parametrize(
    ("side", "ticker", "kind"),
    [
        (B, Ticker(bid=D("0.49990"), ask=None, last=None), ReferenceKind.BID),
        (S, Ticker(bid=None, ask=D("0.50010"), last=None), ReferenceKind.ASK),
    ],
)
def test_post_only_needs_the_other_side_of_the_book(side: Side, ticker: Ticker, kind: ReferenceKind) -> None:
    """With no ask, no buy can take it (and the mirror for sells): a far placement passes the post_only check."""
    far = D("0.9") if side is B else D("0.1")
    the_job = job(orders=(FixedOrder(side, far, D(10)),), limits=Limits(post_only=True), reference=Reference(kind))
    snap = snapshot(rules=RULES, ticker=ticker, balances=RICH)
    fresh = compute_plan(the_job, snap, None)
    assert [a.price for a in fresh.actions] == [far]
    assert _problems(fresh, the_job, fresh, snap) is None


def test_a_reference_of_zero_measures_no_band() -> None:
    untrusted = dataclasses.replace(FRESH, reference_price=D(0))
    assert _problems(FRESH, fresh=untrusted) is None


def test_max_orders_counts_placements_and_keeps_not_cancels() -> None:
    cancel = Action(ActionKind.CANCEL, B, D("0.3"), D(1), order_id="9", reason=CancelReason.NOT_IN_LADDER)
    keep = Action(ActionKind.KEEP, S, D("0.6"), D(1), order_id="8", level="orders[7]")
    assert _problems(dataclasses.replace(FRESH, actions=(*FRESH.actions, cancel))) is None
    assert _problems(dataclasses.replace(FRESH, actions=(*FRESH.actions, keep))) == (
        "5 orders would stand, more than max_orders 4"
    )
    only_keeps = dataclasses.replace(FRESH, actions=(keep,) * 4)
    assert _problems(only_keeps) is None
    assert _problems(dataclasses.replace(FRESH, actions=(keep,) * 5)) == "5 orders would stand, more than max_orders 4"
    unlimited = dataclasses.replace(JOB, limits=Limits(band=pct("5"), post_only=True))
    assert _problems(dataclasses.replace(FRESH, actions=(*FRESH.actions, keep)), unlimited) is None


def test_a_paused_plan_refuses_placements_once_and_lets_a_plan_without_any_pass() -> None:
    paused = dataclasses.replace(FRESH, paused="placements paused: no reference")
    keeps_only = dataclasses.replace(FRESH, actions=tuple(a for a in FRESH.actions if a.action is ActionKind.CANCEL))
    assert _problems(keeps_only, fresh=paused) is None
    bad = _placing("orders[1]", price=D("0.50010"))
    assert _problems(bad, fresh=paused) == "placements are paused now (placements paused: no reference)"


def test_a_level_placed_twice_is_named_once_and_its_first_placement_is_judged() -> None:
    again = Action(ActionKind.PLACE, B, D("0.40000"), D("99.0"), level="orders[1]")
    saved = dataclasses.replace(FRESH, actions=(*FRESH.actions, again))
    assert _problems(saved, dataclasses.replace(JOB, limits=Limits(band=pct("5"), post_only=True))) == (
        "orders[1] is placed twice"
    )


def test_three_problems_are_all_shown_and_a_fourth_is_counted() -> None:
    three = dataclasses.replace(
        FRESH,
        actions=tuple(
            dataclasses.replace(a, volume=D("10.05")) if a.level != "orders[3]" else a for a in FRESH.actions
        ),
    )
    text = _problems(three)
    assert text is not None and text.count("the volume is not on the symbol's lot") == 3
    assert "more" not in text and text.count("; ") == 2
    four = dataclasses.replace(FRESH, actions=tuple(dataclasses.replace(a, volume=D("10.05")) for a in FRESH.actions))
    text = _problems(four)
    assert text is not None and text.endswith("; and 1 more") and text.count("the volume is not") == 3
    five = dataclasses.replace(four, actions=(*four.actions, four.actions[0]))
    text = _problems(five)
    assert text is not None and text.endswith(
        "; and 3 more"
    )  # the fifth placement twice, and 5 orders over max_orders 4


def test_a_plan_that_places_nothing_does_not_need_a_reference_now() -> None:
    """Cancels and keeps are checked against nothing but max_orders: no ladder is built, so a book with no prices
    (where the ladder could not be built) does not refuse them."""
    empty = snapshot(rules=RULES, ticker=Ticker(bid=None, ask=None, last=None), balances=RICH)
    keep = Action(ActionKind.KEEP, S, D("0.6"), D(1), order_id="8", level="orders[3]")
    cancel = Action(ActionKind.CANCEL, B, D("0.3"), D(1), order_id="9", reason=CancelReason.NOT_IN_LADDER)
    assert _problems(dataclasses.replace(FRESH, actions=(cancel, keep)), snap=empty) is None


def test_a_level_placed_twice_does_not_stop_the_check_of_the_placements_after_it() -> None:
    first = next(a for a in FRESH.actions if a.level == "orders[1]")
    bad = dataclasses.replace(next(a for a in FRESH.actions if a.level == "orders[3]"), volume=D("10.05"))
    others = tuple(a for a in FRESH.actions if a.level not in ("orders[1]", "orders[3]"))
    saved = dataclasses.replace(FRESH, actions=(first, first, bad, *others))
    unlimited = dataclasses.replace(JOB, limits=Limits(band=pct("5"), post_only=True))
    assert _problems(saved, unlimited) == (
        "orders[1] is placed twice; orders[3] SELL 0.52500 × 10.05: the volume is not on the symbol's lot 0.1"
    )
