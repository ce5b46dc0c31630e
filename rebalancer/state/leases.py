"""Leases in the state store: which process reconciles a job right now, until when.

``StateStore`` inherits these methods. A holder is named ``HOST:PID:TAG``; a lease expires by itself, and a lease
whose holder was a process on this host that no longer exists (killed, crashed) can be taken over at once.
"""

from __future__ import annotations

import functools
import os
import socket
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, bindparam, case, literal, select, update

from rebalancer.errors import LeaseLost
from rebalancer.state import schema as t
from rebalancer.state.db import Database, upsert_for
from rebalancer.state.hot import HotStatement
from rebalancer.state.records import cell, from_ms, stored_ms, to_ms


def _now() -> datetime:
    return datetime.now(UTC)


def holder_name(tag: str) -> str:
    """A lease holder name for this process: ``HOST:PID:TAG``."""
    return f"{socket.gethostname()}:{os.getpid()}:{tag}"


def holder_is_dead(holder: str) -> bool:
    """True when ``holder`` names a process of this host that no longer runs (never for other hosts)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


_CURRENT = select(t.leases.c.job).where(  # the fencing check before every write: built once
    t.leases.c.job == bindparam("job"),
    t.leases.c.holder == bindparam("holder"),
    t.leases.c.epoch == bindparam("epoch"),
    t.leases.c.expires_at_ms > bindparam("until_ms"),
)


def lease_current_in(
    conn: Connection, job: str, holder: str, epoch: int, margin_seconds: float, now: datetime | None = None
) -> bool:
    """``lease_is_current`` on ``conn``, inside a transaction of the caller's (the write-ahead's)."""
    return conn.execute(_CURRENT, _current_params(job, holder, epoch, margin_seconds, now)).first() is not None


def _current_params(job: str, holder: str, epoch: int, margin_seconds: float, now: datetime | None) -> dict[str, Any]:
    until_ms = to_ms(now or _now()) + int(margin_seconds * 1000)
    return {"job": job, "holder": holder, "epoch": epoch, "until_ms": until_ms}


@functools.cache
def _current_hot() -> HotStatement:
    """The fencing read compiled for the driver (``rebalancer.state.hot``): a member runs it before every write."""
    return HotStatement(_CURRENT)


def lease_lost(job: str, holder: str, epoch: int, margin_seconds: float) -> LeaseLost:
    """The error of a pass whose lease is no longer current, or too short, when it is about to write."""
    return LeaseLost(
        f"job {job}: lease epoch {epoch} of {holder} is no longer current "
        f"or has less than {margin_seconds:g}s left; nothing sent"
    )


class LeaseState:
    """The lease methods of ``StateStore`` (which supplies ``_db``)."""

    _db: Database

    def acquire_lease(self, job: str, holder: str, ttl_seconds: float, now: datetime | None = None) -> int | None:
        """Take or renew the lease on ``job`` for ``ttl_seconds``; its epoch if ``holder`` now holds it, else None.

        Succeeds when no one holds it, when the last holder let it expire, or when ``holder`` already holds it
        (which renews it and keeps the epoch). Any other acquisition raises the epoch by one, so a pass started
        under an earlier epoch can tell it lost the lease. One conditional upsert: two processes never both succeed.
        """
        if ttl_seconds <= 0:
            raise ValueError("a lease needs a positive ttl")
        if not holder:
            raise ValueError("a lease needs a holder name")
        c = t.leases.c
        with self._db.tx(write=True) as conn:
            params = acquire_params(job, holder, ttl_seconds, to_ms(now or _now()))
            epoch = conn.execute(acquire_statement(self._db.dialect), params).scalar()
            if epoch is not None:
                return cell("leases", "epoch", epoch, int)
            expires = conn.execute(select(c.expires_at_ms).where(c.job == job)).scalar()
        # SQLite keeps text in an integer column and sorts it after every number: a lease row edited to garbage
        # would never expire, so the job would wait for ever without a word.
        cell("leases", "expires_at_ms", expires, stored_ms)
        return None

    def take_leases(
        self, jobs: Sequence[str], holder: str, ttl_seconds: float, now: datetime | None = None
    ) -> dict[str, int]:
        """``acquire_lease`` for every job of ``jobs``, a few hundred jobs a statement (a daemon starting with a
        thousand jobs: a handful of writes, not a thousand); the jobs ``holder`` now holds, with their epochs.

        Each lease is taken by the same rule as ``acquire_lease``; a job left out (held by another holder, even one
        that is gone) is for ``take_over_lease`` to try.
        """
        if ttl_seconds <= 0:
            raise ValueError("a lease needs a positive ttl")
        if not holder:
            raise ValueError("a lease needs a holder name")
        now_ms = to_ms(now or _now())
        names = sorted(set(jobs))  # each job once (a row may change once a statement), and in one order for all
        # processes: two daemons starting together lock the rows in the same order, never each waiting for the other
        taken: dict[str, int] = {}
        with self._db.tx(write=True) as conn:
            for start in range(0, len(names), TAKE_CHUNK):
                stmt = take_statement(self._db, names[start : start + TAKE_CHUNK], holder, ttl_seconds, now_ms)
                for row in conn.execute(stmt):
                    taken[row.job] = cell("leases", "epoch", row.epoch, int)
        return taken

    def release_lease(self, job: str, holder: str) -> bool:
        """Give up the lease on ``job`` if ``holder`` holds it; True if it did.

        The row stays, expired, so that the next acquisition continues its epochs.
        """
        with self._db.tx(write=True) as conn:
            return conn.execute(release_statement(job, holder)).rowcount == 1

    def release_leases(self, holder: str) -> int:
        """Give up every lease ``holder`` holds, in one statement (a daemon stopping with a thousand jobs); how many.

        The rows stay, expired, as ``release_lease`` leaves them.
        """
        c = t.leases.c
        with self._db.tx(write=True) as conn:
            done = conn.execute(update(t.leases).where(c.holder == holder, c.expires_at_ms > 0).values(expires_at_ms=0))
            return int(done.rowcount)

    def lease_holder(self, job: str, now: datetime | None = None) -> str | None:
        """Who holds an unexpired lease on ``job``, if anyone."""
        c = t.leases.c
        with self._db.tx(write=False) as conn:
            row = conn.execute(select(c.holder, c.expires_at_ms).where(c.job == job)).first()
        if row is None:
            return None
        expires = cell("leases", "expires_at_ms", row.expires_at_ms, stored_ms)
        return str(row.holder) if expires > (now or _now()) else None

    def lease_expiry(self, job: str) -> datetime | None:
        """When ``job``'s lease ends (in the past if it is free), or None if it was never taken."""
        c = t.leases.c
        with self._db.tx(write=False) as conn:
            expires = conn.execute(select(c.expires_at_ms).where(c.job == job)).scalar()
        return None if expires is None else from_ms(expires)

    def lease_is_current(
        self, job: str, holder: str, epoch: int, margin_seconds: float, now: datetime | None = None
    ) -> bool:
        """True when ``holder`` still holds ``job``'s lease under ``epoch`` with ``margin_seconds`` left on it.

        The fencing check of a pass right before it writes to the exchange: read from the database, never from
        what the process remembers, so a pass that stalled past its lease finds out.
        """
        if self._db.dialect == "postgresql":
            with self._db.driver() as pg:
                return pg.first(_current_hot(), _current_params(job, holder, epoch, margin_seconds, now)) is not None
        with self._db.tx(write=False) as conn:
            return lease_current_in(conn, job, holder, epoch, margin_seconds, now)

    def renew_lease(self, job: str, holder: str, epoch: int, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Extend ``holder``'s unexpired lease of ``epoch`` to ``ttl_seconds`` from now; False if it is no longer so."""
        c = t.leases.c
        now_ms = to_ms(now or _now())
        with self._db.tx(write=True) as conn:
            done = conn.execute(
                update(t.leases)
                .where(c.job == job, c.holder == holder, c.epoch == epoch, c.expires_at_ms > now_ms)
                .values(expires_at_ms=now_ms + int(ttl_seconds * 1000))
            )
            return done.rowcount == 1

    def renew_leases(
        self, holder: str, ttl_seconds: float, busy: Sequence[str] = (), now: datetime | None = None
    ) -> dict[str, int]:
        """Extend every unexpired lease ``holder`` holds to ``ttl_seconds`` from now, except those of the jobs in
        ``busy``, in one statement (a daemon of a thousand jobs: one write every few seconds, not a thousand); the
        renewed jobs with their epochs, which a renewal never changes.

        A lease another holder took, or one that expired, is not renewed: taking it again is an acquisition, with a
        new epoch, so a pass under the old one meets ``LeaseLost`` at its fence.
        """
        if ttl_seconds <= 0:
            raise ValueError("a lease needs a positive ttl")
        now_ms = to_ms(now or _now())
        params = {"holder_": holder, "now_ms": now_ms, "until_ms": now_ms + int(ttl_seconds * 1000), "busy": busy}
        with self._db.tx(write=True) as conn:
            return {row.job: cell("leases", "epoch", row.epoch, int) for row in conn.execute(_RENEW_ALL, params)}

    def take_over_lease(self, job: str, holder: str, ttl_seconds: float, now: datetime | None = None) -> int | None:
        """Take or renew the lease (its epoch, or None), also taking it from a holder on this host that is gone."""
        epoch = self.acquire_lease(job, holder, ttl_seconds, now)
        if epoch is not None:
            return epoch
        current = self.lease_holder(job, now)
        if current is None or not holder_is_dead(current):
            return None
        now_ms = to_ms(now or _now())
        c = t.leases.c
        stmt = (
            update(t.leases)
            .where(c.job == job, c.holder == current)
            .values(
                holder=holder,
                acquired_at_ms=now_ms,
                expires_at_ms=now_ms + int(ttl_seconds * 1000),
                epoch=c.epoch + 1,
            )
            .returning(c.epoch)
        )
        with self._db.tx(write=True) as conn:
            return conn.execute(stmt).scalar()


_RENEW_ALL = (  # a daemon's lease keeper runs it every few seconds: built once
    update(t.leases)
    .where(
        t.leases.c.holder == bindparam("holder_"),
        t.leases.c.expires_at_ms > bindparam("now_ms"),
        t.leases.c.job.not_in(bindparam("busy", expanding=True)),
    )
    .values(expires_at_ms=bindparam("until_ms"))
    .returning(t.leases.c.job, t.leases.c.epoch)
)

_ACQUIRE: dict[str, Any] = {}


def acquire_statement(dialect: str) -> Any:
    """The one conditional upsert of ``LeaseState.acquire_lease``, with ``acquire_params``: it returns the epoch
    when the holder holds the lease. Built once per dialect (a pass runs it every time: no rebuilding)."""
    stmt = _ACQUIRE.get(dialect)
    if stmt is None:
        c = t.leases.c
        now_ms = bindparam("lease_now_ms", type_=c.expires_at_ms.type)
        insert = upsert_for(dialect, t.leases).values(
            job=bindparam("lease_job"),
            holder=bindparam("lease_holder"),
            acquired_at_ms=now_ms,
            expires_at_ms=bindparam("lease_expires_ms"),
            epoch=1,
        )
        stmt = _ACQUIRE[dialect] = _taking(insert, now_ms).returning(c.epoch)
    return stmt


def acquire_when(condition: Any, job: Any, holder: Any, now_ms: Any, expires_ms: Any) -> Any:
    """``acquire_statement``'s conditional upsert on PostgreSQL, made only when ``condition`` (an SQL boolean, e.g.
    over other tables) holds: a cluster pass's start takes its lease in the statement that reads the job. Returns
    the epoch when the holder holds the lease; the arguments are SQL expressions (bind parameters)."""
    source = select(job, holder, now_ms, expires_ms, literal(1, BigInteger)).where(condition)
    insert = upsert_for("postgresql", t.leases).from_select(
        ["job", "holder", "acquired_at_ms", "expires_at_ms", "epoch"], source
    )
    return _taking(insert, now_ms).returning(t.leases.c.epoch)


def _taking(insert: Any, now_ms: Any) -> Any:
    """``insert`` (of a lease row per job, acquired at ``now_ms``) made the lease rule: a row already there is taken
    when its holder is the inserted one (a renewal: epoch and acquisition time kept) or when it expired (a new
    acquisition: the epoch raised by one); any other row is left as it is."""
    c = t.leases.c
    renewal = (c.holder == insert.excluded.holder) & (c.expires_at_ms > now_ms)
    return insert.on_conflict_do_update(
        index_elements=[c.job],
        set_={
            "holder": insert.excluded.holder,
            "acquired_at_ms": case((renewal, c.acquired_at_ms), else_=insert.excluded.acquired_at_ms),
            "epoch": case((renewal, c.epoch), else_=c.epoch + 1),
            "expires_at_ms": insert.excluded.expires_at_ms,
        },
        where=(c.holder == insert.excluded.holder) | (c.expires_at_ms <= now_ms),
    )


TAKE_CHUNK = 500
"""Jobs per statement of ``LeaseState.take_leases``: well under either database's bound on parameters."""


def take_statement(db: Database, jobs: Sequence[str], holder: str, ttl_seconds: float, now_ms: int) -> Any:
    """``acquire_statement`` for every job of ``jobs`` at once: one multi-row conditional upsert that returns the
    job and epoch of each lease ``holder`` now holds."""
    c = t.leases.c
    until_ms = now_ms + int(ttl_seconds * 1000)
    rows = [
        {"job": job, "holder": holder, "acquired_at_ms": now_ms, "expires_at_ms": until_ms, "epoch": 1} for job in jobs
    ]
    insert = db.upsert(t.leases).values(rows)
    # Every row is acquired at ``now_ms``: the excluded row's acquisition time is the statement's now.
    return _taking(insert, insert.excluded.acquired_at_ms).returning(c.job, c.epoch)


def acquire_params(job: str, holder: str, ttl_seconds: float, now_ms: int) -> dict[str, Any]:
    """The parameters of ``acquire_statement``: ``holder`` takes or renews ``job`` for ``ttl_seconds`` from now."""
    return {
        "lease_job": job,
        "lease_holder": holder,
        "lease_now_ms": now_ms,
        "lease_expires_ms": now_ms + int(ttl_seconds * 1000),
    }


def release_statement(job: Any, holder: Any) -> Any:
    """The UPDATE of ``LeaseState.release_lease`` (``job`` and ``holder``: names, or bind parameters): the lease
    expired (its row and epoch kept) if ``holder`` holds it."""
    c = t.leases.c
    return update(t.leases).where(c.job == job, c.holder == holder, c.expires_at_ms > 0).values(expires_at_ms=0)
