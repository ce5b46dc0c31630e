"""`history`: every pass that ran is recorded, failed ones with their error; unknown jobs are an error;
`--since` and `--result` filter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from rebalancer.cli.params import parse_since

WRONG_SECRET = "0123456789abcdef0123456789abcdef"


def _passes(cli, *args: str) -> list[dict]:
    result = cli("history", *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_a_pass_that_failed_is_recorded_with_its_error_and_no_secret(cli, write_job):
    job = str(write_job(levels=2))
    failed = cli("apply", job, "--yes", env_overrides={"REBALANCER_SECRET_KEY": WRONG_SECRET})
    assert failed.exit_code == 1
    [record] = _passes(cli, "e2e")
    assert record["result"] == "error" and record["mode"] == "apply"
    assert "100005" in record["error"]
    assert WRONG_SECRET not in json.dumps(record)
    table = cli("history", "e2e")
    assert "error" in table.stdout and "100005" in table.stdout


def test_run_once_records_its_failed_pass(cli, write_job):
    job = str(write_job(levels=2))
    failed = cli("run", "--once", job, env_overrides={"REBALANCER_SECRET_KEY": WRONG_SECRET})
    assert failed.exit_code == 1
    [record] = _passes(cli, "e2e")
    assert (record["mode"], record["result"]) == ("once", "error")
    assert record["wake"] is None, "a command's pass: no scheduler woke it"


def test_each_pass_keeps_why_it_ran_and_where_its_prices_came_from(cli, write_job):
    job = str(write_job(levels=2))
    assert cli("apply", job, "--yes").exit_code == 0
    [record] = _passes(cli, "e2e")
    assert (record["wake"], record["prices"]) == (None, "rest")
    header, row = cli("history", "e2e").stdout.splitlines()[:2]
    assert header.split()[5:8] == ["WAKE", "PRICES", "RESULT"]
    assert row.split()[5:8] == ["-", "rest", "ok"]


def test_a_plan_that_went_stale_under_the_prompt_is_recorded(cli, write_job, sandbox, tmp_path):
    job = str(write_job(levels=2))
    saved = tmp_path / "plan.json"
    assert cli("plan", job, "--out", str(saved)).exit_code == 0
    assert cli("apply", job, "--yes").exit_code == 0  # the book moves on: the saved plan is stale
    stale = cli("apply", job, "--plan", str(saved), "--yes")
    assert stale.exit_code == 1
    newest = _passes(cli, "e2e")[0]
    assert newest["result"] == "error" and "stale" in newest["error"]


def test_history_of_an_unknown_job_is_an_error_naming_it(cli, write_job):
    assert cli("apply", str(write_job(levels=2)), "--yes").exit_code == 0
    result = cli("history", "no-such-job")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no job named 'no-such-job' in the state store")
    assert result.stderr.count("\n") == 1


def test_history_of_a_job_file_that_never_ran_is_empty_not_an_error(cli, write_job):
    result = cli("history", str(write_job("fresh")))
    assert result.exit_code == 0
    assert result.stdout.strip() == "No passes match."


def test_result_and_since_filter_the_passes(cli, write_job):
    job = str(write_job(levels=2))
    assert cli("apply", job, "--yes", env_overrides={"REBALANCER_SECRET_KEY": WRONG_SECRET}).exit_code == 1
    assert cli("apply", job, "--yes").exit_code == 0
    assert cli("apply", job, "--yes").exit_code == 0  # no changes now
    assert [p["result"] for p in _passes(cli)] == ["no_changes", "ok", "error"]
    assert [p["result"] for p in _passes(cli, "--result", "error")] == ["error"]
    assert [p["result"] for p in _passes(cli, "e2e", "--result", "ok")] == ["ok"]
    assert len(_passes(cli, "--since", "1h")) == 3
    assert _passes(cli, "--since", (datetime.now(UTC) + timedelta(minutes=5)).isoformat()) == []
    assert cli("history", "--result", "bogus").exit_code == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", datetime(2026, 1, 1, 11, 58, 30, tzinfo=UTC)),
        ("1h", datetime(2026, 1, 1, 11, 0, tzinfo=UTC)),
        ("1h30m", datetime(2026, 1, 1, 10, 30, tzinfo=UTC)),
        ("2d", datetime(2025, 12, 30, 12, 0, tzinfo=UTC)),
        ("1w", datetime(2025, 12, 25, 12, 0, tzinfo=UTC)),
        ("2025-12-31T08:00", datetime(2025, 12, 31, 8, 0, tzinfo=UTC)),
        ("2025-12-31T08:00Z", datetime(2025, 12, 31, 8, 0, tzinfo=UTC)),
        ("2025-12-31T10:00+02:00", datetime(2025, 12, 31, 8, 0, tzinfo=UTC)),
    ],
)
def test_since_reads_ages_and_iso_times(text, expected):
    assert parse_since(text, datetime(2026, 1, 1, 12, 0, tzinfo=UTC)) == expected


@pytest.mark.parametrize("text", ["", "h", "1x", "yesterday", "-1h", "1.5h"])
def test_since_refuses_anything_else(text):
    with pytest.raises(ValueError, match="neither an age"):
        parse_since(text, datetime(2026, 1, 1, tzinfo=UTC))
