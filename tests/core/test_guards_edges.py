"""rebalancer.core.guards at its edges, called directly: how the reference is judged with no readable price or a
previous pass below 1, what a pause and a hold keep, and which cancel a held level spares."""

from __future__ import annotations

import pytest

from rebalancer.core import guards
from rebalancer.core.diff import Diff
from rebalancer.job import FixedOrder, Limits, Reference, ReferenceKind
from rebalancer.models import OrderStatus, Side, Ticker
from rebalancer.vocab import CancelReason
from tests.core.kit import D, job, order, pct, side_ladder, target

B, S = Side.BUY, Side.SELL
MID = job(buy=side_ladder(), limits=Limits(post_only=False, max_jump=pct("10")))
OUTSIDE, OFF = CancelReason("outside_band"), CancelReason("price_out_of_tolerance")


def test_a_fixed_reference_is_both_observed_and_trusted() -> None:
    fixed = job(buy=side_ladder(), reference=Reference(ReferenceKind.FIXED, D("0.25")))
    assert guards.read_reference(fixed, Ticker(None, None, None), D("9")) == guards.Reading(D("0.25"), D("0.25"))


def test_a_readable_reference_is_observed_and_trusted() -> None:
    reading = guards.read_reference(MID, Ticker(D("99"), D("101"), None), None)
    assert reading == guards.Reading(D("100"), D("100"), None)


@pytest.mark.parametrize(
    ("previous", "trusted"),
    [(None, None), (D("0"), None), (D("-3"), None), (D("0.5"), D("0.5")), (D("1"), D("1")), (D("30000"), D("30000"))],
)
def test_with_no_readable_price_the_previous_positive_reference_is_trusted(previous, trusted) -> None:
    reading = guards.read_reference(MID, Ticker(D("29990.00"), None, None), previous)
    assert reading.observed is None and reading.trusted == trusted
    assert reading.paused == (
        "placements paused: no 'mid' price to hang the ladder from (bid 29990.00, ask none, last none)"
    )


def test_a_crossed_book_trusts_a_previous_reference_below_one() -> None:
    reading = guards.read_reference(MID, Ticker(D("0.00013"), D("0.00012"), D("0.000125")), D("0.000124"))
    assert (reading.observed, reading.trusted) == (None, D("0.000124"))
    assert reading.paused == "placements paused: the book is crossed (bid 0.00013 ≥ ask 0.00012)"


def test_a_jump_from_a_reference_below_one_is_measured_from_it() -> None:
    # 0.5 → 0.6 is 20 %, past the 10 % limit; the plan hangs from 0.5 and says so
    reading = guards.read_reference(MID, Ticker(D("0.59"), D("0.61"), None), D("0.5"))
    assert (reading.observed, reading.trusted) == (D("0.60"), D("0.5"))
    assert reading.paused == ("placements paused: reference moved 20.0% since the last pass (limit 10%): 0.5 → 0.60")


@pytest.mark.parametrize(
    ("the_job", "places"),
    [
        (job(buy=side_ladder()), True),
        (job(sell=side_ladder()), True),
        (job(orders=(FixedOrder(S, D("31000"), D("1")),)), True),
        (job(), False),
    ],
    ids=["buy only", "sell only", "fixed orders only", "nothing"],
)
def test_places_anything(the_job, places: bool) -> None:
    assert guards.places_anything(the_job) is places


def _diff() -> Diff:
    pending = order("9", B, "29000", "0.01", status=OrderStatus.CANCEL_PENDING)
    return Diff(
        keep=((order("1", B, "29850", "0.01"), target("buy[0]", B, "29850", "0.01")),),
        cancel=((order("2", B, "20000", "0.01"), OUTSIDE), (order("3", B, "29700", "0.01"), OFF)),
        place=(target("buy[1]", B, "29775", "0.01"),),
        pending=(pending,),
    )


def test_a_pause_keeps_what_stands_and_the_pending_cancels() -> None:
    paused, left = guards.pause(_diff())
    assert paused.place == () and paused.keep == _diff().keep and paused.pending == _diff().pending
    assert [(o.id, why) for o, why in paused.cancel] == [("2", OUTSIDE)]
    assert [o.id for o in left] == ["3"]
    assert guards.left_alone_warning(left) == ("1 owned order(s) left as they stand while placements are paused: 3")
    assert guards.left_alone_warning([]) is None


def test_a_held_level_spares_the_cancel_nearest_its_price() -> None:
    # the held target at 190 would replace the order at 200 (10 away), not the one at 100 (90 away)
    diff = Diff(
        keep=(),
        cancel=((order("1", B, "100", "1"), OFF), (order("2", B, "200", "1"), OFF), (order("3", S, "191", "1"), OFF)),
        place=(target("buy[0]", B, "190", "1"), target("buy[1]", B, "90", "1")),
        pending=(order("8", B, "50", "1", status=OrderStatus.CANCEL_PENDING),),
    )
    held, warnings = guards.hold(diff, {"buy[0]": "until 10:42:05 UTC after 3 rejections"})
    assert [(o.id, t.level) for o, t in held.keep] == [("2", "buy[0]")]
    assert [o.id for o, _ in held.cancel] == ["1", "3"]
    assert [t.level for t in held.place] == ["buy[1]"]
    assert held.pending == diff.pending
    assert warnings == ["buy[0] held back until 10:42:05 UTC after 3 rejections"]


def test_a_held_level_with_equidistant_cancels_spares_the_lower_id() -> None:
    diff = Diff(
        keep=(),
        cancel=((order("12", B, "110", "1"), OFF), (order("11", B, "90", "1"), OFF)),
        place=(target("buy[0]", B, "100", "1"),),
    )
    held, _ = guards.hold(diff, {"buy[0]": "for a while"})
    assert [o.id for o, _ in held.keep] == ["11"] and [o.id for o, _ in held.cancel] == ["12"]


def test_holding_nothing_returns_the_diff_unchanged() -> None:
    diff = _diff()
    assert guards.hold(diff, {}) == (diff, [])
