"""Exit codes: 0 ok, 1 every error (usage errors and a declined apply included), 2 only for
`plan --detailed-exitcode` with changes. Every error is one `Error:` line; usage errors add click's hint."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rebalancer import errors
from rebalancer.cli.main import main

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--bogus", "x.yaml"], "No such option '--bogus'"),
        (["plan"], "Missing argument 'JOB'"),
        (["plan", "a.yaml", "b.yaml"], "Got unexpected extra argument (b.yaml)"),
        (["nosuch"], "No such command 'nosuch'"),
        (["history", "--limit", "0"], "Invalid value for '--limit'"),
        (["--bogus", "history"], "No such option '--bogus'"),
    ],
)
def test_usage_errors_exit_1_with_one_error_line_then_the_usage_hint(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: ") and message in lines[0], result.stderr
    assert [line for line in lines if line.startswith("Error:")] == [lines[0]]
    assert lines[1].startswith("Usage: ")
    assert "--help' for help." in lines[2]


def test_detailed_exitcode_is_0_without_changes_and_2_only_with_them(cli, write_job):
    job = str(write_job(levels=2))
    assert cli("plan", job, "--detailed-exitcode").exit_code == 2
    assert cli("plan", job).exit_code == 0  # changes alone are not an error
    assert cli("apply", job, "--yes").exit_code == 0
    assert cli("plan", job, "--detailed-exitcode").exit_code == 0


def test_an_error_with_detailed_exitcode_is_1_not_2(cli, tmp_path):
    result = cli("plan", str(tmp_path / "missing.yaml"), "--detailed-exitcode")
    assert result.exit_code == 1
    assert result.stderr == f"{tmp_path / 'missing.yaml'}:1:1: no such file\n"


def test_every_missing_credential_is_named_in_one_line(cli, write_job, sandbox):
    job = write_job(url=sandbox.url)
    result = cli("plan", str(job), env_overrides={"REBALANCER_API_KEY": None, "REBALANCER_SECRET_KEY": None})
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "REBALANCER_API_KEY" in result.stderr and "REBALANCER_SECRET_KEY" in result.stderr


def _branches() -> list[type[errors.RebalancerError]]:
    found, todo = [], [errors.RebalancerError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize("branch", _branches(), ids=lambda c: c.__name__)
def test_every_branch_of_the_error_tree_carries_exit_code_1(branch):
    assert branch.exit_code == 1


def test_the_cli_maps_the_error_s_own_exit_code(tmp_path):
    class Odd(errors.StateError):
        exit_code = 7

    @click.command("odd")
    def odd() -> None:
        raise Odd("something odd")

    main.add_command(odd)
    try:
        result = CliRunner().invoke(main, ["odd"], env={"REBALANCER_STATE_DIR": str(tmp_path)})
    finally:
        main.commands.pop("odd")
    assert result.exit_code == 7
    assert result.stderr == "Error: something odd\n"


def test_a_declined_apply_exits_1_and_sends_nothing(tmp_path):
    """Answering anything but 'yes' at the terminal prompt: exit 1, one Error: line, the book unchanged."""
    job = tmp_path / "job.yaml"
    job.write_text(
        "version: 1\nname: declined\nsymbol: btcusdt\nexchange: {url: sandbox}\n"
        'ladder:\n  buy: {levels: 2, first: 1%, step: 1%, size: "0.01"}\n'
    )
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1", "PYTHONPATH": str(REPO)}
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "rebalancer", "apply", str(job)],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        os.write(controller, b"no\n")
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert process.returncode == 1, (out, err)
    assert err.decode().splitlines()[-1] == "Error: apply cancelled: the plan was not confirmed; nothing was sent"
    plan = subprocess.run(
        [sys.executable, "-m", "rebalancer", "plan", str(job), "--detailed-exitcode"],
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert plan.returncode == 2 and b"Plan: 2 to place" in plan.stdout
