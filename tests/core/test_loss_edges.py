"""loss.loss_of and the Loss value: the figures against exact fractions, one side only, the limit's boundary, the
rounding of the shown figures toward the larger loss (a gain of less than a tick shows as 0, never -0) and the
sentence and JSON forms with a ``since`` in another time zone."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rebalancer.core.fills import Fill
from rebalancer.core.loss import Loss, loss_of
from rebalancer.models import Side
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL
T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


def _fill(side: Side, price: str, volume: str) -> Fill:
    return Fill("1", side, D(price), D(volume), D(volume), T)


@pytest.mark.parametrize(
    ("fills", "reference", "realised", "unrealised"),
    [
        # only buys: 0.5 @ 0.8 and 0.5 @ 0.6 cost 0.7; worth 0.5 at 0.5: an open loss of 0.2, nothing realised
        ([(B, "0.8", "0.5"), (B, "0.6", "0.5")], "0.5", "0", "0.2"),
        # only sells: 2 @ 0.3 bring 0.6; a short of 2 at 0.1 costs 0.2 to close: a gain of 0.4
        ([(S, "0.3", "2")], "0.1", "0", "-0.4"),
        # both sides, more sold than bought: matched 1 at avg buy 0.5 and avg sell 0.75 → realised -0.25;
        # short 2 (sold 0.9 for 3 - the avg of 0.75) marked at 1: unrealised 2 × (1 - 0.75) = 0.5
        ([(B, "0.5", "1"), (S, "0.7", "1"), (S, "0.8", "1"), (S, "0.75", "1")], "1", "-0.25", "0.5"),
        # bought and sold the same volume: all realised, the reference does not matter
        ([(B, "2", "1.5"), (S, "1", "1.5")], "1000", "1.5", "0"),
    ],
)
def test_loss_tables(fills: list[tuple[Side, str, str]], reference: str, realised: str, unrealised: str) -> None:
    loss = loss_of([_fill(*f) for f in fills], D(reference), D(1), None)
    assert (loss.realised, loss.unrealised) == (D(realised), D(unrealised))
    assert loss.total == D(realised) + D(unrealised)


def test_the_limit_is_broken_only_past_it() -> None:
    at = Loss(None, D("0.25"), D("0.25"), D("0.5"))
    assert not at.tripped
    assert Loss(None, D("0.25"), D("0.2500001"), D("0.5")).tripped
    assert not Loss(None, D("0.25"), D("0.2499999"), D("0.5")).tripped


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("0.121", "0.13"),  # a loss rounds up
        ("0.12", "0.12"),
        ("-0.129", "-0.12"),  # a gain rounds toward zero: toward the larger loss
        ("-0.001", "0.00"),  # never "-0.00"
        ("0", "0.00"),
        ("-1.5", "-1.50"),
    ],
)
def test_shown_figures_round_toward_the_larger_loss(value: str, shown: str) -> None:
    loss = Loss(None, D(value), D(0), D("7.5"))
    assert loss.to_dict(2) == {"since": None, "realised": shown, "unrealised": "0.00", "total": shown, "limit": "7.5"}


def test_the_sentence_and_the_json_say_since_when_in_utc() -> None:
    since = datetime(2026, 1, 5, 12, 0, 7, 999999, tzinfo=timezone(timedelta(hours=2)))
    loss = Loss(since, D("-0.004"), D("512.301"), D("500"))
    assert loss.sentence(2) == (
        "loss 512.30 of limit 500 since 2026-01-05 10:00:07 UTC (realised 0.00, unrealised 512.31)"
    )
    assert loss.to_dict(3) == {
        "since": "2026-01-05T10:00:07+00:00",
        "realised": "-0.004",
        "unrealised": "512.301",
        "total": "512.297",
        "limit": "500",
    }
    assert Loss(None, D(1), D(2), D(3)).sentence(0) == (
        "loss 3 of limit 3 since its first fill (realised 1, unrealised 2)"
    )


_fills = st.lists(
    st.tuples(st.sampled_from([B, S]), st.integers(1, 400), st.integers(1, 300)),
    max_size=8,
)


@settings(max_examples=examples(100), deadline=None)
@given(_fills, st.integers(1, 400))
@example([(B, 1, 1), (B, 1, 2), (S, 1, 1), (S, 2, 2)], 1)  # flat, with averages that do not divide exactly
def test_the_figures_match_exact_fractions(rows: list[tuple[Side, int, int]], ref: int) -> None:
    """Prices in cents and volumes in thousandths (sub-1 values); the expected figures are computed with exact
    fractions: the total from the cash flow and the position, the realised part from the matched volume at the
    average prices. Decimal division may round the averages, so the realised figure is compared to 20 places."""
    fills = [_fill(side, str(D(p) / 100), str(D(v) / 1000)) for side, p, v in rows]
    reference = D(ref) / 100
    cash = sum((Fraction(f.price) * Fraction(f.volume) * (-1 if f.side is B else 1) for f in fills), Fraction(0))
    position = sum((Fraction(f.volume) * (1 if f.side is B else -1) for f in fills), Fraction(0))
    total = -(cash + position * Fraction(reference))
    bought = [f for f in fills if f.side is B]
    sold = [f for f in fills if f.side is S]
    volume_b = sum((Fraction(f.volume) for f in bought), Fraction(0))
    volume_s = sum((Fraction(f.volume) for f in sold), Fraction(0))
    matched = min(volume_b, volume_s)
    if matched:
        average_b = sum(Fraction(f.price) * Fraction(f.volume) for f in bought) / volume_b
        average_s = sum(Fraction(f.price) * Fraction(f.volume) for f in sold) / volume_s
        realised = matched * (average_b - average_s)
    else:
        realised = Fraction(0)
    loss = loss_of(fills, reference, D(5), T)
    assert abs(Fraction(loss.total) - total) < Fraction(1, 10**20)
    assert abs(Fraction(loss.realised) - realised) < Fraction(1, 10**20)
    assert loss.since == T and loss.limit == D(5)
    if not matched:
        assert loss.realised == 0 and Fraction(loss.unrealised) == total
    if volume_b == volume_s:
        assert loss.unrealised == 0


def test_times_are_utc_whatever_the_machines_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "EST+05")  # POSIX form: no tz database needed
    time.tzset()
    try:
        loss = Loss(T, D(0), D(0), D(1))
        assert loss.to_dict(0)["since"] == "2026-01-05T10:00:00+00:00"
        assert "since 2026-01-05 10:00:00 UTC" in loss.sentence(0)
    finally:
        monkeypatch.undo()
        time.tzset()
