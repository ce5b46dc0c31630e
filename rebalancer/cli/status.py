"""``rebalancer status``: one row per job known to the state store (and per job file given), as a table or JSON.

The state store answers in one read (``StateStore.job_statuses``); ``rebalancer.scheduler.overview`` joins that with the
job files given on the command line into rows (the daemon's status page shows the same rows), and this module
renders them. No exchange is asked: the order count is what the state store tracks.

On a cluster's state store (``run --cluster``) the table gains a MEMBER column (who ran the job last, ``(down)`` when
that member is not alive), a line per job that some member does not run for holding another version of its file, and
the list of members with their liveness; ``--members`` prints only the members (``rebalancer.cluster.view``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from rebalancer.cli.shared import open_store

if TYPE_CHECKING:
    from rebalancer.job import Job

Row = dict[str, Any]


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list (shape in the README).")
@click.option("--members", is_flag=True, help="Only the cluster's members and their liveness.")
def status(paths: tuple[str, ...], as_json: bool, members: bool) -> None:
    """Every job known to the state store (and the job files given): paused, lease holder, last pass, last error,
    tracked open orders (from the state store: no exchange is asked), next due, and refused reloads."""
    from rebalancer.cli.output import problems_text
    from rebalancer.cluster.view import ClusterView, members_table
    from rebalancer.jobfile.load import expand_paths, read_job_file
    from rebalancer.scheduler.overview import status_rows

    files, problems = expand_paths(list(paths))
    jobs: list[Job] = []
    for file in files:
        read = read_job_file(file)
        problems.extend(read.problems)
        if read.job is not None:
            jobs.append(read.job)
    with open_store() as store:
        now = datetime.now(UTC)
        cluster = ClusterView.read(store, now)
        if not members:
            statuses = store.job_statuses(also=[job.name for job in jobs] + cluster.job_names())
            failures = store.reload_failures()
    if members:
        member_rows = cluster.member_rows(now)
        if as_json:
            click.echo(json.dumps(member_rows, indent=2))
        else:
            click.echo(members_table(member_rows) if member_rows else "No cluster members on this state store.")
        return
    rows = status_rows(statuses, jobs, failures, now, cluster)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(status_table(rows, now))
        if cluster.members:
            click.echo("\nCluster members:\n" + members_table(cluster.member_rows(now)))
    if problems:
        click.echo(problems_text(problems), err=True)
        sys.exit(1)


def status_table(rows: Sequence[Row], now: datetime) -> str:
    """The rows as an aligned table, then each last error and each refused reload on a line of its own."""
    from rebalancer.scheduler.overview import iso

    now_iso = iso(now)
    if not rows:
        return "No jobs known: the state store has no passes yet. Give job files: rebalancer status jobs/"
    header: tuple[str, ...] = (
        "JOB",
        "PAUSED",
        "HOLDER",
        "LAST PASS (UTC)",
        "RESULT",
        "WAKE",
        "ORDERS",
        "FILLS",
        "NEXT DUE (UTC)",
        "RELOAD",
    )
    clustered = any(row.get("cluster") for row in rows)
    if clustered:
        header += ("MEMBER",)
    table = [header]
    for row in rows:
        last = row["last_pass"]
        line: tuple[str, ...] = (
            row["job"] or "-",
            row["paused_by"] or "no",
            row["holder"] or "-",
            _short(last["at"]) if last else "never",
            (last["result"] or "running") if last else "-",
            (last["wake"] or "-") if last else "-",
            str(row["tracked_orders"]),
            " ".join(f"{side} {volume}" for side, volume in row["fills"].items()) or "-",
            _due(row["next_due"], now_iso),
            "FAILED" if row["reload_failure"] else "ok",
        )
        if clustered:
            line += (_member_cell(row.get("cluster")),)
        table.append(line)
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table]
    lines.append("ORDERS: order ids the state store tracks for the job; the exchange is not asked.")
    lines.append("FILLS: volume filled per side since the job started or was last resumed.")
    lines.append("WAKE: why a scheduler ran the last pass: timer, reference, trade, market (-: a command).")
    for row in rows:
        if row.get("paused_why"):
            lines.append(f"Paused {row['job']} ({row['paused_by']}): {row['paused_why']}")
    for row in rows:
        if row.get("blind"):
            lines.append(f"Blind {row['job']}: {row['blind']}")
    for row in rows:
        if row["last_error"]:
            error = row["last_error"]
            lines.append(f"Last error of {row['job']} at {_short(error['at'])}: {error['message']}")
    for row in rows:
        other = (row.get("cluster") or {}).get("members_with_other_version")
        if other:
            lines.append(f"{row['job']}: not run by {', '.join(other)} (their job file differs from the cluster's)")
    for row in rows:
        failure = row["reload_failure"]
        if failure:
            kept = "its previous version keeps running" if row["job"] else "nothing of it runs"
            lines.append(f"Reload refused {failure['file']} ({failure['times']}×, {kept}): {failure['problem']}")
    return "\n".join(lines)


def _member_cell(cluster: Row | None) -> str:
    if not cluster or not cluster["last_member"]:
        return "-"
    return cluster["last_member"] + ("" if cluster["last_member_alive"] else " (down)")


def _due(iso: str | None, now_iso: str) -> str:
    if iso is None:
        return "-"
    return "now" if iso <= now_iso else _short(iso)


def _short(iso: str) -> str:
    """``2026-01-02T03:04:05+00:00`` → ``2026-01-02 03:04:05``."""
    return iso.replace("T", " ").removesuffix("+00:00")
