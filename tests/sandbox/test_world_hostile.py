"""A sandbox world file edited by hand, damaged or hostile: ``StateError`` with one line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rebalancer.errors import StateError
from rebalancer.sandbox import world
from rebalancer.sandbox.engine import Engine


def _valid() -> dict[str, Any]:
    return json.loads(json.dumps(world.dump(Engine.create(7, clock="manual"))))


def _edited(**changes: Any) -> str:
    data = _valid()
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[last] = value
    return json.dumps(data)


CASES = {
    "deeply nested": "[" * 100_000 + "]" * 100_000,
    "deeply nested object": '{"a":' * 50_000 + "1" + "}" * 50_000,
    "binary garbage": "\x00\x01\x02garbage",
    "a list": "[1, 2, 3]",
    "symbols not a list": _edited(symbols="btcusdt"),
    "a symbol as text": _edited(symbols=["btcusdt"]),
    "spec a list": _edited(symbols__0__spec=[1, 2]),
    "market a string": _edited(symbols__0__market="open"),
    "accounts a mapping": _edited(accounts={"a": 1}),
    "an order as text": _edited(orders=["order"]),
    "clock far beyond time": _edited(clock_ms=10**30),
    "negative clock": _edited(clock_ms=-(10**20)),
    "seed as text": _edited(seed="seven"),
    "rng state garbage": _edited(walk_rng=[1, "x"]),
    "next id nested": _edited(next_order_id=[[[]]]),
}


@pytest.mark.parametrize("text", CASES.values(), ids=CASES.keys())
def test_a_hostile_world_file_is_a_state_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / world.WORLD_FILE
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StateError) as caught:
        world.open_world(path, clock="manual")
    message = str(caught.value)
    assert "sandbox world" in message and "\n" not in message and len(message) < 400


def test_a_hostile_world_file_is_one_error_line_through_the_cli(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from rebalancer.cli.main import main

    state = tmp_path / "state"
    state.mkdir()
    (state / world.WORLD_FILE).write_text("[" * 100_000, encoding="utf-8")
    job = Path(__file__).resolve().parents[2] / "jobs" / "btcusdt-maker.yaml"
    result = CliRunner().invoke(main, ["plan", str(job)], env={"REBALANCER_STATE_DIR": str(state), "NO_COLOR": "1"})
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: ") and "sandbox world" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
