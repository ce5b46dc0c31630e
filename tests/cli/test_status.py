"""``rebalancer status``: every job of the state store and of the files given, as a table and as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from rebalancer.state.store import StateStore

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json").read_text())

ROW_KEYS = {
    "job",
    "source",
    "paused",
    "paused_by",
    "holder",
    "daemon",
    "last_pass",
    "last_error",
    "tracked_orders",
    "fills",
    "paused_why",
    "blind",
    "next_due",
    "reload_failure",
    "cluster",
}


def _store(tmp_path: Path) -> StateStore:
    return StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}")


def _rows(cli, *args: str) -> dict[str, dict]:
    result = cli("status", "--json", *args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    jsonschema.validate(rows, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert all(set(row) == ROW_KEYS for row in rows), rows
    return {row["job"]: row for row in rows}


def test_an_empty_state_store_says_so(cli):
    result = cli("status")
    assert result.exit_code == 0, result.output
    assert "No jobs known" in result.stdout
    assert json.loads(cli("status", "--json").stdout) == []


def test_a_job_file_given_is_due_now_and_a_job_applied_shows_its_pass_and_orders(cli, write_job, tmp_path):
    applied = write_job("applied", levels=2, ownership="tracked")
    fresh = write_job("fresh", levels=1, ownership="tracked")
    assert cli("apply", str(applied), "--yes").exit_code == 0
    before = datetime.now(UTC)

    rows = _rows(cli, str(fresh))

    assert set(rows) == {"applied", "fresh"}
    job = rows["applied"]
    assert job["last_pass"]["result"] == "ok" and job["last_pass"]["mode"] == "apply"
    assert (job["last_pass"]["wake"], job["last_pass"]["prices"]) == (None, "rest"), "a command ran it, over REST"
    assert job["tracked_orders"] == 4
    assert job["source"] is None and job["next_due"] is None, "no file given and no daemon: nothing is due"
    assert job["paused"] is False and job["holder"] is None and job["last_error"] is None
    new = rows["fresh"]
    assert new["source"] == str(fresh) and new["last_pass"] is None and new["tracked_orders"] == 0
    assert datetime.fromisoformat(new["next_due"]) >= before.replace(microsecond=0)

    rows = _rows(cli, str(applied))
    last = datetime.fromisoformat(rows["applied"]["last_pass"]["at"])
    due = datetime.fromisoformat(rows["applied"]["next_due"])
    assert due >= last + timedelta(seconds=1), "every: 1s after the last pass (or now, if that has passed)"


def test_paused_holder_and_last_error_are_shown(cli, write_job, tmp_path):
    job = write_job("p", levels=1)
    assert cli("pause", str(job)).exit_code == 0
    with _store(tmp_path) as store:
        store.acquire_lease("p", "otherhost:4242:abcd", 60)
        failed = store.start_pass("p", "run")
        store.finish_pass(failed, result="error", summary={}, error="exchange unreachable: x")
        ok = store.start_pass("p", "run")
        store.finish_pass(ok, result="no_changes", summary={"keep": 2})

    row = _rows(cli, str(job))["p"]

    assert row["paused"] is True and row["paused_by"] == "switch"
    assert row["next_due"] is None, "a paused job is not due"
    assert row["holder"] == "otherhost:4242:abcd"
    assert row["last_pass"]["result"] == "no_changes"
    assert row["last_error"]["message"] == "exchange unreachable: x"
    text = cli("status").stdout
    assert "Last error of p at " in text and "exchange unreachable: x" in text


def test_the_table_is_aligned(cli, write_job, tmp_path):
    with _store(tmp_path) as store:
        for name in ("a", "a-much-longer-job-name"):
            store.finish_pass(store.start_pass(name, "apply"), result="ok", summary={})
        store.set_paused("a", True)
    result = cli("status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header, rows = lines[0], lines[1:3]
    for column in ("PAUSED", "HOLDER", "LAST PASS (UTC)", "RESULT", "ORDERS", "NEXT DUE (UTC)", "RELOAD"):
        at = header.index(column)
        assert all(row[at - 2 : at] == "  " and row[at] != " " for row in rows), (column, lines)
    assert rows[0].split()[:2] == ["a", "switch"]
    assert "the exchange is not asked" in result.stdout


def test_a_broken_file_given_is_reported_and_exits_1_after_the_rows(cli, write_job, tmp_path):
    good = write_job("good", levels=1)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nname: bad\nbogus: 1\n")
    result = cli("status", str(good), str(bad))
    assert result.exit_code == 1
    assert "good" in result.stdout
    assert f"{bad}:" in result.stderr


def test_a_refused_reload_shows_on_its_job_and_a_new_broken_file_gets_a_row(cli, write_job, tmp_path):
    job = write_job("r", levels=1)
    with _store(tmp_path) as store:
        store.record_reload_failure(str(job.absolute()), f"{job}:3:1: bogus: unknown key", holder="h:1:x", job="r")
        store.record_reload_failure(str(tmp_path / "new.yaml"), "new.yaml:1:1: oops", holder="h:1:x")
    rows = json.loads(cli("status", "--json", str(job)).stdout)
    jsonschema.validate(rows, SCHEMA, format_checker=jsonschema.FormatChecker())
    by_source = {row["source"]: row for row in rows}
    failure = by_source[str(job)]["reload_failure"]
    assert failure["problem"].endswith("bogus: unknown key") and failure["times"] == 1
    orphan = by_source[str(tmp_path / "new.yaml")]
    assert orphan["job"] is None and orphan["reload_failure"]["problem"] == "new.yaml:1:1: oops"
    text = cli("status").stdout
    assert "FAILED" in text
    assert "Reload refused" in text and "its previous version keeps running" in text
