"""The daemon's status pages behind ``--http``: ``/`` every job, ``/jobs/NAME`` one job's ladder and passes.

Reads the state store (one status read, one history read per job page) and the daemon's memory of each job's last
plan; the markup comes from ``rebalancer.pictures.status_page``. Served by the same server as ``/metrics``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

from rebalancer.daemon.overview import status_rows
from rebalancer.daemon.scheduler import Daemon
from rebalancer.pictures import status_page

RECENT_PASSES = 20
"""How many of a job's passes its page lists."""


class StatusPages:
    """Answers the page paths of the daemon's HTTP server."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def respond(self, path: str) -> tuple[str, bytes] | None:
        """(HTTP status, HTML) for ``/`` and ``/jobs/NAME``; None for any other path."""
        if path == "/":
            now = datetime.now(UTC)
            page = status_page.index_page(self._rows(now), now, daemon=self._daemon.holder)
            return "200 OK", page.encode()
        if path.startswith("/jobs/"):
            name = unquote(path.removeprefix("/jobs/"))
            return self._job(name)
        return None

    def _rows(self, now: datetime) -> list[dict[str, object]]:
        store = self._daemon.store
        jobs = list(self._daemon.jobs.values())
        statuses = store.job_statuses(also=[job.name for job in jobs], now=now)
        return status_rows(statuses, jobs, store.reload_failures(), now)

    def _job(self, name: str) -> tuple[str, bytes]:
        now = datetime.now(UTC)
        row = next((r for r in self._rows(now) if r.get("job") == name), None)
        if row is None:
            return "404 Not Found", status_page.not_found_page(name).encode()
        job = self._daemon.jobs.get(name)
        last = self._daemon.last_plan(name)
        passes = [record.to_dict() for record in self._daemon.store.history(name, limit=RECENT_PASSES)]
        page = status_page.job_page(
            row,
            last[0] if last else None,
            passes,
            tolerance=job.tolerance if job else None,
            planned_at=last[1] if last else None,
        )
        return "200 OK", page.encode()
