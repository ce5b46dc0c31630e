"""Hand-built recordings and an in-process ``rebalancer`` runner for the replay tests (no exchange needed)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from rebalancer.cli.main import main

SYMBOL = "btcusdt"


def depth(t: int, bids: Sequence[tuple[str, str]], asks: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """One recorded depth line of btcusdt at ``t`` (ms)."""
    tick = {"buys": [list(level) for level in bids], "asks": [list(level) for level in asks]}
    return {"t": t, "frame": {"channel": f"market_{SYMBOL}_depth_step0", "ts": t, "tick": tick}}


def trade(t: int, trade_id: int, price: str, volume: str, side: str = "sell") -> dict[str, Any]:
    """One recorded trade line of btcusdt at ``t`` (ms) with a single trade."""
    data = [{"id": trade_id, "side": side, "price": price, "vol": volume, "amount": "0", "ts": t, "ds": ""}]
    return {
        "t": t,
        "frame": {"channel": f"market_{SYMBOL}_trade_ticker", "ts": t, "tick": {"id": trade_id, "ts": t, "data": data}},
    }


def rules_line(t: int = 0) -> dict[str, Any]:
    """The first line: btcusdt's tick and lot."""
    return {"t": t, "rules": {SYMBOL: {"tick": "0.01", "lot": "0.0001"}}}


@pytest.fixture
def recording(tmp_path: Path) -> Callable[..., Path]:
    """Write lines (objects, or raw text lines) as a gzip JSON-lines recording; its path."""

    def write(lines: Sequence[dict[str, Any] | str], name: str = "market.jsonl.gz") -> Path:
        path = tmp_path / name
        with gzip.open(path, "wt", encoding="utf-8") as out:
            for line in lines:
                out.write((line if isinstance(line, str) else json.dumps(line)) + "\n")
        return path

    return write


@pytest.fixture
def job_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a job file from its text; its path."""

    def write(text: str, name: str = "job.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture
def replay_cli(tmp_path: Path) -> Callable[..., Result]:
    """Run ``rebalancer replay ...`` in-process with a private state directory; stdout and stderr apart."""

    def invoke(*args: str) -> Result:
        env = {"REBALANCER_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
        return CliRunner().invoke(main, ["replay", *args], env=env, catch_exceptions=False)

    return invoke
