"""Hostile input through the commands: each is one clear line or a ``file:line:col`` problem, exit 1, no traceback."""

from __future__ import annotations

import pytest


def _book(sandbox) -> tuple:
    return sandbox.engine.open_orders(sandbox.api_key, "btcusdt")


@pytest.mark.parametrize("character", ["\x1b", "\x00", "\x07", "\x7f"])
@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_a_control_character_is_a_positioned_problem(cli, write_job, sandbox, command, character):
    job = write_job("ctl")
    job.write_text(job.read_text().replace("name: ctl", f"name: c{character}tl"), encoding="utf-8")
    result = cli(command, str(job), "--yes") if command == "apply" else cli(command, str(job))
    code = f"U+{ord(character):04X}"
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"{job}:2:8: character {code} (a control character) is not allowed in a job file" in result.output
    assert _book(sandbox) == ()
