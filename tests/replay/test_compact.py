"""The market ``--vary`` reads once: written compact and read back, every event is equal to the one read, digits and
exponents alike; and the varied replays over it, windowed by ``--from``/``--to``, print what a replay of each edited
job prints over the recording itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from click.testing import Result

from rebalancer.replay.compact import CHUNK, read_compact, write_compact
from rebalancer.replay.market import Book, Print
from rebalancer.replay.walk import WalkSpec, walk_market
from tests.replay.conftest import depth, rules_line, trade

ROOT = Path(__file__).resolve().parents[2]
MAKER = ROOT / "jobs" / "btcusdt-maker.yaml"


def test_events_come_back_equal_digit_for_digit(tmp_path: Path) -> None:
    odd = [
        Book(1, ((Decimal("100.10"), Decimal("1E-7")), (Decimal("99"), Decimal("0E-3"))), ()),
        Book(2, (), ((Decimal("1.0E+2"), Decimal("0.50")),)),
        Print(3, "id with spaces\n", Decimal("100.100"), Decimal("2E+1"), "buy"),
    ]
    walk = list(walk_market(WalkSpec(hours=Decimal(1)), "btcusdt").events)
    events = odd + walk
    assert len(events) > CHUNK  # more than one chunk
    path = tmp_path / "market.bin"
    assert write_compact(events, path) == len(events)
    back = list(read_compact(path))
    assert back == events
    shown = [str(e) for e in events]
    assert [str(e) for e in back] == shown


def test_varied_replays_over_a_window_match_each_edited_job(
    recording: Callable[..., Path], job_file: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    lines = [rules_line()]
    for second in range(0, 600):
        t = 1_767_225_600_000 + second * 1000
        mid = Decimal(30000) + Decimal(second % 40 - 20) * Decimal("1.5")
        bid, ask = mid - Decimal("1.5"), mid + Decimal("1.5")
        lines.append(depth(t, [(str(bid), "0.5")], [(str(ask), "0.5")]))
        side, price = ("sell", bid - 80) if second % 7 else ("buy", ask + 80)
        lines.append(trade(t + 1, second, str(price), "0.01", side))
    lines.append("{garbage after the window")
    path = recording(lines)
    window = ["--from", "1m", "--to", "8m"]
    varied = replay_cli(str(MAKER), "--market", str(path), *window, "--vary", "ladder.buy.first=0.1%,0.3%", "--json")
    assert varied.exit_code == 0, varied.output
    rows = json.loads(varied.stdout)
    text = MAKER.read_text(encoding="utf-8")
    for row, value in zip(rows, ("0.1%", "0.3%"), strict=True):
        edited = job_file(text.replace("    first: 0.5%\n", f"    first: {value}\n", 1), name=f"j{value[:3]}.yaml")
        alone = replay_cli(str(edited), "--market", str(path), *window, "--json")
        assert alone.exit_code == 0, alone.output
        assert {k: v for k, v in row.items() if k != "vary"} == json.loads(alone.stdout)
    assert rows[0]["fills"]["count"] > rows[1]["fills"]["count"] > 0  # the values made a difference
