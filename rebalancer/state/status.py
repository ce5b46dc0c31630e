"""What ``rebalancer status`` reads: one row per job from every table that knows it, and the daemon's own notes.

``StateStore`` inherits these methods. Besides the read (``job_statuses``, one transaction), a running daemon notes
here which jobs it schedules and on what schedule (``register_jobs``; written on start and reload, never per
pass) and which job files it refused to reload (``record_reload_failure``, cleared by a later good reload).
New columns (fills, cluster member) are new fields of ``JobStatus`` filled by the same read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, delete, func, select

from rebalancer.state import schema as t
from rebalancer.state.db import Database
from rebalancer.state.fills import fill_totals, guard_pauses
from rebalancer.state.leases import holder_is_dead
from rebalancer.state.records import PassRecord, cell, from_ms, load_json, pass_origin, stored_ms, to_ms

_CHUNK = 500


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduledJob:
    """A job as a daemon scheduled it: its file, period (``every_seconds``) or cron expression, and whether its
    file says ``paused: true``."""

    job: str
    source: str
    every_seconds: float | None = None
    cron: str | None = None
    paused: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ReloadFailure:
    """A job file whose latest version a daemon refused; the previous version (if any) keeps running."""

    file: str
    job: str | None
    holder: str
    problem: str
    times: int
    first_failed_at: datetime
    last_failed_at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (see README, "rebalancer status --json")."""
        return {
            "file": self.file,
            "job": self.job,
            "daemon": self.holder,
            "problem": self.problem,
            "times": self.times,
            "first_failed_at": self.first_failed_at.isoformat(),
            "last_failed_at": self.last_failed_at.isoformat(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class JobStatus:
    """Everything the state store knows about one job right now, read in one transaction.

    ``holder`` holds the job's unexpired lease; ``scheduled`` is set while a live daemon schedules the job;
    ``tracked_orders`` counts the order ids the job placed and still tracks (no exchange is asked).
    """

    job: str
    paused: bool
    holder: str | None
    scheduled: ScheduledJob | None
    scheduled_by: str | None
    last_pass: PassRecord | None
    last_error: PassRecord | None
    tracked_orders: int
    fills: dict[str, Decimal] = dataclasses.field(default_factory=dict)
    paused_by: str | None = None
    paused_why: str | None = None


class StatusState:
    """The status methods of ``StateStore`` (which supplies ``_db``)."""

    _db: Database

    def job_statuses(self, also: Iterable[str] = (), now: datetime | None = None) -> list[JobStatus]:
        """One row per job any table knows (passes, pause switch, lease, tracked orders, a daemon's schedule),
        plus the names in ``also``, sorted by name."""
        now_ms = to_ms(now or datetime.now(UTC))
        with self._db.tx(write=False) as conn:
            paused = set(conn.execute(select(t.job_flags.c.job).where(t.job_flags.c.paused)).scalars())
            names = set(also) | set(conn.execute(select(t.job_flags.c.job)).scalars())
            lease_c = t.leases.c
            holders: dict[str, str | None] = {
                r.job: r.holder if r.expires_at_ms > now_ms else None
                for r in conn.execute(select(lease_c.job, lease_c.holder, lease_c.expires_at_ms))
            }
            counts = select(t.tracked_orders.c.job, func.count().label("n")).group_by(t.tracked_orders.c.job)
            tracked: dict[str, int] = {r.job: int(r.n) for r in conn.execute(counts)}
            scheduled = _scheduled(conn)
            last = _latest_passes(conn, None)
            errors = _latest_passes(conn, lambda c: c.error.is_not(None))
            filled = fill_totals(conn)
            guards = guard_pauses(conn)
        names |= set(holders) | set(tracked) | set(scheduled) | set(last)
        return [
            JobStatus(
                job=name,
                paused=name in paused,
                holder=holders.get(name),
                scheduled=scheduled[name][0] if name in scheduled else None,
                scheduled_by=scheduled[name][1] if name in scheduled else None,
                last_pass=last.get(name),
                last_error=errors.get(name),
                tracked_orders=tracked.get(name, 0),
                fills=filled.get(name, {}),
                paused_by=guards[name][0] if name in paused and name in guards else None,
                paused_why=guards[name][1] if name in paused and name in guards else None,
            )
            for name in sorted(names)
        ]

    def register_jobs(self, holder: str, jobs: Sequence[ScheduledJob], now: datetime | None = None) -> None:
        """Note that daemon ``holder`` now schedules ``jobs`` (replacing any earlier note about them)."""
        if not jobs:
            return
        now_ms = to_ms(now or datetime.now(UTC))
        rows = [
            {
                "job": j.job,
                "holder": holder,
                "source": j.source,
                "every_ms": None if j.every_seconds is None else int(j.every_seconds * 1000),
                "cron": j.cron,
                "paused_in_file": j.paused,
                "registered_at_ms": now_ms,
            }
            for j in jobs
        ]
        names = [j.job for j in jobs]
        with self._db.tx(write=True) as conn:
            for start in range(0, len(names), _CHUNK):
                conn.execute(delete(t.daemon_jobs).where(t.daemon_jobs.c.job.in_(names[start : start + _CHUNK])))
            conn.execute(t.daemon_jobs.insert(), rows)

    def unregister_jobs(self, holder: str, names: Iterable[str] | None = None) -> None:
        """Forget what daemon ``holder`` noted about ``names`` (every job of it when None)."""
        c = t.daemon_jobs.c
        with self._db.tx(write=True) as conn:
            if names is None:
                conn.execute(delete(t.daemon_jobs).where(c.holder == holder))
                return
            wanted = sorted(set(names))
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                conn.execute(delete(t.daemon_jobs).where(c.holder == holder, c.job.in_(chunk)))

    def record_reload_failure(
        self, file: str, problem: str, *, holder: str, job: str | None = None, now: datetime | None = None
    ) -> None:
        """Note that ``file``'s latest version was refused (``problem``: its first problem line)."""
        now_ms = to_ms(now or datetime.now(UTC))
        c = t.reload_failures.c
        stmt = self._db.upsert(t.reload_failures).values(
            file=file,
            job=job,
            holder=holder,
            problem=problem,
            times=1,
            first_failed_at_ms=now_ms,
            last_failed_at_ms=now_ms,
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.file],
            set_={
                "job": func.coalesce(stmt.excluded.job, c.job),
                "holder": stmt.excluded.holder,
                "problem": stmt.excluded.problem,
                "times": c.times + 1,
                "last_failed_at_ms": stmt.excluded.last_failed_at_ms,
            },
        )
        with self._db.tx(write=True) as conn:
            conn.execute(stmt)

    def clear_reload_failures(self, files: Iterable[str]) -> None:
        """Forget the failures of ``files`` (they loaded, or are no longer watched)."""
        wanted = sorted(set(files))
        with self._db.tx(write=True) as conn:
            for start in range(0, len(wanted), _CHUNK):
                chunk = wanted[start : start + _CHUNK]
                conn.execute(delete(t.reload_failures).where(t.reload_failures.c.file.in_(chunk)))

    def reload_failures(self) -> list[ReloadFailure]:
        """Every job file a live daemon refused and that has not loaded since, by file name (a refusal noted by a
        process of this host that no longer runs is left out: nothing runs that file now)."""
        with self._db.tx(write=False) as conn:
            rows = conn.execute(select(t.reload_failures).order_by(t.reload_failures.c.file)).all()
        return [
            ReloadFailure(
                file=r.file,
                job=r.job,
                holder=r.holder,
                problem=r.problem,
                times=int(r.times),
                first_failed_at=from_ms(r.first_failed_at_ms),
                last_failed_at=from_ms(r.last_failed_at_ms),
            )
            for r in rows
            if not holder_is_dead(r.holder)
        ]


def _scheduled(conn: Connection) -> dict[str, tuple[ScheduledJob, str]]:
    """Jobs scheduled by daemons still alive (a note left by a process of this host that died is ignored)."""
    found: dict[str, tuple[ScheduledJob, str]] = {}
    for r in conn.execute(select(t.daemon_jobs)):
        if holder_is_dead(r.holder):
            continue
        every = None if r.every_ms is None else r.every_ms / 1000
        found[r.job] = (ScheduledJob(r.job, r.source, every, r.cron, bool(r.paused_in_file)), r.holder)
    return found


def _latest_passes(conn: Connection, condition: Any) -> dict[str, PassRecord]:
    """Each job's latest pass (meeting ``condition`` when given): one index seek per job, never a table scan."""
    p, later = t.passes.c, t.passes.alias("later")
    jobs = select(p.job).distinct().subquery()
    newest = select(func.max(later.c.id)).where(later.c.job == jobs.c.job)
    if condition is not None:
        newest = newest.where(condition(later.c))
    ids = select(newest.scalar_subquery()).select_from(jobs)
    rows = conn.execute(select(t.passes).where(p.id.in_(ids))).all()
    return {r.job: _record(r) for r in rows}


def _counts(text: str | None) -> dict[str, int]:
    return {str(k): int(v) for k, v in (load_json(text) or {}).items()}


def _record(row: Any) -> PassRecord:
    return PassRecord(
        id=row.id,
        job=row.job,
        mode=row.mode,
        started_at=cell("passes", "started_at_ms", row.started_at_ms, stored_ms),
        duration_ms=row.duration_ms,
        result=row.result,
        summary=cell("passes", "summary", row.summary, _counts),
        warnings=cell("passes", "warnings", row.warnings, lambda text: tuple(load_json(text) or ())),
        error=row.error,
        reference_price=row.reference_price,
        fingerprint=row.fingerprint,
        batch_count=0,
        **pass_origin(row),
    )
