"""The live pages of a daemon or a cluster member: ``/`` lists every job, ``/jobs/NAME`` draws one job's ladder
and its recent passes.

Pure: status rows (the documented ``rebalancer status --json`` shape), the last plan and pass records in, HTML out.
Plain HTML that refreshes itself every few seconds; no script, nothing loaded from the network.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from rebalancer.core.plan import Plan, summary_line
from rebalancer.job import Tolerance
from rebalancer.pictures import ladder_svg, plan_page
from rebalancer.vocab import JobState, PassResult

REFRESH_SECONDS = 5

_STYLE = """
body { font: 14px system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 20px; margin: 0 0 8px; } .sub { color: #59636e; margin-bottom: 12px; }
table.jobs, table.passes, table.members { border-collapse: collapse; font-size: 13px; }
table.jobs th, table.jobs td, table.passes th, table.passes td, table.members th, table.members td { padding: 4px 10px;
  border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
td.state.running { color: #1a7f37; } td.state.paused { color: #9a6700; } td.state.failing { color: #cf222e; }
td.error, .reload { color: #cf222e; font-size: 12px; } a { color: #0969da; text-decoration: none; }
"""


def _head(title: str) -> list[str]:
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">',
        f"<title>{escape(title)}</title>",
        f"<style>{_STYLE}{plan_page.PAGE_STYLE}{ladder_svg.STYLE}</style></head><body>",
    ]


_FAILING = frozenset((PassResult.ERROR, PassResult.REJECTED, PassResult.UNKNOWN_OUTCOME))
_RUNNING = frozenset(
    (PassResult.OK, PassResult.NO_CHANGES, PassResult.SKIPPED, PassResult.FENCED, PassResult.PLANNED,
     PassResult.DECLINED)
)  # fmt: skip


def state_of(paused: bool, last: PassResult | None) -> JobState:
    """The state a page shows for a job: paused first, idle before any pass, failing when the last pass failed (an
    error, a refusal or an unconfirmed send), else running. A fenced pass is a lease that moved, not a failure: the
    daemon counts it so too. A result placed in neither set raises, so a new ``PassResult`` cannot go unshown."""
    if paused:
        return JobState.PAUSED
    if last is None:
        return JobState.IDLE
    if last in _FAILING:
        return JobState.FAILING
    if last in _RUNNING:
        return JobState.RUNNING
    raise ValueError(f"no job state for the pass result {last!r}")


def job_state(row: Mapping[str, Any]) -> JobState:
    """The state of a job's status row (``paused``, ``last_pass.result``); see ``state_of``."""
    last = row.get("last_pass")
    if last is not None and last.get("result") is None and not row.get("paused"):
        return JobState.RUNNING  # a pass under way (or cut short by a kill) has no result yet
    return state_of(bool(row.get("paused")), None if last is None else PassResult(last["result"]))


def _cell(value: object) -> str:
    return "—" if value is None or value == "" else escape(str(value))


def _seconds(value: object) -> object:
    """An ISO time to the second, in UTC (``2026-11-27T14:43:05+00:00``): what a reader needs, as the rows show it."""
    if not isinstance(value, str):
        return value
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return (moment.astimezone(UTC) if moment.tzinfo else moment).isoformat(timespec="seconds")


def _fills(row: Mapping[str, Any]) -> str:
    fills = row.get("fills")
    if not fills:
        return "—"
    if isinstance(fills, Mapping):
        return escape(", ".join(f"{k} {v}" for k, v in fills.items()))
    return escape(str(fills))


def index_page(
    rows: Sequence[Mapping[str, Any]],
    now: datetime,
    *,
    daemon: str | None = None,
    member: str | None = None,
    members: Sequence[Mapping[str, Any]] = (),
    notes: Sequence[str] = (),
) -> str:
    """``/``: one table row per job (state, last pass, result, owned orders, next due, fills, errors); served by a
    cluster ``member``, each row also names the member that ran the job last, and ``members`` (the status
    ``--members`` rows) are listed below. ``notes`` (what the page leaves out, and why) go above the table."""
    title = "rebalancer: jobs"
    parts = _head(title)
    parts.append(f"<h1>{escape(title)}</h1>")
    sub = f"{len(rows)} job(s) · {now.isoformat(timespec='seconds')}"
    if daemon:
        sub += f" · daemon {daemon}"
    if member:
        sub += f" · cluster member {member}"
    parts.append(f"<div class='sub'>{escape(sub)}</div>")
    parts.extend(f"<p class='note'>{escape(note)}</p>" for note in notes)
    clustered = member is not None
    parts.append(
        "<table class='jobs'><tr><th>job</th><th>state</th><th>last pass</th><th>result</th><th>owned orders</th>"
        "<th>next due</th><th>fills</th><th>market data</th><th>last error</th>"
        + ("<th>last member</th>" if clustered else "")
        + "</tr>"
    )
    for row in rows:
        name = row.get("job")
        last = row.get("last_pass") or {}
        error = row.get("last_error") or {}
        state = job_state(row)
        shown = state + (f" ({row['paused_by']})" if state is JobState.PAUSED and row.get("paused_by") else "")
        link = f"<a href='/jobs/{quote(str(name))}'>{escape(str(name))}</a>" if name else _cell(row.get("source"))
        reload = row.get("reload_failure")
        refused = f"<div class='reload'>reload refused: {escape(reload['problem'])}</div>" if reload else ""
        parts.append(
            f"<tr class='job' data-job='{escape(str(name or ''))}' data-state='{state}'>"
            f"<td>{link}</td><td class='state {state}'>{escape(shown)}</td>"
            f"<td>{_cell(last.get('at'))}</td><td class='result'>{_cell(last.get('result'))}</td>"
            f"<td class='orders'>{_cell(row.get('tracked_orders'))}</td><td>{_cell(row.get('next_due'))}</td>"
            f"<td class='fills'>{_fills(row)}</td><td class='feed'>{escape(market_data(row))}</td>"
            f"<td class='error'>{_cell(error.get('message'))}{refused}</td>"
            + (f"<td class='member'>{_last_member(row)}</td>" if clustered else "")
            + "</tr>"
        )
    parts.append("</table>")
    if not rows:
        parts.append("<p>No jobs yet.</p>")
    if clustered:
        parts.append(_members_table(members))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def market_data(row: Mapping[str, Any]) -> str:
    """Why the job's last pass ran and where its prices come from: ``trade · stream``, ``market · polling (why)``
    from the process's stream feed; for a job without one, where its last pass's prices came from (``timer · rest``).
    """
    last = row.get("last_pass") or {}
    feed = row.get("market_data") or {}
    if not feed and not last:
        return "—"
    source = str(feed.get("source") or last.get("prices") or "—")
    if feed.get("why"):
        source += f" ({feed['why']})"
    return f"{last.get('wake') or '—'} · {source}"


def _last_member(row: Mapping[str, Any]) -> str:
    cluster = row.get("cluster") or {}
    name = cluster.get("last_member")
    if not name:
        return "—"
    return escape(str(name)) + ("" if cluster.get("last_member_alive") else " (down)")


def _members_table(members: Sequence[Mapping[str, Any]]) -> str:
    """The cluster's members still around, with their liveness (the rows of ``status --members --json``)."""
    parts = [
        "<h2>Cluster members</h2><table class='members'><tr><th>member</th><th>state</th><th>heartbeat</th>"
        "<th>passes</th><th>fenced</th></tr>"
    ]
    for m in members:
        state = "alive" if m.get("alive") else "stopped" if m.get("stopped") else "unresponsive"
        parts.append(
            f"<tr class='member' data-member='{escape(str(m.get('member')))}' data-state='{state}'>"
            f"<td>{_cell(m.get('member'))}</td><td>{state}</td><td>{_cell(m.get('heartbeat'))}</td>"
            f"<td>{_cell(m.get('passes'))}</td><td>{_cell(m.get('fenced'))}</td></tr>"
        )
    parts.append("</table>")
    return "\n".join(parts)


def job_page(
    row: Mapping[str, Any],
    plan: Plan | None,
    passes: Sequence[Mapping[str, Any]],
    *,
    tolerance: Tolerance | None = None,
    planned_at: datetime | None = None,
) -> str:
    """``/jobs/NAME``: the job's ladder as its last pass left it (drawn from that pass's plan) and its recent passes
    (``PassRecord.to_dict()`` rows, newest first)."""
    name = str(row.get("job"))
    title = f"rebalancer: {name}"
    parts = _head(title)
    sub = f"state {job_state(row)} · owned orders {_cell(row.get('tracked_orders'))}"
    sub += f" · next due {_cell(row.get('next_due'))} · last wake and market data {market_data(row)}"
    parts.append(f"<h1>{escape(name)}</h1><div class='sub'><a href='/'>all jobs</a> · {sub}</div>")
    if plan is None:
        parts.append("<p class='noplan'>No pass of this job has run in this process yet.</p>")
    else:
        when = f" at {planned_at.isoformat(timespec='seconds')}" if planned_at else ""
        parts.append(f"<h2>Ladder as the last pass{escape(when)} left it</h2>")
        if plan.paused:
            parts.append(f"<p class='paused'>{escape(plan.paused)}</p>")
        if plan.blind is not None:
            parts.append(f"<p class='blind'>{escape(plan.blind.sentence())}</p>")
        title_svg = f"Ladder of {name} on {plan.symbol}"
        parts.append(ladder_svg.render(plan_page.rows(plan, tolerance), plan_page.markers(plan), title=title_svg))
        parts.append(f"<p class='summary'>{escape(summary_line(plan))}</p>")
    parts.append("<h2>Recent passes</h2><table class='passes'><tr><th>started</th><th>mode</th><th>result</th>"
                 "<th>wake</th><th>prices</th><th>planned</th><th>duration</th><th>error</th></tr>")  # fmt: skip
    for p in passes:
        summary = p.get("summary") or {}
        planned = f"+{summary.get('place', 0)} −{summary.get('cancel', 0)} ={summary.get('keep', 0)}"
        started = _seconds(p.get("started_at"))
        parts.append(
            f"<tr class='pass' data-result='{escape(str(p.get('result')))}'><td>{_cell(started)}</td>"
            f"<td>{_cell(p.get('mode'))}</td><td>{_cell(p.get('result'))}</td><td class='wake'>{_cell(p.get('wake'))}"
            f"</td><td>{_cell(p.get('prices'))}</td><td>{escape(planned)}</td>"
            f"<td>{_cell(p.get('duration_ms'))} ms</td><td class='error'>{_cell(p.get('error'))}</td></tr>"
        )
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


def not_found_page(name: str) -> str:
    """The page for a job this daemon does not know."""
    parts = _head(f"rebalancer: no job {name}")
    parts.append(f"<h1>No job named {escape(name)}</h1><p><a href='/'>all jobs</a></p></body></html>")
    return "\n".join(parts) + "\n"


def unanswered_page(name: str, why: str) -> str:
    """The page for a job whose page could not be had just now (``run --workers``: its worker did not answer)."""
    parts = _head(f"rebalancer: job {name}")
    parts.append(f"<h1>Job {escape(name)}</h1><p class='note'>{escape(why)}</p><p><a href='/'>all jobs</a></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
