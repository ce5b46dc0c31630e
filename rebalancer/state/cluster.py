"""The cluster's part of the state store: members and their liveness, the cluster's jobs and their versions, the
dispatch bookkeeping (when each job is due, its failure backoff, who ran it last) and shared rate-limit budgets.

``StateStore`` inherits these methods. Only ``run --cluster`` writes them (on PostgreSQL); ``status`` reads them.
Every check-then-write is one statement, or one transaction under a PostgreSQL advisory lock.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    RowMapping,
    String,
    bindparam,
    case,
    column,
    delete,
    func,
    select,
    text,
    update,
    values,
)

from rebalancer.state import schema as t
from rebalancer.state.db import Database
from rebalancer.state.hot import HotStatement
from rebalancer.state.leases import acquire_params, acquire_statement, acquire_when, release_statement
from rebalancer.state.records import from_ms, to_ms
from rebalancer.vocab import PassResult


def _now_ms(now: datetime | None) -> int:
    return to_ms(now or datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class MemberRecord:
    """One member of the cluster as the state store knows it."""

    member: str
    host: str
    pid: int
    concurrency: int
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    passes: int
    fenced: int

    def alive(self, now: datetime, stale_after_seconds: float) -> bool:
        """True when the member has not stopped and its last heartbeat is recent enough."""
        return self.stopped_at is None and (now - self.heartbeat_at).total_seconds() <= stale_after_seconds


@dataclass(frozen=True, slots=True)
class ClusterJob:
    """One job of the cluster: the version members must have, its schedule (JSON text) and its bookkeeping."""

    job: str
    fingerprint: str
    defined_by: str
    schedule: str
    next_due_ms: int
    failures: int
    not_before_ms: int
    last_member: str | None
    last_pass_at: datetime | None
    last_result: str | None


class PassStart(NamedTuple):
    """What ``begin_cluster_pass`` found: the job's cluster record, whether it is paused, the pass's lease epoch."""

    cluster: ClusterJob | None
    paused: bool
    epoch: int | None


class RateTokens(NamedTuple):
    """What ``take_rate_tokens`` gave: how many tokens, else the seconds to wait; until when the others may be sent."""

    taken: int
    wait: float
    until_ms: int


class ClusterState:
    """The cluster methods of ``StateStore`` (which supplies ``_db``)."""

    _db: Database

    # Members.

    def register_member(self, member: str, host: str, pid: int, concurrency: int, now: datetime | None = None) -> None:
        """Record that ``member`` runs (again), alive as of now."""
        now_ms = _now_ms(now)
        values = {
            "member": member,
            "host": host,
            "pid": pid,
            "concurrency": concurrency,
            "started_at_ms": now_ms,
            "heartbeat_at_ms": now_ms,
            "stopped_at_ms": None,
            "passes": 0,
            "fenced": 0,
        }
        stmt = self._db.upsert(t.cluster_members).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.cluster_members.c.member],
            set_={k: stmt.excluded[k] for k in values if k != "member"},
        )
        with self._db.tx(write=True) as conn:
            conn.execute(stmt)

    def member_beat(
        self, member: str, leases: Sequence[tuple[str, str, int, float]] = (), now: datetime | None = None
    ) -> set[str]:
        """Note that ``member`` is alive now and renew the leases of its running passes, in one statement: each
        ``(job, holder, epoch, ttl_seconds)`` is extended to its ttl from now if that holder still holds it under
        that epoch, unexpired (as ``renew_lease``). Returns the holders renewed.

        One statement a beat, however many passes run, where a renewal each was one transaction each."""
        now_ms = _now_ms(now)
        beat = update(t.cluster_members).where(t.cluster_members.c.member == member).values(heartbeat_at_ms=now_ms)
        with self._db.tx(write=True) as conn:
            if not leases:
                conn.execute(beat)
                return set()
            return {row.holder for row in conn.execute(_renew_passes(beat, leases, now_ms))}

    def member_stopped(self, member: str, now: datetime | None = None) -> None:
        """Note that ``member`` stopped cleanly, and forget which job versions it had."""
        c = t.cluster_members.c
        with self._db.tx(write=True) as conn:
            conn.execute(update(t.cluster_members).where(c.member == member).values(stopped_at_ms=_now_ms(now)))
            conn.execute(delete(t.cluster_member_jobs).where(t.cluster_member_jobs.c.member == member))

    def members(self) -> list[MemberRecord]:
        """Every member the store has seen, most recently started first."""
        c = t.cluster_members.c
        with self._db.tx(write=False) as conn:
            rows = conn.execute(select(t.cluster_members).order_by(c.started_at_ms.desc(), c.member)).all()
        return [
            MemberRecord(
                member=r.member,
                host=r.host,
                pid=r.pid,
                concurrency=r.concurrency,
                started_at=from_ms(r.started_at_ms),
                heartbeat_at=from_ms(r.heartbeat_at_ms),
                stopped_at=None if r.stopped_at_ms is None else from_ms(r.stopped_at_ms),
                passes=int(r.passes),
                fenced=int(r.fenced),
            )
            for r in rows
        ]

    # Jobs and their versions.

    def define_cluster_job(
        self, job: str, fingerprint: str, schedule: str, member: str, *, replace: bool, now: datetime | None = None
    ) -> str:
        """Offer ``member``'s version of ``job``; returns the cluster's version afterwards.

        The first member to offer a job defines it. A later offer replaces the version only with ``replace`` (a
        member that *reloaded* an edited file): a member started with an old file never takes a job back.
        """
        now_ms = _now_ms(now)
        c = t.cluster_jobs.c
        values = {
            "job": job,
            "fingerprint": fingerprint,
            "defined_by": member,
            "defined_at_ms": now_ms,
            "schedule": schedule,
            "next_due_ms": now_ms,
            "failures": 0,
            "not_before_ms": 0,
        }
        stmt = self._db.upsert(t.cluster_jobs).values(**values)
        if replace:
            stmt = stmt.on_conflict_do_update(
                index_elements=[c.job],
                set_={
                    k: stmt.excluded[k]
                    for k in (
                        "fingerprint",
                        "defined_by",
                        "defined_at_ms",
                        "schedule",
                        "next_due_ms",
                        "failures",
                        "not_before_ms",
                    )
                },
                where=c.fingerprint != stmt.excluded.fingerprint,
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=[c.job])
        mine = self._db.upsert(t.cluster_member_jobs).values(
            member=member, job=job, fingerprint=fingerprint, updated_at_ms=now_ms
        )
        mine = mine.on_conflict_do_update(
            index_elements=[t.cluster_member_jobs.c.member, t.cluster_member_jobs.c.job],
            set_={"fingerprint": mine.excluded.fingerprint, "updated_at_ms": mine.excluded.updated_at_ms},
        )
        with self._db.tx(write=True) as conn:
            conn.execute(stmt)
            conn.execute(mine)
            return str(conn.execute(select(c.fingerprint).where(c.job == job)).scalar_one())

    def forget_member_jobs(self, member: str, keep: Iterable[str]) -> None:
        """Forget the versions ``member`` recorded of jobs it no longer loads."""
        c = t.cluster_member_jobs.c
        kept = sorted(set(keep))
        with self._db.tx(write=True) as conn:
            conn.execute(delete(t.cluster_member_jobs).where(c.member == member, c.job.not_in(kept)))

    def member_job_versions(self) -> dict[tuple[str, str], str]:
        """(member, job) → the fingerprint that member loaded."""
        with self._db.tx(write=False) as conn:
            rows = conn.execute(select(t.cluster_member_jobs)).all()
        return {(r.member, r.job): r.fingerprint for r in rows}

    def cluster_jobs(self) -> list[ClusterJob]:
        """Every job of the cluster, by name."""
        with self._db.tx(write=False) as conn:
            rows = conn.execute(select(t.cluster_jobs).order_by(t.cluster_jobs.c.job)).all()
        return [_cluster_job(r._mapping) for r in rows]

    def cluster_job(self, job: str) -> ClusterJob | None:
        """One job of the cluster, or None."""
        with self._db.tx(write=False) as conn:
            row = conn.execute(select(t.cluster_jobs).where(t.cluster_jobs.c.job == job)).first()
        return None if row is None else _cluster_job(row._mapping)

    def begin_cluster_pass(
        self, job: str, fingerprint: str, holder: str, ttl_seconds: float, now: datetime | None = None
    ) -> PassStart:
        """A cluster pass's start: the cluster's record of ``job`` and whether it is paused, and, when
        ``fingerprint`` is the cluster's version and the job is not paused, its lease for ``holder`` (the epoch;
        None while another holds it). See ``acquire_lease`` for the lease's rules.

        On PostgreSQL one statement, straight to the driver (``rebalancer.state.hot``: a member runs it on every
        pass): the read, with the lease's conditional upsert as a data-modifying CTE made only when the version
        matches and the job is not paused, all in one snapshot. On SQLite (tests), the read then the upsert in one
        transaction."""
        if self._db.dialect == "postgresql":
            now_ms = _now_ms(now)
            params = {
                "start_job": job,
                "start_fingerprint": fingerprint,
                "lease_holder": holder,
                "lease_now_ms": now_ms,
                "lease_expires_ms": now_ms + int(ttl_seconds * 1000),
            }
            with self._db.driver() as pg:
                row = pg.named(_hot().pass_start, params)
            if row is None:
                return PassStart(None, False, None)
            epoch = row["lease_epoch"]
            return PassStart(_cluster_job(row), bool(row["paused"]), None if epoch is None else int(epoch))
        with self._db.tx(write=True) as conn:
            found = conn.execute(_pass_start_query(), {"start_job": job}).first()
            if found is None:
                return PassStart(None, False, None)
            cluster, is_paused = _cluster_job(found._mapping), bool(found.paused)
            if cluster.fingerprint != fingerprint or is_paused:
                return PassStart(cluster, is_paused, None)
            params = acquire_params(job, holder, ttl_seconds, _now_ms(now))
            epoch = conn.execute(acquire_statement(self._db.dialect), params).scalar()
            return PassStart(cluster, False, None if epoch is None else int(epoch))

    # Dispatch.

    def claim_due_cluster_jobs(
        self, stale_after_seconds: float, hold_seconds: float, now: datetime | None = None
    ) -> list[ClusterJob]:
        """The jobs due now, not paused, not backing off, that a live member has loaded at the cluster's version
        (with the due times they had), claimed by the caller: their due time moves ``hold_seconds`` on in the same
        transaction.

        Every member dispatches; a member claiming at the same moment waits for this one's row locks
        (``FOR UPDATE`` on PostgreSQL; SQLite has one writer) and then finds the jobs no longer due, so a pass is
        handed out once. The caller moves each due time to the job's next fire time (``set_next_due``) once its pass
        is queued; a caller that dies first leaves the jobs due again after the hold.
        """
        now_ms = _now_ms(now)
        params = {"due_now_ms": now_ms, "due_alive_ms": now_ms - int(stale_after_seconds * 1000)}
        with self._db.tx(write=True) as conn:
            due = [_cluster_job(r._mapping) for r in conn.execute(_claim_query(), params).all()]
            if due:
                c = t.cluster_jobs.c
                claimed = update(t.cluster_jobs).where(c.job.in_([job.job for job in due]))
                conn.execute(claimed.values(next_due_ms=now_ms + int(hold_seconds * 1000)))
        return due

    def set_next_due(self, due: dict[str, int]) -> None:
        """Set each job's next due time (epoch milliseconds); on PostgreSQL in one statement, however many jobs (the
        dispatcher moves every job it sent, every second)."""
        if not due:
            return
        c = t.cluster_jobs.c
        if self._db.dialect == "postgresql":
            job_type = t.cluster_jobs.c.job.type  # redacted, as the names it is compared with were stored
            moved = values(column("job", job_type), column("due_ms", BigInteger), name="moved").data(list(due.items()))
            stmt = update(t.cluster_jobs).where(c.job == moved.c.job).values(next_due_ms=moved.c.due_ms)
            with self._db.tx(write=True) as conn:
                conn.execute(stmt)
            return
        stmt = update(t.cluster_jobs).where(c.job == bindparam("due_job")).values(next_due_ms=bindparam("due_ms"))
        with self._db.tx(write=True) as conn:
            conn.execute(stmt, [{"due_job": j, "due_ms": d} for j, d in due.items()])

    def record_cluster_pass(
        self,
        job: str,
        member: str,
        result: str,
        *,
        failed: bool,
        backoff_seconds: float = 0.0,
        started_at: datetime | None = None,
        lease_holder: str | None = None,
        now: datetime | None = None,
    ) -> int:
        """Note which member ran ``job`` (its pass began at ``started_at``) and how it ended; count failures toward
        its backoff (returns the count). With ``lease_holder``, that holder's lease of the job is let go in the same
        transaction."""
        now_ms = _now_ms(now)
        params = {
            "rec_job": job,
            "rec_member": member,
            "rec_result": result,
            "rec_began_ms": now_ms if started_at is None else to_ms(started_at),
            "rec_failed": failed,
            "rec_not_before_ms": now_ms + int(backoff_seconds * 1000) if failed else 0,
            "rec_fenced": 1 if result == PassResult.FENCED else 0,
            "rec_holder": lease_holder or "",  # no holder is named "": then no lease is touched
        }
        if self._db.dialect == "postgresql":
            with self._db.driver() as pg:
                failures = pg.first(_hot().pass_record, params)
            return int(failures[0] or 0) if failures is not None else 0
        with self._db.tx(write=True) as conn:
            return int(conn.execute(_pass_record_statement(), params).scalar() or 0)

    # Shared rate limits.

    def take_rate_tokens(
        self,
        bucket: str,
        count: int,
        period_seconds: float,
        *,
        most: int = 1,
        hold_seconds: float = 0.0,
        give_back: tuple[int, int] | None = None,
        now: datetime | None = None,
    ) -> RateTokens:
        """Take up to ``most`` request tokens from ``bucket`` (at most ``count`` in any ``period_seconds``).

        The first token is counted now (the caller sends it at once); the others are counted at the end of their
        hold (``until_ms``, ``hold_seconds`` from now), the latest time the caller may send them, so every window
        that holds their sends holds them in the count, whenever in the hold they are sent. A block never takes
        more than half of what is free (but at least one token), so a busy bucket is not held by one taker.
        ``give_back`` is ``(until_ms, n)``: n tokens of an earlier block that were never sent, returned first.
        One transaction, serialised per bucket (an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite),
        its clock read once the bucket is held, so takers never overdraw; with no token, ``wait`` is the seconds
        until the window has room. On PostgreSQL it is two round trips: ``BEGIN`` and the lock, then everything else
        in one statement and ``COMMIT``.
        """
        period_ms = int(period_seconds * 1000)
        g = t.rate_grants.c
        if self._db.dialect == "postgresql":
            with self._db.driver() as pg:
                pg.script(_hot().bucket_lock, {"bucket": bucket})  # BEGIN and the lock: the clock is read once held
                now_ms = _now_ms(now)
                until_ms = now_ms + int(hold_seconds * 1000)
                back_at, back_n = give_back if give_back is not None and give_back[1] > 0 else (0, 0)
                params = {
                    "tok_bucket": bucket,
                    "tok_cut": now_ms - period_ms,
                    "tok_count": count,
                    "tok_most": most if until_ms > now_ms else 1,
                    "tok_now": now_ms,
                    "tok_until": until_ms,
                    "back_at": back_at,
                    "back_n": back_n,
                }
                tally = pg.script(_hot().take_tokens, params)  # the block, then COMMIT
            assert tally is not None  # one row: the tally's aggregate
            used, oldest, taken = tally
            if used >= count:
                return RateTokens(0, max(0.001, (oldest + period_ms - now_ms) / 1000), until_ms)
            return RateTokens(int(taken), 0.0, until_ms)
        with self._db.tx(write=True) as conn:
            now_ms = _now_ms(now)
            until_ms = now_ms + int(hold_seconds * 1000)
            if give_back is not None and give_back[1] > 0:
                unsent = select(g.id).where(g.bucket == bucket, g.at_ms == give_back[0]).limit(give_back[1])
                conn.execute(delete(t.rate_grants).where(g.id.in_(unsent.scalar_subquery())))
            window = {"tok_bucket": bucket, "tok_cut": now_ms - period_ms}
            conn.execute(_expired_tokens(), window)
            used, oldest = conn.execute(_token_tally(), window).one()
            if used >= count:
                return RateTokens(0, max(0.001, (oldest + period_ms - now_ms) / 1000), until_ms)
            stamps = [now_ms]
            if until_ms > now_ms:
                stamps += [until_ms] * (min(most, (count - used) // 2) - 1)
            conn.execute(t.rate_grants.insert(), [{"bucket": bucket, "at_ms": at} for at in stamps])
            return RateTokens(len(stamps), 0.0, until_ms)


# take_rate_tokens's bucket lock on PostgreSQL, held to the end of its transaction.
_BUCKET_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:bucket))").bindparams(bindparam("bucket", type_=String))

# take_rate_tokens's one statement on PostgreSQL, once the bucket is locked: the given-back tokens and the expired
# ones deleted, the window's tokens counted (data-modifying CTEs share one snapshot, so the given-back ones are
# left out of the count by id), and, when there is room, the block inserted: its first token now, the others at
# the end of the hold, never more than half of what is free, at least one.
_TAKE_TOKENS = text(
    f"""
    WITH back AS (
        DELETE FROM {t.rate_grants.name} WHERE id IN (
            SELECT id FROM {t.rate_grants.name} WHERE bucket = :tok_bucket AND at_ms = :back_at LIMIT :back_n
        ) RETURNING id
    ), expired AS (
        DELETE FROM {t.rate_grants.name} WHERE bucket = :tok_bucket AND at_ms <= :tok_cut RETURNING id
    ), tally AS (
        SELECT count(*) AS used, min(at_ms) AS oldest FROM {t.rate_grants.name}
        WHERE bucket = :tok_bucket AND at_ms > :tok_cut AND id NOT IN (SELECT id FROM back)
    ), block AS (
        INSERT INTO {t.rate_grants.name} (bucket, at_ms)
        SELECT :tok_bucket, CASE WHEN i = 1 THEN :tok_now ELSE :tok_until END
        FROM tally, generate_series(1, GREATEST(1, LEAST(:tok_most, (:tok_count - tally.used) / 2))) AS i
        WHERE tally.used < :tok_count
        RETURNING id
    )
    SELECT tally.used, tally.oldest, (SELECT count(*) FROM block) AS taken FROM tally
    """
).bindparams(
    bindparam("tok_bucket", type_=String),
    *(bindparam(n, type_=BigInteger) for n in ("tok_cut", "tok_count", "tok_most", "tok_now", "tok_until", "back_at")),
    bindparam("back_n", type_=BigInteger),
)


def _expired_tokens() -> Any:
    """The DELETE of a bucket's tokens that left the window."""
    g = t.rate_grants.c
    return delete(t.rate_grants).where(g.bucket == bindparam("tok_bucket"), g.at_ms <= bindparam("tok_cut"))


@functools.cache
def _token_tally() -> Any:
    """The count of a bucket's tokens in the window and the oldest one (built once; SQLite)."""
    g = t.rate_grants.c
    bucket, cut = bindparam("tok_bucket", type_=String), bindparam("tok_cut", type_=BigInteger)
    return select(func.count(), func.min(g.at_ms)).where(g.bucket == bucket, g.at_ms > cut)


def _renew_passes(beat: Any, leases: Sequence[tuple[str, str, int, float]], now_ms: int) -> Any:
    """``member_beat``'s statement: the leases renewed from a VALUES list, the heartbeat riding along as a
    PostgreSQL data-modifying CTE."""
    c = t.leases.c
    wanted = values(
        column("job", String),
        column("holder", String),
        column("epoch", BigInteger),
        column("until_ms", BigInteger),
        name="renewal",
    ).data([(job, holder, epoch, now_ms + int(ttl * 1000)) for job, holder, epoch, ttl in leases])
    r = wanted.c
    return (
        update(t.leases)
        .where(c.job == r.job, c.holder == r.holder, c.epoch == r.epoch, c.expires_at_ms > now_ms)
        .values(expires_at_ms=r.until_ms)
        .returning(c.holder)
        .add_cte(beat.returning(t.cluster_members.c.member).cte("beat"))
    )


@functools.cache
def _due_query() -> Any:
    """The jobs due now that a live member runs (built once: every member dispatches every second)."""
    c, mj, m = t.cluster_jobs.c, t.cluster_member_jobs.c, t.cluster_members.c
    now_ms = bindparam("due_now_ms", type_=BigInteger)
    runnable = (
        select(mj.job)
        .join(t.cluster_members, m.member == mj.member)
        .where(
            mj.job == c.job,
            mj.fingerprint == c.fingerprint,
            m.stopped_at_ms.is_(None),
            m.heartbeat_at_ms >= bindparam("due_alive_ms", type_=BigInteger),
        )
        .exists()
    )
    paused = select(t.job_flags.c.job).where(t.job_flags.c.job == c.job, t.job_flags.c.paused).exists()
    return (
        select(t.cluster_jobs)
        .where(c.next_due_ms <= now_ms, c.not_before_ms <= now_ms, runnable, ~paused)
        .order_by(c.next_due_ms, c.job)
    )


@functools.cache
def _claim_query() -> Any:
    """``claim_due_cluster_jobs``'s read: the due query, its rows locked until the claim commits."""
    return _due_query().with_for_update()


@functools.cache
def _pass_start_query() -> Any:
    """``begin_cluster_pass``'s read: the job's cluster row and its pause switch (built once)."""
    c, flags, job = t.cluster_jobs.c, t.job_flags.c, bindparam("start_job", type_=String)
    paused = select(flags.paused).where(flags.job == job).scalar_subquery()
    return select(t.cluster_jobs, paused.label("paused")).where(c.job == job)


@functools.cache
def _pass_start_statement() -> Any:
    """``begin_cluster_pass``'s one statement on PostgreSQL (built once): the job's cluster row, its pause switch,
    and the epoch of the lease taken for the pass (NULL when none was: another version, paused, or held)."""
    c, flags = t.cluster_jobs.c, t.job_flags.c
    job = bindparam("start_job", type_=String)
    paused = select(flags.paused).where(flags.job == job).scalar_subquery()
    runnable = (
        select(c.job).where(c.job == job, c.fingerprint == bindparam("start_fingerprint", type_=String)).exists()
        & ~select(flags.job).where(flags.job == job, flags.paused).exists()
    )
    taken = acquire_when(
        runnable,
        job,
        bindparam("lease_holder", type_=String),
        bindparam("lease_now_ms", type_=BigInteger),
        bindparam("lease_expires_ms", type_=BigInteger),
    ).cte("taken")
    epoch = select(taken.c.epoch).scalar_subquery()
    return select(t.cluster_jobs, paused.label("paused"), epoch.label("lease_epoch")).where(c.job == job).add_cte(taken)


@functools.cache
def _pass_record_statement() -> Any:
    """``record_cluster_pass``'s one statement (built once): the job's bookkeeping, with the member's counts and the
    lease's release riding along as PostgreSQL data-modifying CTEs."""
    c, m = t.cluster_jobs.c, t.cluster_members.c
    counted = (
        update(t.cluster_members)
        .where(m.member == bindparam("rec_member"))
        .values(passes=m.passes + 1, fenced=m.fenced + bindparam("rec_fenced"))
        .returning(m.member)
    )
    released = release_statement(bindparam("rec_job"), bindparam("rec_holder")).returning(t.leases.c.job)
    failed = bindparam("rec_failed", type_=Boolean)
    return (
        update(t.cluster_jobs)
        .where(c.job == bindparam("rec_job"))
        .values(
            last_member=bindparam("rec_member"),
            last_pass_at_ms=bindparam("rec_began_ms"),
            last_result=bindparam("rec_result"),
            failures=case((failed, c.failures + 1), else_=0),
            not_before_ms=bindparam("rec_not_before_ms"),
        )
        .returning(c.failures)
        .add_cte(counted.cte("counted"))
        .add_cte(released.cte("released"))
    )


def _cluster_job(row: Mapping[str, Any] | RowMapping) -> ClusterJob:
    return ClusterJob(
        job=row["job"],
        fingerprint=row["fingerprint"],
        defined_by=row["defined_by"],
        schedule=row["schedule"],
        next_due_ms=int(row["next_due_ms"]),
        failures=int(row["failures"]),
        not_before_ms=int(row["not_before_ms"]),
        last_member=row["last_member"],
        last_pass_at=None if row["last_pass_at_ms"] is None else from_ms(row["last_pass_at_ms"]),
        last_result=row["last_result"],
    )


class _HotStatements(NamedTuple):
    """A member's per-pass statements, compiled for the driver (``rebalancer.state.hot``)."""

    pass_start: HotStatement
    pass_record: HotStatement
    bucket_lock: HotStatement
    take_tokens: HotStatement


@functools.cache
def _hot() -> _HotStatements:
    """The member's per-pass statements, compiled once, the first time a member needs them."""
    return _HotStatements(
        pass_start=HotStatement(_pass_start_statement()),
        pass_record=HotStatement(_pass_record_statement()),
        bucket_lock=HotStatement(_BUCKET_LOCK, before="BEGIN"),
        take_tokens=HotStatement(_TAKE_TOKENS, after="COMMIT"),
    )
