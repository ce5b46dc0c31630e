"""The status pages behind ``--http``: ``/`` every job, ``/jobs/NAME`` one job's ladder and passes.

Served by the daemon and by every cluster member (each through the same server as ``/metrics``). Reads the state
store (one status read, one history read per job page) and the process's memory of each job's last plan; the markup
comes from ``rebalancer.pictures.status_page``. ``feeds`` tells each job's market-data source now
(``Daemon.feed``); its last wake reason is its last pass's, from the store. On a cluster the caller hands in a way
to read the cluster (``ClusterRows``): the rows then cover every job of the cluster, each with the member that ran
it last, and the page lists the members.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote

from rebalancer.pictures import status_page
from rebalancer.scheduler.overview import ClusterRows, status_rows

if TYPE_CHECKING:
    from rebalancer.core.plan import Plan
    from rebalancer.job import Job
    from rebalancer.state.store import StateStore

RECENT_PASSES = 20
"""How many of a job's passes its page lists."""

ROWS_PATH = "/fleet/rows"
"""The rows of ``/`` as JSON, for the parent of ``run --workers``, which merges every worker's into one page."""


class PageSource(Protocol):
    """What the pages read from the process that serves them: a daemon or a cluster member."""

    @property
    def store(self) -> StateStore:
        """The state store the process runs on."""

    @property
    def jobs(self) -> Mapping[str, Job]:
        """The jobs this process loaded, by name."""

    def last_plan(self, name: str) -> tuple[Plan, datetime] | None:
        """The plan of the job's latest pass in this process and when it ended."""


class StatusPages:
    """Answers the page paths of a daemon's or a cluster member's HTTP server.

    ``name`` is the process as status shows it (the daemon's holder name, or the member's name); ``cluster`` reads
    the cluster afresh for each page (None outside a cluster).
    """

    def __init__(
        self,
        source: PageSource,
        name: str,
        cluster: Callable[[datetime], ClusterRows] | None = None,
        feeds: Callable[[str], dict[str, Any] | None] | None = None,
    ) -> None:
        self._source = source
        self._name = name
        self._cluster = cluster
        self._feeds = feeds

    def respond(self, path: str) -> tuple[str, bytes] | None:
        """(HTTP status, HTML) for ``/`` and ``/jobs/NAME``; None for any other path."""
        if path == "/":
            now = datetime.now(UTC)
            rows, members = self._rows(now)
            if self._cluster is None:
                page = status_page.index_page(rows, now, daemon=self._name)
            else:
                page = status_page.index_page(rows, now, member=self._name, members=members)
            return "200 OK", page.encode()
        if path.startswith("/jobs/"):
            name = unquote(path.removeprefix("/jobs/"))
            return self._job(name)
        if path == ROWS_PATH and self._cluster is None:
            return "200 OK", rows_json(self._name, self._rows(datetime.now(UTC))[0])
        return None

    def _rows(self, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        store = self._source.store
        jobs = list(self._source.jobs.values())
        cluster = self._cluster(now) if self._cluster is not None else None
        also = [job.name for job in jobs] + (cluster.job_names() if cluster is not None else [])
        statuses = store.job_statuses(also=also, now=now)
        rows = status_rows(statuses, jobs, store.reload_failures(), now, cluster)
        if self._feeds is not None:
            for row in rows:
                row["market_data"] = self._feeds(row["job"]) if row.get("job") else None
        return rows, (cluster.member_rows(now) if cluster is not None else [])

    def _job(self, name: str) -> tuple[str, bytes]:
        now = datetime.now(UTC)
        row = next((r for r in self._rows(now)[0] if r.get("job") == name), None)
        if row is None:
            return "404 Not Found", status_page.not_found_page(name).encode()
        job = self._source.jobs.get(name)
        last = self._source.last_plan(name)
        passes = [record.to_dict() for record in self._source.store.history(name, limit=RECENT_PASSES)]
        page = status_page.job_page(
            row,
            last[0] if last else None,
            passes,
            tolerance=job.tolerance if job else None,
            planned_at=last[1] if last else None,
        )
        return "200 OK", page.encode()


def rows_json(name: str, rows: list[dict[str, Any]]) -> bytes:
    """``{"daemon": name, "rows": rows}`` as JSON with ``<``, ``>`` and ``&`` escaped: the server labels it HTML, so
    no job name or error text in it can become markup in a browser."""
    text = json.dumps({"daemon": name, "rows": rows}, default=str)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e").encode()
