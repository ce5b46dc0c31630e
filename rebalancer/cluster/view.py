"""What ``rebalancer status`` and the status pages show of a cluster: per job its version, the member that ran it
last and whether that member is alive, the members holding another version of its file; per member its liveness and
pass counts. A member silent for ``CLUSTER_MEMBER_GONE_SECONDS`` is gone: it is left out, with its job versions.

Read from the state store only (``StateStore.cluster_jobs``, ``members``, ``member_job_versions``); nothing here
imports the job queue, so ``status`` stays light.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rebalancer.defaults import CLUSTER_MEMBER_GONE_SECONDS, CLUSTER_MEMBER_STALE_SECONDS
from rebalancer.state.cluster import ClusterJob, MemberRecord
from rebalancer.state.records import from_ms

Row = dict[str, Any]


class ClusterView:
    """A cluster as the state store knows it: its jobs, its members, and each member's version of each job."""

    def __init__(
        self, jobs: Sequence[ClusterJob], members: Sequence[MemberRecord], versions: dict[tuple[str, str], str]
    ) -> None:
        self.jobs = list(jobs)
        self.members = list(members)
        self.versions = versions
        self.by_job = {job.job: job for job in jobs}

    @classmethod
    def read(cls, store: Any, now: datetime | None = None) -> ClusterView:
        """The view of the cluster on ``store`` as of ``now`` (empty for a store no member ever used), without the
        members gone for ``CLUSTER_MEMBER_GONE_SECONDS`` and the job versions they had."""
        moment = now or datetime.now(UTC)
        members = [m for m in store.members() if not gone(m, moment)]
        around = {m.member for m in members}
        versions = {k: v for k, v in store.member_job_versions().items() if k[0] in around}
        return cls(store.cluster_jobs(), members, versions)

    def job_names(self) -> list[str]:
        """Every job of the cluster, by name."""
        return [job.job for job in self.jobs]

    def alive(self, member: str | None, now: datetime) -> bool | None:
        """Whether ``member`` is alive now (None when it is not a member)."""
        record = next((m for m in self.members if m.member == member), None)
        return None if record is None else record.alive(now, CLUSTER_MEMBER_STALE_SECONDS)

    def next_due(self, name: str) -> datetime | None:
        """When the dispatcher will next enqueue a pass of ``name`` (None outside the cluster)."""
        job = self.by_job.get(name)
        return None if job is None else from_ms(job.next_due_ms)

    def job_row(self, name: str, now: datetime) -> Row | None:
        """The ``cluster`` object of one job's status row, or None for a job outside any cluster."""
        job = self.by_job.get(name)
        if job is None:
            return None
        differing = sorted(m for (m, j), v in self.versions.items() if j == name and v != job.fingerprint)
        return {
            "version": job.fingerprint[:12],
            "defined_by": job.defined_by,
            "last_member": job.last_member,
            "last_member_alive": self.alive(job.last_member, now),
            "last_result": job.last_result,
            "members_with_other_version": differing,
        }

    def member_rows(self, now: datetime) -> list[Row]:
        """One JSON-ready row per member: liveness, last heartbeat, passes run and fenced since it started."""
        return [
            {
                "member": m.member,
                "alive": self.alive(m.member, now),
                "stopped": m.stopped_at is not None,
                "heartbeat": _iso(m.heartbeat_at),
                "started": _iso(m.started_at),
                "concurrency": m.concurrency,
                "passes": m.passes,
                "fenced": m.fenced,
            }
            for m in self.members
        ]


def gone(member: MemberRecord, now: datetime) -> bool:
    """True when ``member`` gave no sign of life (heartbeat or stop) for ``CLUSTER_MEMBER_GONE_SECONDS``."""
    last = max(member.heartbeat_at, member.stopped_at or member.heartbeat_at)
    return (now - last).total_seconds() > CLUSTER_MEMBER_GONE_SECONDS


def members_table(rows: Sequence[Row]) -> str:
    """The member rows as an aligned table."""
    header = ("MEMBER", "STATE", "HEARTBEAT (UTC)", "CONCURRENCY", "PASSES", "FENCED")
    table = [header] + [
        (
            row["member"],
            "alive" if row["alive"] else "stopped" if row["stopped"] else "unresponsive",
            row["heartbeat"].replace("T", " ").removesuffix("+00:00"),
            str(row["concurrency"]),
            str(row["passes"]),
            str(row["fenced"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")
