"""``rebalancer.core.wake``: when the next pass runs and why, and the signals decided from market values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.core.wake import market_alarm, next_pass, trade_reaches
from rebalancer.models import Order, Side, Ticker
from rebalancer.vocab import WakeReason

D = Decimal


@given(
    st.integers(0, 10**9),
    st.sets(st.sampled_from(list(WakeReason)), min_size=1),
    st.none() | st.integers(0, 10**9),
    st.integers(0, 10**6),
)
def test_a_pass_is_never_closer_than_min_gap_to_the_last_and_never_before_now(
    now: int, reasons: set[WakeReason], last: int | None, gap: int
) -> None:
    wake = next_pass(now, reasons, last, gap)
    assert wake is not None
    assert wake.at_ms >= now
    if last is not None:
        assert wake.at_ms >= last + gap
    assert wake.at_ms == max(now, now if last is None else last + gap)
    assert wake.reason in reasons


def test_no_reason_no_pass_and_the_first_reason_names_it() -> None:
    assert next_pass(5, (), None) is None
    assert next_pass(5, (WakeReason.TIMER, WakeReason.TRADE), 0, 10).reason is WakeReason.TRADE  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("price", "reached"),
    [("99", True), ("100", True), ("100.01", False), ("104.99", False), ("105", True), ("106", True)],
)
def test_a_trade_at_or_through_a_resting_order_reaches_it(price: str, reached: bool) -> None:
    orders = [Order("1", Side.BUY, D("100"), D("1")), Order("2", Side.SELL, D("105"), D("1"))]
    assert trade_reaches(D(price), orders) is reached


@pytest.mark.parametrize(
    ("bid", "ask", "age", "alarm"),
    [
        ("99", "101", 0, False),
        ("101", "101", 0, True),
        ("102", "101", 0, True),
        (None, "101", 0, True),
        ("99", None, 0, True),
        ("99", "101", 3001, True),
        ("99", "101", 3000, False),
    ],
)
def test_a_crossed_empty_or_stale_book_is_an_alarm(bid: str | None, ask: str | None, age: int, alarm: bool) -> None:
    assert market_alarm(None if bid is None else D(bid), None if ask is None else D(ask), age, 3000) is alarm


def test_the_ladder_moved_only_when_the_plan_from_the_streamed_book_would_change_the_orders() -> None:
    from rebalancer.core.plan import compute_plan
    from rebalancer.core.wake import ladder_moved
    from tests.core.kit import job, side_ladder, snapshot

    ladder = job(buy=side_ladder(levels=2), sell=side_ladder(levels=2))
    # The orders a pass at mid 30000 placed (by the same plan, as the daemon would have them after that pass).
    placed = compute_plan(ladder, snapshot(), None)
    orders = tuple(Order(str(i), a.side, a.price, a.volume) for i, a in enumerate(placed.actions, start=1))
    assert len(orders) == 4
    assert not ladder_moved(ladder, snapshot(orders), None)
    nudged = Ticker(bid=D("29995.00"), ask=D("30015.00"), last=None)  # mid +5: within the 0.1 % tolerance
    assert not ladder_moved(ladder, snapshot(orders, ticker=nudged), None)
    moved = Ticker(bid=D("30290.00"), ask=D("30310.00"), last=None)  # mid +1 %: every level out of tolerance
    assert ladder_moved(ladder, snapshot(orders, ticker=moved), None)
