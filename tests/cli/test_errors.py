"""Expected failures: one clear line on stderr, exit 1, no traceback, nothing sent."""

from __future__ import annotations

import socket

import pytest


def _writes(sandbox) -> list:
    return [o for o in sandbox.engine.open_orders(sandbox.api_key, "btcusdt")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_clean_failure(result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize("command", ["plan", "apply", "cancel"])
def test_invalid_job_file_is_reported_with_its_position(cli, tmp_path, command, sandbox):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nname: bad\nsymbol: btcusdt\nladder:\n  buy: {levels: -3, first: 1%, step: 1%, size: 1}\n"
    )
    result = cli(command, str(bad), "--yes") if command != "plan" else cli(command, str(bad))
    assert_clean_failure(result, f"{bad}:5:")
    assert _writes(sandbox) == []


@pytest.mark.parametrize("variable", ["REBALANCER_API_KEY", "REBALANCER_SECRET_KEY"])
def test_missing_credentials_name_the_variable(cli, write_job, variable, sandbox):
    result = cli("apply", str(write_job()), "--yes", env_overrides={variable: None})
    assert_clean_failure(result, variable)
    assert _writes(sandbox) == []


def test_unreachable_exchange_is_one_line(cli, write_job):
    job = write_job(url=f"http://127.0.0.1:{_free_port()}")
    result = cli("plan", str(job))
    assert_clean_failure(result, "Error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_refused_authentication_is_one_line_without_the_secret(cli, write_job, sandbox):
    wrong = "0123456789abcdef0123456789abcdef"
    result = cli("apply", str(write_job()), "--yes", env_overrides={"REBALANCER_SECRET_KEY": wrong})
    assert_clean_failure(result, "100005")
    assert wrong not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert _writes(sandbox) == []


def test_missing_job_file(cli, tmp_path):
    result = cli("plan", str(tmp_path / "nope.yaml"))
    assert_clean_failure(result, "nope.yaml")


def test_saved_plan_for_another_job_is_refused(cli, write_job, tmp_path, sandbox):
    first = write_job("first")
    saved = tmp_path / "first.json"
    assert cli("plan", str(first), "--out", str(saved)).exit_code == 0
    result = cli("apply", str(write_job("second")), "--plan", str(saved), "--yes")
    assert_clean_failure(result, "saved plan is for job 'first'")
    assert _writes(sandbox) == []


def test_garbage_saved_plan_is_refused(cli, write_job, tmp_path):
    saved = tmp_path / "plan.json"
    saved.write_text("{not json")
    result = cli("apply", str(write_job()), "--plan", str(saved), "--yes")
    assert_clean_failure(result, "not a saved plan")


def test_validate_lists_problems_and_exits_1(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: Bad Name\nsymbol: btcusdt\norders: []\nfoo: 1\n")
    result = cli("validate", str(bad))
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) >= 2
    assert all(line.startswith(f"{bad}:") for line in lines)
    as_json = cli("validate", str(bad), "--json")
    assert as_json.exit_code == 1
    import json

    problems = json.loads(as_json.stdout)
    assert {"file", "line", "column", "path", "message"} <= set(problems[0])


def test_validate_accepts_the_examples(cli):
    from pathlib import Path

    jobs = Path(__file__).resolve().parents[2] / "jobs"
    result = cli("validate", str(jobs))
    assert result.exit_code == 0, result.output
