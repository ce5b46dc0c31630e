"""limits.max_loss figures, checked against sums done by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rebalancer.core.fills import Fill
from rebalancer.core.loss import loss_of
from rebalancer.models import Side

T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
D = Decimal


def _fill(side: Side, price: str, volume: str) -> Fill:
    return Fill("1", side, D(price), D(volume), D(volume), T)


def test_an_open_long_position_marked_below_its_cost_is_an_unrealised_loss() -> None:
    # bought 1 @ 100 and 1 @ 90, sold 1 @ 95: cash -95, long 1 marked at 80 → worth -15, a loss of 15;
    # matched 1 at average buy 95 and sell 95: nothing realised.
    fills = [_fill(Side.BUY, "100", "1"), _fill(Side.BUY, "90", "1"), _fill(Side.SELL, "95", "1")]
    loss = loss_of(fills, D(80), D(10), T)
    assert (loss.realised, loss.unrealised, loss.total) == (D(0), D(15), D(15))
    assert loss.tripped
    assert loss.to_dict(2) == {
        "since": "2026-01-05T10:00:00+00:00",
        "realised": "0.00",
        "unrealised": "15.00",
        "total": "15.00",
        "limit": "10",
    }


def test_a_realised_gain_offsets_an_unrealised_loss() -> None:
    # bought 2 @ 100 (-200), sold 1 @ 110 (+110): cash -90, long 1 at 90 → 0 total;
    # realised 1 × (110 - 100) = 10 gained (loss -10), so the open unit lost 10.
    loss = loss_of([_fill(Side.BUY, "100", "2"), _fill(Side.SELL, "110", "1")], D(90), D(500), None)
    assert (loss.realised, loss.unrealised, loss.total) == (D(-10), D(10), D(0))
    assert not loss.tripped


def test_a_short_position_loses_when_the_reference_rises() -> None:
    # sold 0.5 @ 30000 (+15000), reference 31000: short 0.5 → -15500; loss 500, exactly the limit: not past it.
    loss = loss_of([_fill(Side.SELL, "30000", "0.5")], D(31000), D(500), None)
    assert (loss.realised, loss.total) == (D(0), D(500))
    assert not loss.tripped
    assert loss_of([_fill(Side.SELL, "30000", "0.5")], D("31000.02"), D(500), None).tripped


def test_no_fills_no_loss() -> None:
    assert loss_of([], D(100), D(1), None).total == 0
