"""Global options: --state-dir (over the environment), -v/-q (log level), --version."""

from __future__ import annotations

import json

from rebalancer import __version__


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout == f"rebalancer, version {__version__}\n"


def test_state_dir_overrides_the_environment(cli, write_job, tmp_path):
    job = str(write_job(levels=2))
    elsewhere = tmp_path / "elsewhere"
    assert cli("--state-dir", str(elsewhere), "apply", job, "--yes").exit_code == 0
    assert (elsewhere / "state.db").exists()
    assert [p["job"] for p in json.loads(cli("--state-dir", str(elsewhere), "history", "--json").stdout)] == ["e2e"]
    assert cli("history", "e2e").exit_code == 1  # the environment's state dir never saw it


def test_verbose_shows_info_logs_and_quiet_hides_warnings(cli, write_job, sandbox):
    job = str(write_job(levels=2))
    sandbox.faults.error_500 = 1.0
    quiet = cli("-q", "plan", job)
    loud = cli("-v", "plan", job)
    assert quiet.exit_code == loud.exit_code == 1
    assert " INFO " not in quiet.stderr and " WARNING " not in quiet.stderr
    assert " INFO " in loud.stderr  # the transport's retries are logged at info


def test_run_once_logs_no_changes_passes_only_at_debug(cli, write_job):
    job = str(write_job(levels=2))
    assert cli("apply", job, "--yes").exit_code == 0
    default = cli("run", "--once", job)
    assert default.exit_code == 0, default.output
    assert "result=no_changes" not in default.stderr
    debug = cli("-v", "run", "--once", job)
    assert "DEBUG pass" in debug.stderr and "result=no_changes" in debug.stderr


def test_shell_completion_as_the_readme_documents_it():
    from click.testing import CliRunner

    from rebalancer.cli.main import main

    runner = CliRunner()
    script = runner.invoke(main, [], prog_name="rebalancer", env={"_REBALANCER_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_rebalancer_completion" in script.stdout
    env = {"_REBALANCER_COMPLETE": "bash_complete", "COMP_WORDS": "rebalancer history --result e", "COMP_CWORD": "3"}
    answer = runner.invoke(main, [], prog_name="rebalancer", env=env)
    assert answer.stdout.split() == ["plain,error"]
