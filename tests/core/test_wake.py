"""``rebalancer.core.wake``: when the next pass runs and why, and the signals decided from market values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.core.wake import market_alarm, next_pass, trade_reaches
from rebalancer.models import Order, Side
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
