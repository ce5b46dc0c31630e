"""``rebalancer status``: one row per job known to the state store (and per job file given), as a table or JSON.

The state store answers in one read (``StateStore.job_statuses``); this module only joins that with the job files
given on the command line, works out when each job is next due, and renders. No exchange is asked: the order count
is what the state store tracks. A row is a plain dict whose keys are the documented JSON shape (README, "status");
new columns are new keys.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rebalancer.job import Job
    from rebalancer.state.status import JobStatus, ReloadFailure

Row = dict[str, Any]


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list (shape in the README).")
def status(paths: tuple[str, ...], as_json: bool) -> None:
    """Every job known to the state store (and the job files given): paused, lease holder, last pass, last error,
    tracked open orders (from the state store: no exchange is asked), next due, and refused reloads."""
    from rebalancer.cli.output import problems_text
    from rebalancer.cli.shared import open_store
    from rebalancer.jobfile.load import expand_paths, read_job_file

    files, problems = expand_paths(list(paths))
    jobs: list[Job] = []
    for file in files:
        read = read_job_file(file)
        problems.extend(read.problems)
        if read.job is not None:
            jobs.append(read.job)
    with open_store() as store:
        statuses = store.job_statuses(also=[job.name for job in jobs])
        failures = store.reload_failures()
    now = datetime.now(UTC)
    rows = status_rows(statuses, jobs, failures, now)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(status_table(rows, now))
    if problems:
        click.echo(problems_text(problems), err=True)
        sys.exit(1)


def status_rows(
    statuses: Sequence[JobStatus], jobs: Sequence[Job], failures: Sequence[ReloadFailure], now: datetime
) -> list[Row]:
    """The JSON-ready rows: one per job, then one per refused file whose job the state store does not know
    (``job`` is null when the file never loaded)."""
    from rebalancer.daemon.schedule import next_due, scheduled_job
    from rebalancer.vocab import PausedBy

    by_name = {job.name: job for job in jobs}
    by_file = {failure.file: failure for failure in failures}
    by_job = {failure.job: failure for failure in failures if failure.job}
    rows: list[Row] = []
    for st in statuses:
        job = by_name.get(st.job)
        schedule = scheduled_job(job) if job is not None else st.scheduled
        source = job.source if job is not None else schedule.source if schedule is not None else None
        in_file = schedule is not None and schedule.paused
        paused_by = PausedBy.SWITCH if st.paused else PausedBy.FILE if in_file else None
        failure = by_file.pop(str(Path(source).absolute()), None) if source else None
        failure = failure or by_job.get(st.job)
        if failure is not None:
            by_file.pop(failure.file, None)
        last, error = st.last_pass, st.last_error
        due = None
        if schedule is not None and paused_by is None:
            due = next_due(schedule, last.started_at if last else None, now)
        rows.append(
            {
                "job": st.job,
                "source": source,
                "paused": paused_by is not None,
                "paused_by": paused_by,
                "holder": st.holder,
                "daemon": st.scheduled_by,
                "last_pass": None if last is None else _pass(last),
                "last_error": None if error is None else {"at": _iso(error.started_at), "message": error.error},
                "tracked_orders": st.tracked_orders,
                "next_due": None if due is None else _iso(due),
                "reload_failure": None if failure is None else failure.to_dict(),
            }
        )
    for failure in by_file.values():
        rows.append(
            {
                "job": failure.job,
                "source": failure.file,
                "paused": False,
                "paused_by": None,
                "holder": None,
                "daemon": failure.holder,
                "last_pass": None,
                "last_error": None,
                "tracked_orders": 0,
                "next_due": None,
                "reload_failure": failure.to_dict(),
            }
        )
    return rows


def _pass(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": _iso(record.started_at),
        "mode": record.mode,
        "result": record.result,
        "duration_ms": record.duration_ms,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def status_table(rows: Sequence[Row], now: datetime) -> str:
    """The rows as an aligned table, then each last error and each refused reload on a line of its own."""
    now_iso = _iso(now)
    if not rows:
        return "No jobs known: the state store has no passes yet. Give job files: rebalancer status jobs/"
    header = ("JOB", "PAUSED", "HOLDER", "LAST PASS (UTC)", "RESULT", "ORDERS", "NEXT DUE (UTC)", "RELOAD")
    table = [header]
    for row in rows:
        last = row["last_pass"]
        table.append(
            (
                row["job"] or "-",
                row["paused_by"] or "no",
                row["holder"] or "-",
                _short(last["at"]) if last else "never",
                (last["result"] or "running") if last else "-",
                str(row["tracked_orders"]),
                _due(row["next_due"], now_iso),
                "FAILED" if row["reload_failure"] else "ok",
            )
        )
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.append("ORDERS: order ids the state store tracks for the job; the exchange is not asked.")
    for row in rows:
        if row["last_error"]:
            error = row["last_error"]
            lines.append(f"Last error of {row['job']} at {_short(error['at'])}: {error['message']}")
    for row in rows:
        failure = row["reload_failure"]
        if failure:
            kept = "its previous version keeps running" if row["job"] else "nothing of it runs"
            lines.append(f"Reload refused {failure['file']} ({failure['times']}×, {kept}): {failure['problem']}")
    return "\n".join(lines)


def _due(iso: str | None, now_iso: str) -> str:
    if iso is None:
        return "-"
    return "now" if iso <= now_iso else _short(iso)


def _short(iso: str) -> str:
    """``2026-01-02T03:04:05+00:00`` → ``2026-01-02 03:04:05``."""
    return iso.replace("T", " ").removesuffix("+00:00")
