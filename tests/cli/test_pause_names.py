"""`pause` and `resume` take only a job the state store knows (or a job file given): a misspelt name is an error
naming the closest known jobs, and leaves no row behind."""

from __future__ import annotations

import json


def _status_jobs(cli) -> dict[str, dict]:
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    return {row["job"]: row for row in json.loads(result.stdout)}


def test_a_misspelt_name_is_refused_naming_the_closest_jobs_and_leaves_no_row(cli, write_job):
    assert cli("apply", str(write_job("btcusdt-maker", levels=2)), "--yes").exit_code == 0
    assert cli("apply", str(write_job("ethusdt-wall", levels=2)), "--yes").exit_code == 0
    for command in ("pause", "resume"):
        result = cli(command, "btcusdt-makr")
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        assert result.stderr.startswith("Error: no job named 'btcusdt-makr' in the state store")
        assert "did you mean 'btcusdt-maker'?" in result.stderr
        assert result.stderr.count("\n") == 1
    rows = _status_jobs(cli)
    assert set(rows) == {"btcusdt-maker", "ethusdt-wall"}, "the refused name left no row"
    assert not rows["btcusdt-maker"]["paused"]


def test_an_unknown_name_far_from_every_job_lists_the_known_ones(cli, write_job):
    assert cli("apply", str(write_job("alpha", levels=2)), "--yes").exit_code == 0
    result = cli("pause", "zzzz")
    assert result.exit_code == 1
    assert "; it knows 'alpha'" in result.stderr


def test_an_empty_store_says_it_knows_no_jobs(cli):
    result = cli("pause", "anything")
    assert result.exit_code == 1
    assert "it knows no jobs yet" in result.stderr
    assert _status_jobs(cli) == {}


def test_a_job_known_only_from_its_file_can_be_paused_then_resumed_by_name(cli, write_job):
    job = write_job("fresh", levels=2)
    paused = cli("pause", str(job))
    assert paused.exit_code == 0 and paused.stdout == "Paused fresh.\n"
    assert _status_jobs(cli)["fresh"]["paused"] is True
    resumed = cli("resume", "fresh")  # known now: its pause switch is in the store
    assert resumed.exit_code == 0 and resumed.stdout == "Resumed fresh.\n"
    assert _status_jobs(cli)["fresh"]["paused"] is False


def test_history_suggests_the_closest_job_too(cli, write_job):
    assert cli("apply", str(write_job("btcusdt-maker", levels=2)), "--yes").exit_code == 0
    result = cli("history", "btcusdt_maker")
    assert result.exit_code == 1 and "did you mean 'btcusdt-maker'?" in result.stderr
