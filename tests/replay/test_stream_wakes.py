"""A job with ``exchange.stream`` is replayed at every wake-up the daemon's stream wake source would give it: the
same ``core.wake.Watcher`` fed the recording's books and prints, at most one pass per ``schedule.min_gap``.

The ladder job has one buy and one sell, 1 % from the mid, ``tolerance.price: 0.1%``, and a timer of an hour, so
after the first pass (the timer's, at the start) every other pass is a stream wake-up. The book at t=0 is
bid 99.9 / ask 100.1 (mid 100): the ladder rests a buy at 99 and a sell at 101.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from tests.replay.conftest import depth, rules_line, trade

LADDER = """\
version: 1
name: streamed
symbol: btcusdt
exchange: {url: sandbox, stream: sandbox}
schedule: {every: 1h, min_gap: GAP}
reference: mid
ladder:
  buy: {levels: 1, first: 1%, step: 1%, size: "0.1"}
  sell: {levels: 1, first: 1%, step: 1%, size: "0.1"}
tolerance: {price: 0.1%}
limits: {band: 50%}
"""
ZERO = {"timer": 0, "reference": 0, "trade": 0, "market": 0}


def book(t: int, mid: str) -> dict[str, Any]:
    """A book of one level a side, 0.1 either side of ``mid``."""
    m = float(mid)  # test data only: two decimals, printed back exactly below
    return depth(t, [(f"{m - 0.1:.2f}", "5")], [(f"{m + 0.1:.2f}", "5")])


def run(
    lines: list[dict[str, Any]],
    recording: Callable[..., Path],
    job_file: Callable[..., Path],
    replay_cli: Callable[..., Result],
    *,
    gap: str = "1s",
    job: str = LADDER,
) -> dict[str, Any]:
    market = recording([rules_line(), *lines])
    result = replay_cli(str(job_file(job.replace("GAP", gap))), "--market", str(market), "--json")
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


def test_a_move_within_the_tolerance_wakes_nothing_and_one_past_it_wakes_reference(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    calm = [book(0, "100"), *(book(t * 1_000, "100.05") for t in range(1, 8))]
    out = run(calm, recording, job_file, replay_cli)
    assert out["wakes"] == {**ZERO, "timer": 1} and out["passes"] == 1
    moved = [*calm[:5], book(5_000, "100.5"), book(6_000, "100.5")]
    out = run(moved, recording, job_file, replay_cli)
    assert out["wakes"] == {**ZERO, "timer": 1, "reference": 1} and out["passes"] == 2
    # The reference pass moved both orders: 2 placed first, then 2 cancelled and 2 placed.
    assert out["order_operations"] == {"place": 4, "cancel": 2}


def test_a_trade_through_a_resting_order_wakes_trade(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    above = [book(0, "100"), trade(2_000, 1, "99.5", "0.01"), book(3_000, "100")]
    assert run(above, recording, job_file, replay_cli)["wakes"] == {**ZERO, "timer": 1}
    through = [book(0, "100"), trade(2_000, 1, "98.9", "0.01"), book(3_000, "100")]
    out = run(through, recording, job_file, replay_cli)
    assert out["wakes"] == {**ZERO, "timer": 1, "trade": 1} and out["passes"] == 2
    assert out["fills"]["count"] == 1


def test_two_wakes_inside_min_gap_make_one_pass(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    """A trade through the buy at 2 s and a move past the tolerance at 3 s: with ``min_gap: 10s`` one pass, at
    10 s, named by the more urgent reason (trade); with no gap, a pass for each."""
    later = [book(t * 1_000, "100.5") for t in range(3, 21)]  # a book a second: never stale
    lines = [book(0, "100"), trade(2_000, 1, "98.9", "0.01"), *later]
    held = run(lines, recording, job_file, replay_cli, gap="10s")
    assert held["wakes"] == {**ZERO, "timer": 1, "trade": 1} and held["passes"] == 2
    each = run(lines, recording, job_file, replay_cli, gap="0s")
    assert each["wakes"] == {**ZERO, "timer": 1, "trade": 1, "reference": 1} and each["passes"] == 3


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        ([book(0, "100"), depth(1_000, [("100.2", "1")], [("100.1", "1")]), book(9_000, "100")], "crossed"),
        ([book(0, "100"), depth(1_000, [("99.9", "1")], []), book(9_000, "100")], "one-sided"),
        ([book(0, "100"), trade(2_000, 1, "99.5", "0.01"), trade(9_000, 2, "99.5", "0.01")], "stale"),
    ],
)
def test_a_crossed_one_sided_or_silent_book_wakes_market(
    lines: list[dict[str, Any]],
    why: str,
    recording: Callable[..., Path],
    job_file: Callable[..., Path],
    replay_cli: Callable[..., Result],
) -> None:
    out = run(lines, recording, job_file, replay_cli)
    assert out["wakes"]["market"] == 1, why


def test_a_fresh_stream_spares_the_ticker_request(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    """Passes on the timer alone, with and without the stream: the streamed job reads no ticker while its book is
    fresh, so it sends one request a pass fewer."""
    job = LADDER.replace("every: 1h", "every: 1s")
    lines = [book(t * 1_000, "100") for t in range(6)]
    streamed = run(lines, recording, job_file, replay_cli, job=job)
    polling = job.replace(", stream: sandbox", "").replace(", min_gap: GAP", "")  # min_gap is the stream's
    polled = run(lines, recording, job_file, replay_cli, job=polling)
    assert streamed["passes"] == polled["passes"] == streamed["wakes"]["timer"] >= 5
    assert polled["requests"] - streamed["requests"] == polled["passes"]
