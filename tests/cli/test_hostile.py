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


OVERFLOWING = {
    "geometric": "  sell: {levels: 1000, first: 0.5%, step: 10%, spacing: geometric, size: 0.01}\n",
    "size_factor": "  sell: {levels: 500, first: 0.5%, step: 0.01%, size: 0.01, size_factor: 1.2}\n",
}


def _overflowing_job(tmp_path, sandbox, name: str, kind: str):
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        f"version: 1\nname: {name}\nsymbol: btcusdt\nexchange: {{url: '{sandbox.url}'}}\nreference: mid\n"
        f"ladder:\n{OVERFLOWING[kind]}limits: {{band: 10%, post_only: true}}\nownership: tracked\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("kind", sorted(OVERFLOWING))
def test_a_ladder_that_overflows_plans_with_the_absurd_levels_dropped(cli, tmp_path, sandbox, kind):
    result = cli("plan", str(_overflowing_job(tmp_path, sandbox, "big", kind)), "--json")
    assert result.exit_code == 0, result.output
    assert "out of range" in result.stdout and "Traceback" not in result.output


def test_run_once_runs_every_job_after_an_overflowing_one(cli, tmp_path, sandbox, write_job):
    big = _overflowing_job(tmp_path, sandbox, "big", "geometric")
    small = write_job("small", levels=1, ownership="tracked")
    result = cli("run", "--once", str(big), str(small))
    assert result.exit_code == 0, result.output
    assert len(_book(sandbox)) > 2  # both jobs placed: small's 2 orders and big's sells inside the band
