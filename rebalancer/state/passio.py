"""A pass's own round trips to the state store: everything it needs read in one transaction, what it decided
written in at most two.

``pass_inputs`` reads what a pass needs (one transaction). A pass that sends nothing writes once: ``record_outcome``
(the pass row, ownership changes, fills, rejection backoff). A pass that places orders, or whose loss limit pauses
the job, first commits ``record_presend`` (the pass row, the in-flight record, the ownership it settled, the pause),
so a crash while sending leaves what a later pass needs to adopt rather than place twice. Every statement lives in
one ``*_in(conn, ...)`` helper here (or in ``state.fills`` / ``state.rejections``), which the store's older
one-statement methods call too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Unpack

from sqlalchemy import Connection, Select, bindparam, delete, func, select, update

from rebalancer.core.blind import Sight
from rebalancer.core.fills import Fill, Seen
from rebalancer.models import Side, format_decimal
from rebalancer.state import schema as t
from rebalancer.state.db import Database, inserted_id
from rebalancer.state.fills import (
    count_since_in,
    fills_in,
    last_fills_in,
    record_fills_in,
    risk_values,
    set_risk_in,
    watched_in,
)
from rebalancer.state.leases import lease_current_in, lease_lost
from rebalancer.state.outcome import OwnershipChange, PassOutcome, PreSend
from rebalancer.state.records import (
    Ended,
    InFlight,
    OrderResult,
    Placement,
    cell,
    check_pass_key,
    dump_json,
    origin_columns,
    pass_outcome,
    stored_decimal,
    stored_ms,
    to_ms,
    without_secrets,
)
from rebalancer.state.rejections import (
    SEEN_REFERENCE,
    clear_rejections_in,
    record_rejections_in,
    rejections_in,
    seen_of,
)
from rebalancer.vocab import Mode

_CHUNK = 500  # ids per IN (...) clause, well below SQLite's bound-parameter limit


def _now() -> datetime:
    return datetime.now(UTC)  # in-flight, tracking and pause times are the store's own clock, as they always were


@dataclass(frozen=True, slots=True)
class PassInputs:
    """What one pass reads from the store: owned ids, unconfirmed batches, and what the guards need."""

    tracked: frozenset[str]
    in_flight: tuple[InFlight, ...]
    last_reference: Decimal | None
    held_levels: Mapping[str, str]
    watched: Mapping[str, Seen] = field(default_factory=dict)  # orders whose fills are learnt (``state.fills``)
    last_fills: Mapping[str, datetime] = field(default_factory=dict)  # per ladder level, its latest fill
    loss_since: datetime | None = None  # with ``loss``: when the loss count started (None: its first fill)
    loss_fills: tuple[Fill, ...] = ()  # with ``loss``: the fills counted toward ``limits.max_loss``
    sight: Sight = field(default_factory=Sight)  # with ``sight``: when the job last saw a price (``core.blind``)
    paused: bool = False  # the job's pause switch, read in the same transaction (a scheduler's pass stops on it)
    rejections_on_record: frozenset[str] | None = None  # levels with a rejection record (None: not read)


class PassIO:
    """The pass methods of ``StateStore`` (which supplies ``_db``)."""

    _db: Database

    def pass_inputs(self, job: str, now: datetime, *, loss: bool = False, sight: bool = False) -> PassInputs:
        """Tracked ids, open in-flight records, the last observed reference, the levels held at ``now``, the fills
        watch list and the pause switch (a scheduler's pass stops on it, so a pause committed before this read
        holds without a transaction of its own); with ``loss`` (the job has ``limits.max_loss``) the fills its loss
        counts too; with ``sight`` (``limits.max_blind``) when it last saw a price and when its newest and first
        passes ran."""
        with self._db.tx(write=False) as conn:
            since = count_since_in(conn, job) if loss else None
            head = conn.execute(_SEEN_AND_PAUSED, {"job": job}).one()
            seen = seen_of(head)
            held, on_record = rejections_in(conn, job, now)
            return PassInputs(
                tracked=tracked_ids_in(conn, job),
                in_flight=tuple(open_in_flight_in(conn, job)),
                last_reference=None if seen is None else seen[0],
                held_levels=held,
                watched=watched_in(conn, job),
                last_fills=last_fills_in(conn, job),
                loss_since=since,
                loss_fills=tuple(fills_in(conn, job, since)) if loss else (),
                sight=sight_in(conn, job, None if seen is None else seen[1]) if sight else Sight(),
                paused=bool(head.paused),
                rejections_on_record=on_record,
            )

    def record_pass(self, job: str, mode: Mode, started_at: datetime, **ended: Unpack[Ended]) -> int:
        """Record a whole pass that is already over (one INSERT); returns its id. For passes that sent nothing."""
        values = pass_outcome(**ended)
        check_pass_key(job, mode)
        with self._db.tx(write=True) as conn:
            return insert_pass_in(conn, job, mode, started_at, values)

    def record_presend(self, presend: PreSend) -> tuple[int, int | None]:
        """Commit a pass's write-ahead in one transaction; returns (pass id, in-flight id or None).

        The pass row is inserted with no result yet; the in-flight record is written only with placements. With a
        ``fence``, the lease is checked first in the same transaction: ``LeaseLost`` when it is not current, and
        nothing written.
        """
        check_pass_key(presend.job, presend.mode)
        return self._db.write(lambda conn: presend_in(self._db, conn, presend))

    def record_outcome(self, outcome: PassOutcome) -> int:
        """Record everything a finished pass decided in one transaction; returns the pass id.

        Nothing is written unless all of it is: a value the store refuses rolls the whole outcome back.
        """
        ended = ended_columns(outcome)
        if outcome.pass_id is None:
            check_pass_key(outcome.job, outcome.mode)
        return self._db.write(lambda conn: outcome_in(self._db, conn, outcome, ended))


def presend_in(db: Database, conn: Connection, presend: PreSend) -> tuple[int, int | None]:
    """``record_presend``'s statements, on an open writing transaction."""
    at, origin, fence = presend.started_at, presend.origin, presend.fence
    if fence is not None and not lease_current_in(conn, presend.job, fence.holder, fence.epoch, fence.margin_seconds):
        raise lease_lost(presend.job, fence.holder, fence.epoch, fence.margin_seconds)
    pass_id = insert_pass_in(conn, presend.job, presend.mode, at, origin_columns(origin.wake, origin.prices))
    ownership_in(db, conn, presend.job, presend.ownership, _now())
    if presend.pause is not None:
        paused_by, reason = presend.pause
        pause_for_risk_in(db, conn, presend.job, paused_by, reason, at)
    in_flight = None
    if presend.placements:
        in_flight = begin_in_flight_in(conn, presend.job, pass_id, presend.placements, _now())
    return pass_id, in_flight


def outcome_in(db: Database, conn: Connection, outcome: PassOutcome, ended: Mapping[str, object]) -> int:
    """``record_outcome``'s statements, on an open writing transaction (``ended``: the outcome's ``ended_columns``)."""
    job, at = outcome.job, outcome.recorded_at or outcome.started_at
    if outcome.pass_id is None:
        pass_id = insert_pass_in(conn, job, outcome.mode, outcome.started_at, ended)
    else:
        pass_id = outcome.pass_id
    for batch in outcome.batches:
        batch_in(conn, pass_id, batch.index, batch.request, batch.answer, batch.error, batch.recorded_at)
    results_in(conn, pass_id, outcome.results, start=0)  # the write-ahead stores none: no count needed
    if outcome.late is not None:
        mark_late_in(conn, *outcome.late)
    if outcome.close is not None:
        close_in_flight_in(db, conn, outcome.close, outcome.placed, _now())
    ownership_in(db, conn, job, outcome.ownership, _now())
    if outcome.fills or outcome.watch or outcome.forget:
        record_fills_in(db, conn, job, pass_id, outcome.fills, outcome.watch, outcome.forget, at)
    record_rejections_in(db, conn, job, outcome.rejected, at)
    if outcome.cleared:
        clear_rejections_in(conn, job, outcome.cleared)
    if outcome.pass_id is not None:
        finish_pass_in(conn, pass_id, ended)
    return pass_id


def ended_columns(outcome: PassOutcome) -> dict[str, object]:
    """The columns of the pass row that say how ``outcome``'s pass ended (checked: a result never stored is refused)."""
    o = outcome
    return pass_outcome(
        result=o.result,
        summary=o.summary,
        warnings=o.warnings,
        error=o.error,
        duration_ms=o.duration_ms,
        reference_price=o.reference_price,
        fingerprint=o.fingerprint,
        wake=o.origin.wake,
        prices=o.origin.prices,
    )


# The statements of every pass are built once: building and keying an SQLAlchemy statement costs more CPU than
# SQLite takes to run it. Values go in as parameters.
_FINISH_PASS = update(t.passes).where(t.passes.c.id == bindparam("pass_id_"))
_INSERT_PASS = t.passes.insert()
_INSERT_BATCH = t.batches.insert()
_INSERT_RESULTS = t.order_results.insert()
_INSERT_IN_FLIGHT = t.in_flight.insert()
_INSERT_PLACEMENTS = t.in_flight_placements.insert()
_MARK_LATE = update(t.in_flight).where(t.in_flight.c.id == bindparam("id_"))


def insert_pass_in(conn: Connection, job: str, mode: Mode, started_at: datetime, ended: Mapping[str, object]) -> int:
    """Insert a pass row (``ended``: the columns of ``pass_outcome``, empty for a pass still running)."""
    values = {"job": job, "mode": mode, "started_at_ms": to_ms(started_at), **ended}
    return inserted_id(conn.execute(_INSERT_PASS, values))


def finish_pass_in(conn: Connection, pass_id: int, ended: Mapping[str, object]) -> None:
    """Write how pass ``pass_id`` ended (the columns of ``pass_outcome``); an unknown id is a ``ValueError``."""
    done = conn.execute(_FINISH_PASS, {"pass_id_": pass_id, **ended})
    if done.rowcount != 1:
        raise ValueError(f"no pass with id {pass_id}")


def batch_in(
    conn: Connection,
    pass_id: int,
    index: int,
    request: Mapping[str, str],
    answer: object | None,
    error: str | None,
    recorded_at: datetime,
) -> int:
    """Store one batch of a pass: its request parameters (minus credentials), its answer or its error."""
    values = {
        "pass_id": pass_id,
        "batch_index": index,
        "recorded_at_ms": to_ms(recorded_at),
        "request": dump_json(without_secrets(request)),
        "answer": None if answer is None else dump_json(answer),
        "error": error,
    }
    return inserted_id(conn.execute(_INSERT_BATCH, values))


RESULT_FIELDS = ("action", "side", "price", "volume", "order_id", "status", "code", "message")
_RESULTS_STORED = (
    select(func.count()).select_from(t.order_results).where(t.order_results.c.pass_id == bindparam("pass_id"))
)


def results_in(conn: Connection, pass_id: int, results: Sequence[OrderResult], start: int | None = None) -> None:
    """Store per-order outcomes of a pass after any already stored for it (``start``: how many, when the caller
    knows, as for a pass row inserted in the same transaction)."""
    if not results:
        return
    if start is None:
        start = conn.execute(_RESULTS_STORED, {"pass_id": pass_id}).scalar_one()
    rows = [
        {"pass_id": pass_id, "seq": start + i, **{k: getattr(r, k) for k in RESULT_FIELDS}}
        for i, r in enumerate(results)
    ]
    conn.execute(_INSERT_RESULTS, rows)


def track_in(db: Database, conn: Connection, job: str, ids: Iterable[str], now: datetime) -> None:
    """Add order ids to those ``job`` owns (ids already tracked are left as they are)."""
    rows = [{"job": job, "order_id": str(i), "tracked_at_ms": to_ms(now)} for i in sorted(set(ids))]
    if rows:
        conn.execute(db.insert_new(t.tracked_orders), rows)


def untrack_in(conn: Connection, job: str, ids: Iterable[str]) -> None:
    """Forget order ids of ``job``; unknown ids are ignored."""
    wanted = sorted({str(i) for i in ids})
    for start in range(0, len(wanted), _CHUNK):
        conn.execute(_UNTRACK, {"job": job, "ids": wanted[start : start + _CHUNK]})


_UNTRACK = delete(t.tracked_orders).where(
    t.tracked_orders.c.job == bindparam("job"), t.tracked_orders.c.order_id.in_(bindparam("ids", expanding=True))
)


def ownership_in(db: Database, conn: Connection, job: str, change: OwnershipChange, now: datetime) -> None:
    """Apply what the order tracker decided: close settled in-flight records (tracking what they adopted),
    track adopted ids, forget ids no longer owned."""
    for in_flight_id, adopted in change.closes:
        close_in_flight_in(db, conn, in_flight_id, adopted, now)
    track_in(db, conn, job, change.track, now)
    if change.untrack:
        untrack_in(conn, job, change.untrack)


def begin_in_flight_in(
    conn: Connection, job: str, pass_id: int | None, placements: Sequence[Placement], created_at: datetime
) -> int:
    """Record, before sending, what a batch of ``job`` will place; returns the id to close it by."""
    in_flight_id = inserted_id(
        conn.execute(_INSERT_IN_FLIGHT, {"job": job, "pass_id": pass_id, "created_at_ms": to_ms(created_at)})
    )
    if placements:
        rows = [
            {
                "in_flight_id": in_flight_id,
                "seq": i,
                "side": p.side.value,
                "price": format_decimal(p.price),
                "volume": format_decimal(p.volume),
            }
            for i, p in enumerate(placements)
        ]
        conn.execute(_INSERT_PLACEMENTS, rows)
    return in_flight_id


def close_in_flight_in(
    db: Database, conn: Connection, in_flight_id: int, confirmed_ids: Iterable[str], now: datetime
) -> None:
    """Close an in-flight record, tracking ``confirmed_ids`` for its job; closing twice is harmless, an unknown id
    is a ``ValueError``."""
    job = conn.execute(_CLOSE_IN_FLIGHT, {"id_": in_flight_id, "closed_at_ms": to_ms(now)}).scalar()
    if job is None:
        raise ValueError(f"no in-flight batch with id {in_flight_id}")
    track_in(db, conn, job, confirmed_ids, now)


# One statement closes the record (a record closed before keeps its first closing time) and names its job.
_CLOSE_IN_FLIGHT = (
    update(t.in_flight)
    .where(t.in_flight.c.id == bindparam("id_"))
    .values(closed_at_ms=func.coalesce(t.in_flight.c.closed_at_ms, bindparam("closed_at_ms")))
    .returning(t.in_flight.c.job)
)


def mark_late_in(conn: Connection, in_flight_id: int, until: datetime) -> None:
    """Note that an in-flight record's write timed out and may still land on the book until ``until``."""
    conn.execute(_MARK_LATE, {"id_": in_flight_id, "late_until_ms": to_ms(until)})


def pause_for_risk_in(db: Database, conn: Connection, job: str, paused_by: str, reason: str, at: datetime) -> None:
    """Pause ``job`` and note the guard that did it and why, on ``conn`` (one transaction: never a pause without
    its reason)."""
    set_paused_in(db, conn, job, True, _now())
    set_risk_in(db, conn, risk_values(job, paused_by, reason, at))


def set_paused_in(db: Database, conn: Connection, job: str, paused: bool, now: datetime) -> None:
    """Set the pause switch of ``job``."""
    stmt = db.upsert(t.job_flags).values(job=job, paused=paused, updated_at_ms=to_ms(now))
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.job_flags.c.job],
        set_={"paused": stmt.excluded.paused, "updated_at_ms": stmt.excluded.updated_at_ms},
    )
    conn.execute(stmt)


def sight_in(conn: Connection, job: str, seen_at: datetime | None) -> Sight:
    """What ``rebalancer.core.blind`` needs besides ``seen_at``: when the job's newest and first finished passes
    started, in one statement (two index seeks)."""
    row = conn.execute(_SIGHT, {"job": job}).one()
    if row.newest is None:
        return Sight(seen_at)
    last = cell("passes", "started_at_ms", row.newest, stored_ms)
    return Sight(seen_at, last, cell("passes", "started_at_ms", row.first, stored_ms))


def paused_in(conn: Connection, job: str) -> bool:
    """Whether ``job``'s pause switch is on (a job never mentioned is not), inside an open transaction."""
    return bool(conn.execute(_PAUSED, {"job": job}).scalar())


_PAUSED = select(t.job_flags.c.paused).where(t.job_flags.c.job == bindparam("job"))


def _seen_and_paused() -> Select[Any]:
    """The pass's last observed reference (as ``seen_reference_in``) and its pause switch (as ``paused_in``) in one
    row: three scalar subqueries, index seeks each, so the pass's read sends one statement fewer."""
    price = SEEN_REFERENCE.with_only_columns(t.passes.c.reference_price).scalar_subquery()
    started = SEEN_REFERENCE.with_only_columns(t.passes.c.started_at_ms).scalar_subquery()
    paused = _PAUSED.scalar_subquery()
    return select(price.label("reference_price"), started.label("started_at_ms"), paused.label("paused"))


_SEEN_AND_PAUSED = _seen_and_paused()


def _sight() -> Select[Any]:
    c = t.passes.c
    finished = select(c.started_at_ms).where(c.job == bindparam("job"), c.result.is_not(None)).limit(1)
    newest = finished.order_by(c.started_at_ms.desc(), c.id.desc()).scalar_subquery()
    first = finished.order_by(c.started_at_ms, c.id).scalar_subquery()
    return select(newest.label("newest"), first.label("first"))


_SIGHT = _sight()


def tracked_ids_in(conn: Connection, job: str) -> frozenset[str]:
    """Ids of the orders ``job`` placed and still owns, inside an open transaction."""
    return frozenset(conn.execute(_TRACKED, {"job": job}).scalars())


_TRACKED = select(t.tracked_orders.c.order_id).where(t.tracked_orders.c.job == bindparam("job"))


_OPEN_IN_FLIGHT = (
    select(t.in_flight)
    .where(t.in_flight.c.job == bindparam("job"), t.in_flight.c.closed_at_ms.is_(None))
    .order_by(t.in_flight.c.id)
)


_PLACEMENTS = (
    select(t.in_flight_placements)
    .where(t.in_flight_placements.c.in_flight_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.in_flight_placements.c.in_flight_id, t.in_flight_placements.c.seq)
)


def open_in_flight_in(conn: Connection, job: str) -> list[InFlight]:
    """In-flight records of ``job`` never closed, oldest first, inside an open transaction."""
    heads = conn.execute(_OPEN_IN_FLIGHT, {"job": job}).all()
    ids = [h.id for h in heads]
    placements: dict[int, list[Placement]] = {i: [] for i in ids}
    for start in range(0, len(ids), _CHUNK):
        for r in conn.execute(_PLACEMENTS, {"ids": ids[start : start + _CHUNK]}):
            placements[r.in_flight_id].append(
                Placement(
                    cell("in_flight_placements", "side", r.side, Side),
                    cell("in_flight_placements", "price", r.price, stored_decimal),
                    cell("in_flight_placements", "volume", r.volume, stored_decimal),
                )
            )
    return [
        InFlight(
            h.id,
            h.job,
            h.pass_id,
            cell("in_flight", "created_at_ms", h.created_at_ms, stored_ms),
            tuple(placements[h.id]),
            None if h.late_until_ms is None else cell("in_flight", "late_until_ms", h.late_until_ms, stored_ms),
        )
        for h in heads
    ]
