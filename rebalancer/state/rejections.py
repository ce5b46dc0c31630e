"""What the pass guards need from the state store: the last observed reference and per-level rejection backoff.

``StateStore`` inherits these methods; they live apart because they serve one idea (``rebalancer.core.guards``),
not the store's bookkeeping of passes, ownership and leases.

Backoff, per job and level (``buy[3]``): the first rejection of a placement is retried by the next pass; from
the second consecutive rejection with the same code the level is held for ``min(cap, base · 2^(n−2))``
(30 s, 60 s, 120 s … up to 30 min by default). A rejection with another code starts the count again at one, and
a placement that succeeds clears the level. One job is only ever reconciled by one process at a time (the
lease), so the read-then-write of ``record_rejections`` happens in one transaction without racing itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, bindparam, delete, select

from rebalancer.defaults import REJECTION_BACKOFF_BASE_SECONDS, REJECTION_BACKOFF_CAP_SECONDS
from rebalancer.state import schema as t
from rebalancer.state.db import Database
from rebalancer.state.records import cell, stored_decimal, stored_ms, to_ms

_MESSAGE_CHARS = 200
_CHUNK = 500


def backoff_seconds(
    count: int, base: int = REJECTION_BACKOFF_BASE_SECONDS, cap: int = REJECTION_BACKOFF_CAP_SECONDS
) -> int:
    """How long a level rejected ``count`` times in a row waits before its next try (0: the next pass)."""
    if count < 2:
        return 0
    return min(cap, base * 2 ** min(count - 2, 40))


class GuardState:
    """The guard methods of ``StateStore`` (which supplies ``_db``)."""

    _db: Database

    def last_reference(self, job: str) -> Decimal | None:
        """The reference observed by the newest finished pass of ``job`` that could read one, if any.

        Passes that recorded none (a crossed or empty book, a pass that failed before reading the market) are
        skipped, so a move across them is still compared with the last price the market really showed.
        """
        with self._db.tx(write=False) as conn:
            return last_reference_in(conn, job)

    def record_rejections(
        self,
        job: str,
        rejections: Sequence[tuple[str, str | None, str | None]],
        now: datetime,
        *,
        base_seconds: int = REJECTION_BACKOFF_BASE_SECONDS,
        cap_seconds: int = REJECTION_BACKOFF_CAP_SECONDS,
    ) -> None:
        """Count one more rejection for each ``(level, code, message)`` and set when the level may try again."""
        if not rejections:
            return
        with self._db.tx(write=True) as conn:
            record_rejections_in(self._db, conn, job, rejections, now, base_seconds, cap_seconds)

    def held_levels(self, job: str, now: datetime) -> dict[str, str]:
        """Levels of ``job`` held back at ``now``, each with why: ``until 10:42:05 UTC after 3 rejections (...)``."""
        with self._db.tx(write=False) as conn:
            return held_levels_in(conn, job, now)

    def rejection_counts(self, job: str) -> dict[str, tuple[str, int, datetime]]:
        """Every level of ``job`` with a rejection on record: level → (code, consecutive count, not before)."""
        c = t.level_rejections.c
        with self._db.tx(write=False) as conn:
            rows = conn.execute(select(t.level_rejections).where(c.job == job)).all()
        return {
            r.level: (r.code, r.times, cell("level_rejections", "not_before_ms", r.not_before_ms, stored_ms))
            for r in rows
        }

    def clear_rejections(self, job: str, levels: Iterable[str]) -> None:
        """Forget the rejections of ``levels`` (their placement succeeded); unknown levels are ignored."""
        with self._db.tx(write=True) as conn:
            clear_rejections_in(conn, job, levels)


# Read by every pass, so built once (building and keying a statement costs more CPU than SQLite takes to run it).
SEEN_REFERENCE = (
    select(t.passes.c.reference_price, t.passes.c.started_at_ms)
    .where(t.passes.c.job == bindparam("job"), t.passes.c.result.is_not(None), t.passes.c.reference_price.is_not(None))
    .order_by(t.passes.c.started_at_ms.desc(), t.passes.c.id.desc())
    .limit(1)
)
_HELD_LEVELS = (
    select(t.level_rejections)
    .where(
        t.level_rejections.c.job == bindparam("job"),
        t.level_rejections.c.times >= 2,
        t.level_rejections.c.not_before_ms > bindparam("now_ms"),
    )
    .order_by(t.level_rejections.c.level)
)
_ON_RECORD = (
    select(
        t.level_rejections,
        and_(t.level_rejections.c.times >= 2, t.level_rejections.c.not_before_ms > bindparam("now_ms")).label("held"),
    )
    .where(t.level_rejections.c.job == bindparam("job"))
    .order_by(t.level_rejections.c.level)
)


def last_reference_in(conn: Connection, job: str) -> Decimal | None:
    """``GuardState.last_reference`` inside an open transaction."""
    seen = seen_reference_in(conn, job)
    return None if seen is None else seen[0]


def seen_reference_in(conn: Connection, job: str) -> tuple[Decimal, datetime] | None:
    """The last observed reference (as ``last_reference_in``) and when its pass started, in the same statement."""
    return seen_of(conn.execute(SEEN_REFERENCE, {"job": job}).first())


def seen_of(row: Any) -> tuple[Decimal, datetime] | None:
    """The observed reference and its pass's start from a row of ``reference_price`` and ``started_at_ms`` (None
    for no row, a NULL price or a price of 0), so statements that read it with other columns decode it alike."""
    if row is None or row.reference_price is None:
        return None
    price = cell("passes", "reference_price", row.reference_price, stored_decimal)
    return (price, cell("passes", "started_at_ms", row.started_at_ms, stored_ms)) if price > 0 else None


def held_levels_in(conn: Connection, job: str, now: datetime) -> dict[str, str]:
    """``GuardState.held_levels`` inside an open transaction."""
    return {r.level: _why_held(r) for r in conn.execute(_HELD_LEVELS, {"job": job, "now_ms": to_ms(now)}).all()}


def rejections_in(conn: Connection, job: str, now: datetime) -> tuple[dict[str, str], frozenset[str]]:
    """The levels held at ``now`` (as ``held_levels_in``) and every level with a rejection on record, held or not,
    in one statement: a pass clears the record of a level it places only when there is one to clear."""
    held: dict[str, str] = {}
    levels = set()
    for r in conn.execute(_ON_RECORD, {"job": job, "now_ms": to_ms(now)}).all():
        levels.add(r.level)
        if r.held:
            held[r.level] = _why_held(r)
    return held, frozenset(levels)


def _why_held(r: Any) -> str:
    until = cell("level_rejections", "not_before_ms", r.not_before_ms, stored_ms).strftime("%H:%M:%S UTC")
    detail = f"code {r.code}: {r.message}" if r.message else f"code {r.code}"
    return f"until {until} after {r.times} rejections ({detail})"


def record_rejections_in(
    db: Database,
    conn: Connection,
    job: str,
    rejections: Sequence[tuple[str, str | None, str | None]],
    now: datetime,
    base_seconds: int = REJECTION_BACKOFF_BASE_SECONDS,
    cap_seconds: int = REJECTION_BACKOFF_CAP_SECONDS,
) -> None:
    """``GuardState.record_rejections`` inside an open transaction."""
    if not rejections:
        return
    now_ms = to_ms(now)
    latest = {level: (code or "-", (message or "")[:_MESSAGE_CHARS]) for level, code, message in rejections}
    c = t.level_rejections.c
    levels = sorted(latest)
    before: dict[str, tuple[str, int]] = {}
    for start in range(0, len(levels), _CHUNK):
        rows = conn.execute(
            select(c.level, c.code, c.times).where(c.job == job, c.level.in_(levels[start : start + _CHUNK]))
        )
        before.update({r.level: (r.code, r.times) for r in rows})
    for level in levels:
        code, message = latest[level]
        old_code, old_count = before.get(level, (None, 0))
        count = old_count + 1 if old_code == code else 1
        wait_ms = backoff_seconds(count, base_seconds, cap_seconds) * 1000
        values = {
            "job": job,
            "level": level,
            "code": code,
            "message": message,
            "times": count,
            "not_before_ms": now_ms + wait_ms,
            "updated_at_ms": now_ms,
        }
        stmt = db.upsert(t.level_rejections).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[c.job, c.level],
            set_={k: v for k, v in values.items() if k not in ("job", "level")},
        )
        conn.execute(stmt)


def clear_rejections_in(conn: Connection, job: str, levels: Iterable[str]) -> None:
    """``GuardState.clear_rejections`` inside an open transaction."""
    wanted = sorted(set(levels))
    for start in range(0, len(wanted), _CHUNK):
        conn.execute(_CLEAR, {"job": job, "levels": wanted[start : start + _CHUNK]})


_CLEAR = delete(t.level_rejections).where(
    t.level_rejections.c.job == bindparam("job"), t.level_rejections.c.level.in_(bindparam("levels", expanding=True))
)
