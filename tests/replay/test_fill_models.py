"""Hand-built recordings whose fills and PnL are worked out by hand, one per fill model.

The job holds one fixed buy of 1 at 100 (``every: 1h``: its only pass is the first, at the first book). The book
at t=0 is bid 100.5 / ask 101 (mid 100.75) with 3 resting at 100, so under ``queue`` 3 stand ahead of the order.
Then: a print of 2 at exactly 100 (t=1 s), a print of 1.5 at 100 (t=1.5 s), a print of 0.4 at 99.99, through the
price (t=2 s), a book with mid 99 (t=2.5 s) and a book with mid 102 (t=3 s).

- touch: the first print fills all 1 at 100. Cash −100, then marks 100.75 → 0.75, 99 → −1, 102 → 2.
  Max drawdown 0.75 − (−1) = 1.75.
- cross: the prints at 100 fill nothing; 0.4 fills at t=2 s. Marks: 100.75 → 0.3, 99 → −0.4, 102 → 0.8.
  Max drawdown 0.7.
- queue: the print of 2 only eats the queue (3 → 1); the print of 1.5 eats the last 1 and fills 0.5; the print
  through fills 0.4. Position 0.9, cash −90: 100.75 → 0.375 then 0.675, 99 → −0.9, 102 → 1.8.
  Max drawdown 0.675 − (−0.9) = 1.575.

Fills are counted as the daemon's fills ledger records them: one per order for what it gained between two passes
(the last stretch counted at the end), so the two prints that fill under ``queue`` make one fill.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import Result

from tests.replay.conftest import depth, rules_line, trade

JOB = """\
version: 1
name: fixed-buy
symbol: btcusdt
exchange: {url: sandbox}
schedule: {every: 1h}
orders:
  - {side: buy, price: "100", size: "1"}
limits: {band: 50%}
"""


def _lines() -> list[dict[str, object]]:
    return [
        rules_line(),
        depth(0, [("100.5", "2"), ("100", "3")], [("101", "1")]),
        trade(1000, 1, "100", "2"),
        trade(1500, 2, "100", "1.5"),
        trade(2000, 3, "99.99", "0.4"),
        depth(2500, [("98.5", "1")], [("99.5", "1")]),
        depth(3000, [("101.5", "1")], [("102.5", "1")]),
    ]


@pytest.mark.parametrize(
    ("model", "count", "bought", "total", "unrealised", "drawdown"),
    [
        ("touch", 1, "1", "2.00", "2.00", "1.75"),
        ("cross", 1, "0.4", "0.80", "0.80", "0.70"),
        ("queue", 1, "0.9", "1.80", "1.80", "1.575"),
    ],
)
def test_each_fill_model_fills_and_marks_as_worked_out_by_hand(
    model: str,
    count: int,
    bought: str,
    total: str,
    unrealised: str,
    drawdown: str,
    recording: Callable[..., Path],
    job_file: Callable[..., Path],
    replay_cli: Callable[..., Result],
) -> None:
    market = recording(_lines())
    result = replay_cli(
        str(job_file(JOB)), "--market", str(market), "--fill", model, "--balances", "usdt=1000", "--json"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["passes"] == 1 and out["wakes"]["timer"] == 1
    assert out["fills"]["count"] == count
    assert Decimal(out["fills"]["buy_volume"]) == Decimal(bought) and out["fills"]["sell_volume"] == "0"

    assert Decimal(out["pnl"]["total"]) == Decimal(total)
    assert Decimal(out["pnl"]["unrealised"]) == Decimal(unrealised)
    assert out["pnl"]["realised"] == "0"
    assert Decimal(out["pnl"]["max_drawdown"]) == Decimal(drawdown)
    inventory = {key: Decimal(value) for key, value in out["inventory"].items()}
    assert inventory == {"base_start": 0, "base_end": Decimal(bought), "base_min": 0, "base_max": Decimal(bought)}
    # One pass: the symbol list, the ticker, the open orders, the balances (the placement needs them), one batch.
    assert out["requests"] == 5 and out["batches"] == 1
    assert out["order_operations"] == {"place": 1, "cancel": 0}


def test_a_queue_ahead_larger_than_the_print_fills_nothing(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    market = recording([*_lines()[:3], depth(1200, [("100.5", "2"), ("100", "1")], [("101", "1")])])
    args = [str(job_file(JOB)), "--market", str(market), "--balances", "usdt=1000", "--json"]
    assert json.loads(replay_cli(*args, "--fill", "queue").stdout)["fills"]["count"] == 0
    assert json.loads(replay_cli(*args, "--fill", "touch").stdout)["fills"]["count"] == 1


def test_fees_come_off_the_total_and_a_round_trip_realises_first_in_first_out(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    """Buy 1 at 100 and sell 1 at 103: realised 3; fees 0.1 % of 100 and of 103 = 0.203; total 2.797."""
    job = JOB.replace(
        '  - {side: buy, price: "100", size: "1"}\n',
        '  - {side: buy, price: "100", size: "1"}\n  - {side: sell, price: "103", size: "1"}\n',
    )
    market = recording(
        [
            rules_line(),
            depth(0, [("101", "2")], [("102", "1")]),
            trade(1000, 1, "99.5", "5"),
            trade(2000, 2, "103.5", "5", side="buy"),
            depth(3000, [("104", "1")], [("105", "1")]),
        ]
    )
    result = replay_cli(
        str(job_file(job)), "--market", str(market), "--balances", "usdt=1000,btc=1", "--fee", "0.1%", "--json"
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["fills"]["count"] == 2
    assert Decimal(out["fills"]["buy_volume"]) == Decimal(out["fills"]["sell_volume"]) == 1
    assert Decimal(out["fees"]) == Decimal("0.203")
    assert Decimal(out["pnl"]["realised"]) == Decimal(3)
    assert Decimal(out["pnl"]["unrealised"]) == 0
    assert Decimal(out["pnl"]["total"]) == Decimal("2.797")
    assert Decimal(out["inventory"]["base_start"]) == Decimal(out["inventory"]["base_end"]) == 1
    assert Decimal(out["inventory"]["base_max"]) == 2


def test_the_loss_limit_trips_once_cancels_and_pauses_the_job_for_the_rest_of_the_replay(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    """The buy of 1 fills at 100 (t=1 s), then the mid falls to 90: a loss of 10 against ``max_loss: 5``. The first
    pass after the fall trips: it cancels what stands, and every later wake-up is skipped (paused by max_loss)."""
    job = JOB.replace("schedule: {every: 1h}", "schedule: {every: 2s}").replace(
        "limits: {band: 50%}", 'limits: {band: 50%, max_loss: "5", max_jump: 0%}'
    )
    falling = [depth(t, [("89.5", "1")], [("90.5", "1")]) for t in range(1500, 20001, 500)]
    market = recording([*_lines()[:3], *falling])
    result = replay_cli(str(job_file(job)), "--market", str(market), "--balances", "usdt=1000", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["loss_limit_trips"] == 1
    assert Decimal(out["pnl"]["total"]) == Decimal(-10)
    paused = out["paused_seconds"]["max_loss"]
    assert 16 <= paused <= 18.5  # from the first pass after t=1.5 s (a 2 s period) to the end at t=20 s
    assert out["wakes"]["timer"] - out["passes"] >= 7  # the wake-ups after the trip run no pass


@pytest.mark.parametrize(("latency", "count"), [("0s", 1), ("1200ms", 1), ("2s", 0)])
def test_a_batch_lands_after_the_latency_and_earlier_prints_miss_its_order(
    latency: str,
    count: int,
    recording: Callable[..., Path],
    job_file: Callable[..., Path],
    replay_cli: Callable[..., Result],
) -> None:
    """Sent at t=0, the buy joins at t=latency: at 1.2 s it has missed the print at 1 s but takes the one at 1.5 s; at
    2 s it has missed every print at or through its price (the last one is at 2 s, before it lands)."""
    market = recording(_lines())
    args = [str(job_file(JOB)), "--market", str(market), "--balances", "usdt=1000", "--latency", latency, "--json"]
    out = json.loads(replay_cli(*args).stdout)
    assert out["fills"]["count"] == count
    assert out["order_operations"] == {"place": 1, "cancel": 0}
