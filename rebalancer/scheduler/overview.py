"""One row per job, as ``rebalancer status --json`` prints it and the daemon's status page shows it.

Joins what the state store knows (``StateStore.job_statuses``, one read) with the job files at hand and the
refused reloads, and works out when each job is next due. A row is a plain dict whose keys are the documented JSON
shape (README, "status"); new columns are new keys. On a cluster's state store each row also carries the job's
``cluster`` object, and its next due time is the dispatcher's: the caller reads the cluster (``ClusterRows``, which
``rebalancer.cluster.view`` implements), so that nothing here imports the cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rebalancer.core.blind import BLIND
from rebalancer.models import format_decimal
from rebalancer.scheduler.timing import next_due, scheduled_job
from rebalancer.vocab import PausedBy

if TYPE_CHECKING:
    from rebalancer.job import Job
    from rebalancer.state.status import JobStatus, ReloadFailure

Row = dict[str, Any]


class ClusterRows(Protocol):
    """A cluster as the status rows and pages read it."""

    def job_names(self) -> list[str]:
        """Every job of the cluster."""

    def job_row(self, name: str, now: datetime) -> Row | None:
        """The ``cluster`` object of one job's row (None for a job outside the cluster)."""

    def next_due(self, name: str) -> datetime | None:
        """When the cluster next runs the job (None outside the cluster)."""

    def member_rows(self, now: datetime) -> list[Row]:
        """One row per member still around, with its liveness."""


def status_rows(
    statuses: Sequence[JobStatus],
    jobs: Sequence[Job],
    failures: Sequence[ReloadFailure],
    now: datetime,
    cluster: ClusterRows | None = None,
) -> list[Row]:
    """The JSON-ready rows: one per job, then one per refused file whose job the state store does not know
    (``job`` is null when the file never loaded)."""
    by_name = {job.name: job for job in jobs}
    by_file = {failure.file: failure for failure in failures}
    by_job = {failure.job: failure for failure in failures if failure.job}
    rows: list[Row] = []
    for st in statuses:
        job = by_name.get(st.job)
        schedule = scheduled_job(job) if job is not None else st.scheduled
        source = job.source if job is not None else schedule.source if schedule is not None else None
        in_file = schedule is not None and schedule.paused
        paused_by = (st.paused_by or PausedBy.SWITCH) if st.paused else PausedBy.FILE if in_file else None
        failure = by_file.pop(str(Path(source).absolute()), None) if source else None
        failure = failure or by_job.get(st.job)
        if failure is not None:
            by_file.pop(failure.file, None)
        last, error = st.last_pass, st.last_error
        due = None
        in_cluster = cluster.job_row(st.job, now) if cluster is not None else None
        dispatched = cluster.next_due(st.job) if cluster is not None else None
        if dispatched is not None and paused_by is None:
            due = max(now, dispatched)
        elif schedule is not None and paused_by is None:
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
                "last_error": None if error is None else {"at": iso(error.started_at), "message": error.error},
                "tracked_orders": st.tracked_orders,
                "fills": {side: format_decimal(volume) for side, volume in sorted(st.fills.items())},
                "paused_why": st.paused_why,
                "blind": None if last is None else blind_line(last.warnings),
                "next_due": None if due is None else iso(due),
                "reload_failure": None if failure is None else failure.to_dict(),
                "cluster": in_cluster,
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
                "fills": {},
                "paused_why": None,
                "blind": None,
                "next_due": None,
                "reload_failure": failure.to_dict(),
                "cluster": None,
            }
        )
    return rows


def blind_line(warnings: Sequence[str]) -> str | None:
    """What a pass said of the job's blindness (``limits.max_blind``), or None when it was not blind."""
    return next((w for w in warnings if w.startswith(BLIND)), None)


def _pass(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "at": iso(record.started_at),
        "mode": record.mode,
        "result": record.result,
        "duration_ms": record.duration_ms,
        "wake": record.wake,
        "prices": record.prices,
    }


def iso(moment: datetime) -> str:
    """A moment as ISO 8601 in UTC, to the second: how rows and pages show times."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")
