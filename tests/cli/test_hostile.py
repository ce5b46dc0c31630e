"""Hostile input through the commands: each is one clear line or a ``file:line:col`` problem, exit 1, no traceback."""

from __future__ import annotations

import json

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


def _edited_plan(cli, job, path, *, refingerprint: bool, **changes: str) -> dict:
    """Save a plan of ``job``, then edit its first placement by hand (and maybe forge its fingerprint)."""
    assert cli("plan", str(job), "--out", str(path)).exit_code == 0
    document = json.loads(path.read_text())
    first = next(a for a in document["actions"] if a["action"] == "place")
    first.update(changes)
    if refingerprint:  # the book was empty when the plan was made
        from rebalancer.core.plan import plan_fingerprint
        from rebalancer.core.plan_codec import plan_from_json

        document["fingerprint"] = plan_fingerprint(document["job_hash"], (), plan_from_json(document).actions)
    path.write_text(json.dumps(document))
    return first


@pytest.mark.parametrize("refingerprint", [False, True], ids=["as edited", "fingerprint forged"])
def test_a_hand_edited_saved_plan_is_refused_and_nothing_is_sent(cli, write_job, sandbox, tmp_path, refingerprint):
    job = write_job("edited", levels=2)
    crossing = f"{sandbox.engine.ticker('btcusdt').ask + 50:.2f}"
    _edited_plan(cli, job, tmp_path / "plan.json", refingerprint=refingerprint, price=crossing, volume="5.0000")
    result = cli("apply", str(job), "--plan", str(tmp_path / "plan.json"), "--yes")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: saved plan ")
    if refingerprint:
        assert f"buy[0] BUY {crossing} × 5.0000: would take the best ask" in result.stderr
    assert _book(sandbox) == ()


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"volume": "5.0000"}, "buy[0] BUY 29850.00 × 5.0000: the volume is not within tolerance 10% of its target"),
        ({"price": "29000.00"}, "buy[0] BUY 29000.00 × 0.0100: the price is not within tolerance 0.1% of its target"),
        ({"level": "buy[7]"}, "buy[7] BUY 29850.00 × 0.0100: not a level of the job's ladder now"),
        ({"price": "29850.001"}, "the price is not on the symbol's tick 0.01"),
    ],
)
def test_a_forged_saved_plan_is_held_to_the_jobs_guards(cli, write_job, sandbox, tmp_path, changes, words):
    sandbox.engine.set_price("btcusdt", 30000)
    job = write_job("forged", levels=2)
    _edited_plan(cli, job, tmp_path / "plan.json", refingerprint=True, **changes)
    result = cli("apply", str(job), "--plan", str(tmp_path / "plan.json"), "--yes")
    assert result.exit_code == 1, result.output
    assert words in result.stderr
    assert _book(sandbox) == ()


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000, '{"format_version": "1", "actions": ' + "[" * 50_000, "\x00\x1b garbage", "[]"],
    ids=["deeply nested", "nested inside a plan", "binary", "a list"],
)
def test_a_garbage_plan_file_is_one_error_line(cli, write_job, sandbox, tmp_path, text):
    job = write_job("garbage", levels=1)
    saved = tmp_path / "plan.json"
    saved.write_text(text, encoding="utf-8")
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.startswith(f"Error: {saved}: not a saved plan") and len(result.stderr.splitlines()) == 1
    assert _book(sandbox) == ()
