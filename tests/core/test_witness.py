"""``rebalancer.core.witness``: the stream proves no fill only when every rule holds; any doubt reads ``order_info``."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.core.witness import (
    SETTLE_MS,
    SILENCE_FLOOR_MS,
    Sighting,
    TapeView,
    audited,
    caught,
    reaches,
    why_read,
)
from rebalancer.models import Side

D = Decimal
NOW = 100_000
STALE = 5_000
BUY = Sighting(Side.BUY, D("100"), D("0.5"), D("0.5"), seen_ms=90_000, cancelled_ms=95_000)
SELL = Sighting(Side.SELL, D("100"), D("0"), D("0"), seen_ms=90_000, cancelled_ms=95_000)
CALM = TapeView(covered=True, prices=(D("100.5"), D("101")), longest_silence_ms=1_000, lagging=False)


def _with(order: Sighting, **changes: object) -> Sighting:
    values = {f: getattr(order, f) for f in Sighting.__dataclass_fields__}
    values.update(changes)
    return Sighting(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("order", "tape", "now", "why"),
    [
        (BUY, CALM, NOW, None),
        (SELL, TapeView(True, (D("99.99"),), 0), NOW, None),
        (BUY, TapeView(True, (D("100"),)), NOW, "a trade printed at or through its price"),
        (BUY, TapeView(True, (D("101"), D("99"))), NOW, "a trade printed at or through its price"),
        (SELL, TapeView(True, (D("100"),)), NOW, "a trade printed at or through its price"),
        (SELL, TapeView(True, (D("150"),)), NOW, "a trade printed at or through its price"),
        (_with(BUY, cancelled_ms=None), CALM, NOW, "not cancelled by the job"),
        (_with(BUY, seen_deal_volume=D("0.4")), CALM, NOW, "last seen with another deal volume than the one watched"),
        (_with(BUY, cancelled_ms=89_999), CALM, NOW, "listed after our cancel"),
        (BUY, CALM, 95_000 + SETTLE_MS - 1, "cancelled too recently"),
        (BUY, CALM, 95_000 + SETTLE_MS, None),
        (BUY, None, NOW, "the stream's record does not cover the window"),
        (BUY, TapeView(False), NOW, "the stream's record does not cover the window"),
        (BUY, TapeView(True, longest_silence_ms=STALE + 1), NOW, "the stream was silent too long"),
        (BUY, TapeView(True, longest_silence_ms=STALE), NOW, None),
        (BUY, TapeView(True), NOW, None),
        (BUY, TapeView(True, lagging=True), NOW, "the stream lagged"),
    ],
)
def test_the_decision_table(order: Sighting, tape: TapeView | None, now: int, why: str | None) -> None:
    assert why_read(order, tape, now, STALE) == why


def test_a_staleness_bound_shorter_than_the_silences_recorded_means_a_read() -> None:
    assert why_read(BUY, TapeView(True), NOW, SILENCE_FLOOR_MS) is None
    assert why_read(BUY, TapeView(True), NOW, SILENCE_FLOOR_MS - 1) == "the stream was silent too long"


prices = st.decimals(min_value=D("0.0001"), max_value=D("1000000"), places=4)
sides = st.sampled_from(list(Side))


@given(side=sides, price=prices, others=st.lists(prices, max_size=5), traded=prices)
def test_any_trade_at_or_through_the_price_means_a_read(
    side: Side, price: Decimal, others: list[Decimal], traded: Decimal
) -> None:
    order = _with(BUY, side=side, price=price)
    tape = TapeView(True, (*others, traded))
    if reaches(side, price, traded):
        assert why_read(order, tape, NOW, STALE) is not None
    through = price - 1 if side is Side.BUY else price + 1
    assert why_read(order, TapeView(True, (*others, price, through)), NOW, STALE) is not None


@given(
    side=sides,
    price=prices,
    traded=st.lists(prices, max_size=5),
    covered=st.booleans(),
    silence=st.integers(0, 3 * STALE),
    lagging=st.booleans(),
    seen=st.integers(0, NOW),
    cancelled=st.none() | st.integers(0, NOW),
)
def test_a_skip_only_when_every_rule_holds(
    side: Side,
    price: Decimal,
    traded: list[Decimal],
    covered: bool,
    silence: int,
    lagging: bool,
    seen: int,
    cancelled: int | None,
) -> None:
    order = _with(BUY, side=side, price=price, seen_ms=seen, cancelled_ms=cancelled)
    skip = why_read(order, TapeView(covered, tuple(traded), silence, lagging), NOW, STALE) is None
    whole = covered and silence <= STALE and not lagging
    in_time = cancelled is not None and seen <= cancelled <= NOW - SETTLE_MS
    assert skip == (whole and in_time and not any(reaches(side, price, p) for p in traded))


@pytest.mark.parametrize(
    ("side", "traded", "reached"),
    [
        (Side.BUY, "100", True),
        (Side.BUY, "99", True),
        (Side.BUY, "100.01", False),
        (Side.SELL, "100", True),
        (Side.SELL, "101", True),
        (Side.SELL, "99.99", False),
    ],
)
def test_reaches_whatever_the_taker_side(side: Side, traded: str, reached: bool) -> None:
    assert reaches(side, D("100"), D(traded)) is reached


@given(st.integers(1, 50), st.integers(0, 200))
def test_the_audit_picks_exactly_one_in_n_of_any_n_in_a_row(every: int, start: int) -> None:
    picked = [n for n in range(start + 1, start + every + 1) if audited(n, every)]
    assert len(picked) == 1


def test_an_audit_every_1_or_less_reads_all() -> None:
    assert all(audited(n, every) for n in range(1, 20) for every in (1, 0, -3))


@given(
    st.sampled_from([BUY, SELL]),
    st.one_of(st.none(), st.builds(TapeView, st.booleans(), st.just(()), st.integers(0, 10_000), st.booleans())),
    st.integers(0, 200_000),
    st.integers(0, 10_000),
)
def test_a_distrusted_stream_never_vouches(order: Sighting, tape: TapeView | None, now: int, stale: int) -> None:
    assert why_read(order, tape, now, stale, distrusted=True) == "the stream was caught missing a fill"


@pytest.mark.parametrize(("seen", "read", "missed"), [("0", "0", False), ("0.5", "0.5", False), ("0.5", "0.6", True)])
def test_caught_only_by_a_deal_volume_above_the_one_last_seen(seen: str, read: str, missed: bool) -> None:
    assert caught(D(seen), D(read)) is missed
