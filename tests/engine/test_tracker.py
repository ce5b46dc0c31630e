"""The order tracker: adoption of what a lost batch placed, pending placements, expiry, ids gone from the book.

Table cases after the scenarios of tests/reliability/test_lost_answers.py, without an exchange or a store: the
tracker takes values and returns the settlement the pass will write.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rebalancer.engine.executor import Execution, OrderOutcome
from rebalancer.engine.tracker import after_send, track
from rebalancer.job import Ownership
from rebalancer.models import Order, Side
from rebalancer.state.outcome import OwnershipChange
from rebalancer.state.passio import PassInputs
from rebalancer.state.records import InFlight, Placement
from rebalancer.vocab import ActionKind, OutcomeStatus
from tests.core.kit import job as make_job
from tests.core.kit import snapshot

D = Decimal
NOW = datetime(2026, 3, 1, 10, 40, tzinfo=UTC)
SENT_MS = int((NOW - timedelta(seconds=5)).timestamp() * 1000)


def _in_flight(
    *placements: tuple[Side, str, str], age: timedelta = timedelta(seconds=5), late: bool = False
) -> InFlight:
    created = NOW - age
    return InFlight(
        1,
        "test-job",
        None,
        created,
        tuple(Placement.of(s, p, v) for s, p, v in placements),
        NOW + timedelta(minutes=1) if late else None,
    )


def _order(order_id: str, side: Side, price: str, volume: str, created_ms: int | None = SENT_MS) -> Order:
    return Order(order_id, side, D(price), D(volume), created_at=created_ms)


def _inputs(tracked: frozenset[str] = frozenset(), *in_flight: InFlight) -> PassInputs:
    return PassInputs(tracked=tracked, in_flight=in_flight, last_reference=None, held_levels={})


TRACKED = make_job()
SYMBOL = dataclasses.replace(make_job(), ownership=Ownership.SYMBOL)

CASES = [
    pytest.param(  # the batch landed whole: adopt it, close the record
        TRACKED,
        _inputs(frozenset({"3"}), _in_flight((Side.BUY, "100", "1"), (Side.SELL, "110", "1"))),
        (_order("3", Side.BUY, "90", "1"), _order("8", Side.BUY, "100", "1"), _order("9", Side.SELL, "110", "1")),
        frozenset({"3", "8", "9"}),
        (),
        OwnershipChange(closes=((1, ("8", "9")),)),
        id="adoption",
    ),
    pytest.param(  # half landed, the answer is late: adopt what is there, the rest is pending, the record stays
        TRACKED,
        _inputs(frozenset(), _in_flight((Side.BUY, "100", "1"), (Side.SELL, "110", "1"), late=True)),
        (_order("8", Side.BUY, "100", "1"),),
        frozenset({"8"}),
        (Order("in-flight-1", Side.SELL, D("110"), D("1")),),
        OwnershipChange(track=("8",)),
        id="pending",
    ),
    pytest.param(  # past the grace: close what landed; nothing is pending any more
        TRACKED,
        _inputs(frozenset(), _in_flight((Side.BUY, "100", "1"), (Side.SELL, "110", "1"), age=timedelta(hours=1))),
        (_order("8", Side.BUY, "100", "1", created_ms=None),),
        frozenset({"8"}),
        (),
        OwnershipChange(closes=((1, ("8",)),)),
        id="expiry",
    ),
    pytest.param(  # an order older than the batch (beyond the 60 s clock slack) is not the batch's
        TRACKED,
        _inputs(frozenset(), _in_flight((Side.BUY, "100", "1"))),
        (_order("8", Side.BUY, "100", "1", created_ms=SENT_MS - 120_000),),
        frozenset(),
        (),
        OwnershipChange(),
        id="older-order-not-adopted",
    ),
    pytest.param(  # tracked ids that left the book are forgotten, in id order
        TRACKED,
        _inputs(frozenset({"10", "9", "4"})),
        (_order("4", Side.BUY, "90", "1"),),
        frozenset({"4"}),
        (),
        OwnershipChange(untrack=("9", "10")),
        id="untrack-gone",
    ),
    pytest.param(  # symbol ownership: the job owns the symbol; records still close, nothing is tracked
        SYMBOL,
        _inputs(frozenset({"77"}), _in_flight((Side.BUY, "100", "1"))),
        (_order("8", Side.BUY, "100", "1"),),
        None,
        (),
        OwnershipChange(closes=((1, ()),)),
        id="symbol-ownership",
    ),
]


@pytest.mark.parametrize(("job", "inputs", "orders", "owned", "pending", "change"), CASES)
def test_track(job, inputs, orders, owned, pending, change) -> None:  # type: ignore[no-untyped-def]
    tracked = track(job, snapshot(orders), inputs, NOW)
    assert (tracked.owned, tracked.pending, tracked.ownership) == (owned, pending, change)


def _outcome(action: ActionKind, status: OutcomeStatus, order_id: str | None) -> OrderOutcome:
    return OrderOutcome(action, Side.BUY, D("100"), D("1"), status, order_id)


def test_after_a_confirmed_send_the_record_closes_tracking_the_placed_and_forgetting_the_cancelled() -> None:
    execution = Execution(
        outcomes=(
            _outcome(ActionKind.PLACE, OutcomeStatus.PLACED, "21"),
            _outcome(ActionKind.PLACE, OutcomeStatus.REJECTED, None),
            _outcome(ActionKind.CANCEL, OutcomeStatus.CANCELLED, "5"),
        ),
        confirmed=True,
    )
    done = after_send(TRACKED, 4, execution, NOW)
    assert (done.close, done.placed, done.untrack, done.late) == (4, ("21",), ("5",), None)
    assert after_send(SYMBOL, 4, execution, NOW).placed == ()


def test_an_unconfirmed_send_leaves_the_record_open_and_a_timed_out_write_marks_it_late() -> None:
    execution = Execution(outcomes=(_outcome(ActionKind.PLACE, OutcomeStatus.UNKNOWN, None),), confirmed=False)
    assert after_send(TRACKED, 4, execution, NOW).close is None
    late = after_send(TRACKED, 4, dataclasses.replace(execution, may_land_late=True), NOW)
    assert late.close is None and late.late is not None and late.late[0] == 4 and late.late[1] > NOW
