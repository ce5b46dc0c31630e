"""check_saved_plan: a saved plan's placements are held to the job's guards as they stand when it is applied."""

from __future__ import annotations

import dataclasses

import pytest

from rebalancer.core.plan import Action, Plan, compute_plan
from rebalancer.core.saved_plan import check_saved_plan
from rebalancer.errors import UnsafePlanError
from rebalancer.job import Limits
from rebalancer.models import Side, Ticker
from rebalancer.vocab import ActionKind
from tests.core.kit import D, job, pct, side_ladder, snapshot

B, S = Side.BUY, Side.SELL
JOB = job(buy=side_ladder(), sell=side_ladder(), limits=Limits(band=pct("5"), post_only=True, max_orders=6))
FRESH = compute_plan(JOB, snapshot(), None)  # places buy[0..2] at 29850, 29775, 29700 and sells at 30150...


def _with_first_placement(**changes: object) -> Plan:
    first = next(i for i, a in enumerate(FRESH.actions) if a.action is ActionKind.PLACE)
    actions = list(FRESH.actions)
    actions[first] = dataclasses.replace(actions[first], **changes)  # type: ignore[arg-type]
    return dataclasses.replace(FRESH, actions=tuple(actions))


def test_the_plan_the_job_makes_now_passes() -> None:
    check_saved_plan(JOB, FRESH, FRESH, snapshot())


@pytest.mark.parametrize(
    ("saved", "words"),
    [
        (_with_first_placement(price=D("30100.00")), "buy[0] BUY 30100.00 × 0.0100: would take the best ask 30010.00"),
        (_with_first_placement(price=D("28000.00")), "farther than the band 5% from the reference 30000.00"),
        (_with_first_placement(volume=D("5.0000")), "the volume is not within tolerance 10% of its target 0.0100"),
        (_with_first_placement(price=D("29800.00")), "the price is not within tolerance 0.1% of its target 29850.00"),
        (_with_first_placement(volume=D("0.01001")), "the volume is not on the symbol's lot 0.0001"),
        (_with_first_placement(side=S), "buy[0] SELL 29850.00 × 0.0100: would take the best bid 29990.00 (post_only)"),
        (_with_first_placement(level="orders[0]"), "orders[0] BUY 29850.00 × 0.0100: not a level of the job's ladder"),
        (dataclasses.replace(FRESH, actions=(*FRESH.actions, Action(ActionKind.PLACE, B, D("29700"), D("0.01"),
                                                                   level="buy[2]"))),
         "buy[2] is placed twice"),
    ],
)  # fmt: skip
def test_a_saved_placement_the_guards_refuse_is_named(saved: Plan, words: str) -> None:
    with pytest.raises(UnsafePlanError, match=r"^saved plan refused by the job's guards: ") as caught:
        check_saved_plan(JOB, saved, FRESH, snapshot())
    assert words in str(caught.value)


def test_more_orders_than_max_orders_are_refused() -> None:
    extra = Action(ActionKind.KEEP, B, D("29000.00"), D("0.0100"), order_id="77", level="buy[9]")
    saved = dataclasses.replace(FRESH, actions=(*FRESH.actions, extra))
    with pytest.raises(UnsafePlanError, match="7 orders would stand, more than max_orders 6"):
        check_saved_plan(JOB, saved, FRESH, snapshot())


def test_nothing_is_placed_while_the_market_data_guard_pauses_placements() -> None:
    paused = dataclasses.replace(FRESH, paused="placements paused: reference moved 12% since the last pass")
    with pytest.raises(UnsafePlanError, match=r"placements are paused now \(placements paused: reference moved"):
        check_saved_plan(JOB, FRESH, paused, snapshot())


def test_a_market_that_moved_past_the_tolerance_refuses_the_old_placements() -> None:
    moved = snapshot(ticker=Ticker(bid=D("30990.00"), ask=D("31010.00"), last=D("31000.00")))
    with pytest.raises(UnsafePlanError, match=r"and 3 more$"):
        check_saved_plan(JOB, FRESH, compute_plan(JOB, moved, None), moved)
