"""The fills ledger of ``StateStore``: orders watched for fills, the fills learnt, and each job's loss count start.

``StateStore`` inherits these methods. ``record_fills`` writes a pass's learnt fills and the changes of its watch list
(rows forgotten, rows new or changed) in one transaction; a fill already stored (same order and cumulative deal
volume) is skipped, so recording is idempotent.
``count_since`` is when the job's fills start counting toward ``limits.max_loss``: its first fill, or the last
``resume``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, func, select

from rebalancer.core.fills import Fill, Seen
from rebalancer.models import Side, format_decimal
from rebalancer.state import schema as t
from rebalancer.state.db import Database
from rebalancer.state.records import from_ms, to_ms

_CHUNK = 500


class FillState:
    """The fills methods of ``StateStore`` (which supplies ``_db``)."""

    _db: Database

    def watched_orders(self, job: str) -> dict[str, Seen]:
        """The orders of ``job`` watched for fills, by id."""
        with self._db.tx(write=False) as conn:
            return watched_in(conn, job)

    def record_fills(
        self,
        job: str,
        pass_id: int | None,
        fills: Sequence[Fill],
        watch: Sequence[Seen],
        forget: Iterable[str],
        now: datetime,
    ) -> None:
        """Store new ``fills`` (skipping any stored before), stop watching ``forget``, then watch ``watch`` from now
        on (each row written over any stored for its order; watched rows not named are kept as they are)."""
        with self._db.tx(write=True) as conn:
            record_fills_in(self._db, conn, job, pass_id, fills, watch, forget, now)

    def fills(self, job: str, since: datetime | None = None, *, pass_id: int | None = None) -> list[Fill]:
        """The fills of ``job`` (from ``since``, or of one pass), oldest first."""
        with self._db.tx(write=False) as conn:
            return fills_in(conn, job, since, pass_id=pass_id)

    def count_since(self, job: str) -> datetime | None:
        """When ``job``'s loss count started (its last ``resume``); None: since its first fill."""
        with self._db.tx(write=False) as conn:
            return count_since_in(conn, job)

    def paused_by(self, job: str) -> tuple[str | None, str | None]:
        """Which guard paused ``job`` and why (both None when no guard did)."""
        with self._db.tx(write=False) as conn:
            row = conn.execute(select(t.job_risk).where(t.job_risk.c.job == job)).first()
        return (None, None) if row is None else (row.paused_by, row.reason)

    def set_risk(
        self, job: str, *, paused_by: str | None, reason: str | None, now: datetime, restart_count: bool = False
    ) -> None:
        """Note (or clear, with None) the guard that paused ``job``; ``restart_count`` starts a new loss count now."""
        values = risk_values(job, paused_by, reason, now)
        if restart_count:
            values["count_since_ms"] = to_ms(now)
        with self._db.tx(write=True) as conn:
            set_risk_in(self._db, conn, values)

    def fill_totals(self) -> dict[str, dict[str, Decimal]]:
        """Per job, filled volume per side since its loss count started (what ``status`` shows)."""
        with self._db.tx(write=False) as conn:
            return fill_totals(conn)


_FORGET_WATCHED = delete(t.watched_orders).where(
    t.watched_orders.c.job == bindparam("job"), t.watched_orders.c.order_id.in_(bindparam("ids", expanding=True))
)


def record_fills_in(
    db: Database,
    conn: Connection,
    job: str,
    pass_id: int | None,
    fills: Sequence[Fill],
    watch: Sequence[Seen],
    forget: Iterable[str],
    now: datetime,
) -> None:
    """``FillState.record_fills`` inside an open transaction."""
    now_ms = to_ms(now)
    if fills:
        rows = [
            {
                "job": job,
                "order_id": f.order_id,
                "deal_volume": format_decimal(f.deal_volume),
                "side": f.side.value,
                "price": format_decimal(f.price),
                "volume": format_decimal(f.volume),
                "level": f.level,
                "filled_at_ms": to_ms(f.at),
                "pass_id": pass_id,
            }
            for f in fills
        ]
        conn.execute(db.insert_new(t.fills), rows)
    gone = sorted(set(forget))
    for start in range(0, len(gone), _CHUNK):
        conn.execute(_FORGET_WATCHED, {"job": job, "ids": gone[start : start + _CHUNK]})
    if watch:
        conn.execute(
            _upsert_watched(db),
            [
                {
                    "job": job,
                    "order_id": s.order_id,
                    "side": s.side.value,
                    "price": format_decimal(s.price),
                    "deal_volume": format_decimal(s.deal_volume),
                    "level": s.level,
                    "seen_at_ms": now_ms,
                    "volume": None if s.volume is None else format_decimal(s.volume),
                }
                for s in watch
            ],
        )


def fills_in(conn: Connection, job: str, since: datetime | None = None, *, pass_id: int | None = None) -> list[Fill]:
    """``FillState.fills`` inside an open transaction."""
    values: dict[str, object] = {"job": job, "since_ms": None if since is None else to_ms(since), "pass_id": pass_id}
    rows = conn.execute(_FILLS[since is not None, pass_id is not None], values).all()
    return [
        Fill(
            r.order_id,
            Side(r.side),
            Decimal(r.price),
            Decimal(r.volume),
            Decimal(r.deal_volume),
            from_ms(r.filled_at_ms),
            r.level,
        )
        for r in rows
    ]


def _fills(since: bool, of_pass: bool) -> Select[Any]:
    c = t.fills.c
    query = select(t.fills).where(c.job == bindparam("job"))
    if since:
        query = query.where(c.filled_at_ms >= bindparam("since_ms"))
    if of_pass:
        query = query.where(c.pass_id == bindparam("pass_id"))
    return query.order_by(c.filled_at_ms, c.order_id, c.deal_volume)


# Read by every pass of a job with a loss limit: built once, one statement per kind of ``fills_in`` call.
_FILLS = {(since, of_pass): _fills(since, of_pass) for since in (False, True) for of_pass in (False, True)}
_COUNT_SINCE = select(t.job_risk.c.count_since_ms).where(t.job_risk.c.job == bindparam("job"))
_UPSERT_WATCHED: dict[str, Any] = {}  # by dialect


def _upsert_watched(db: Database) -> Any:
    """The statement writing watched rows over any stored for the same order, built once per dialect."""
    statement = _UPSERT_WATCHED.get(db.dialect)
    if statement is None:
        insert = db.upsert(t.watched_orders)
        c = t.watched_orders.c
        columns = [col.name for col in t.watched_orders.columns if col.name not in ("job", "order_id")]
        statement = _UPSERT_WATCHED[db.dialect] = insert.on_conflict_do_update(
            index_elements=[c.job, c.order_id], set_={name: insert.excluded[name] for name in columns}
        )
    return statement


def count_since_in(conn: Connection, job: str) -> datetime | None:
    """``FillState.count_since`` inside an open transaction."""
    ms = conn.execute(_COUNT_SINCE, {"job": job}).scalar()
    return None if ms is None else from_ms(ms)


def set_risk_in(db: Database, conn: Connection, values: dict[str, object]) -> None:
    """Upsert one ``job_risk`` row (``job`` and the columns in ``values``) inside an open transaction."""
    stmt = db.upsert(t.job_risk).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.job_risk.c.job], set_={k: getattr(stmt.excluded, k) for k in values if k != "job"}
    )
    conn.execute(stmt)


def risk_values(job: str, paused_by: str | None, reason: str | None, now: datetime) -> dict[str, object]:
    """The ``job_risk`` columns that say which guard paused ``job`` and why."""
    return {"job": job, "paused_by": paused_by, "reason": reason, "updated_at_ms": to_ms(now)}


def fill_totals(conn: Connection) -> dict[str, dict[str, Decimal]]:
    """Per job, filled volume per side since its loss count started, read on ``conn``."""
    since = {r.job: r.count_since_ms for r in conn.execute(select(t.job_risk.c.job, t.job_risk.c.count_since_ms))}
    totals: dict[str, dict[str, Decimal]] = {}
    for r in conn.execute(select(t.fills.c.job, t.fills.c.side, t.fills.c.volume, t.fills.c.filled_at_ms)):
        start = since.get(r.job)
        if start is not None and r.filled_at_ms < start:
            continue
        sides = totals.setdefault(r.job, {})
        sides[r.side] = sides.get(r.side, Decimal(0)) + Decimal(r.volume)
    return totals


def guard_pauses(conn: Connection) -> dict[str, tuple[str, str | None]]:
    """Jobs a guard paused: the guard's word and its reason, read on ``conn``."""
    c = t.job_risk.c
    rows = conn.execute(select(c.job, c.paused_by, c.reason).where(c.paused_by.is_not(None)))
    return {r.job: (r.paused_by, r.reason) for r in rows}


def watched_in(conn: Connection, job: str) -> dict[str, Seen]:
    """The orders of ``job`` watched for fills, by id, read on ``conn``."""
    return {r.order_id: _seen(r) for r in conn.execute(_WATCHED, {"job": job})}


_WATCHED = select(t.watched_orders).where(t.watched_orders.c.job == bindparam("job"))  # built once: see passio


def _seen(row: Any) -> Seen:
    volume = None if row.volume is None else Decimal(row.volume)
    return Seen(row.order_id, Side(row.side), Decimal(row.price), Decimal(row.deal_volume), row.level, volume)


def last_fills_in(conn: Connection, job: str) -> dict[str, datetime]:
    """Per ladder level of ``job``, when its order last filled (for ``after_fill``), read on ``conn``."""
    return {r.level: from_ms(r.at) for r in conn.execute(_LAST_FILLS, {"job": job})}


_LAST_FILLS = (
    select(t.fills.c.level, func.max(t.fills.c.filled_at_ms).label("at"))
    .where(t.fills.c.job == bindparam("job"), t.fills.c.level.is_not(None))
    .group_by(t.fills.c.level)
)
