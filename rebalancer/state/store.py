"""The state store: what every pass did, which orders a job placed, and who may run a job right now.

SQLite by default (one file in the state directory, see ``rebalancer.state.paths``); a PostgreSQL URL works too, so
several hosts can share one store. Several processes may use one store at once (the daemon, a CLI ``history``,
a second daemon): see ``rebalancer.state.db``; every check-then-write here (leases, tracking) is one
statement.

It records, per pass, the plan summary, each batch sent (never credentials), each answer and the per-order
results; for ``ownership: tracked`` the confirmed order ids, plus an "in flight" record written before a batch
is sent and closed after its read-back, so that a pass after a crash can adopt what the lost batch placed.
It also holds the per-job pause switch, the per-job lease that keeps two daemons off one job at once, and the
per-level rejection backoff of ``rebalancer.state.rejections``, and what ``rebalancer status`` reads
(``rebalancer.state.status``).
All times given and returned are timezone-aware ``datetime`` values (stored as UTC epoch milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any, Unpack

from sqlalchemy import Row, func, select, union

from rebalancer.defaults import BUSY_TIMEOUT_MS
from rebalancer.models import Side
from rebalancer.state import schema as t
from rebalancer.state.cluster import ClusterState
from rebalancer.state.db import Database
from rebalancer.state.fills import FillState
from rebalancer.state.leases import LeaseState
from rebalancer.state.passio import (
    RESULT_FIELDS,
    PassIO,
    batch_in,
    begin_in_flight_in,
    close_in_flight_in,
    finish_pass_in,
    insert_pass_in,
    open_in_flight_in,
    pause_for_risk_in,
    paused_in,
    results_in,
    set_paused_in,
    track_in,
    tracked_ids_in,
    untrack_in,
)
from rebalancer.state.paths import default_url
from rebalancer.state.records import (
    BatchRecord,
    Ended,
    InFlight,
    OrderResult,
    PassDetail,
    PassRecord,
    Placement,
    cell,
    check_pass_key,
    load_json,
    pass_origin,
    pass_outcome,
    stored_decimal,
    stored_ms,
    to_ms,
)
from rebalancer.state.rejections import GuardState
from rebalancer.state.status import StatusState
from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult

__all__ = ["BatchRecord", "InFlight", "OrderResult", "PassDetail", "PassRecord", "Placement", "StateStore"]


def _now() -> datetime:
    return datetime.now(UTC)


class StateStore(PassIO, GuardState, LeaseState, StatusState, ClusterState, FillState):
    """The state store on a database URL (default ``rebalancer.state.paths.default_url()``); creates missing tables.

    Use it as a context manager or call ``close``. Database failures raise ``StateError``. The pass guards'
    methods (last observed reference, per-level rejection backoff) come from ``rebalancer.state.rejections``.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
        pg_settings: Mapping[str, str] | None = None,
    ) -> None:
        self._db = Database(url or default_url(), busy_timeout_ms=busy_timeout_ms, pg_settings=pg_settings)

    def close(self) -> None:
        """Release every database connection."""
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StateStore({self._db.display!r})"

    @property
    def location(self) -> str:
        """The database URL, password hidden: what messages may show to say which store they mean."""
        return self._db.display

    # Passes, batches and results.

    def start_pass(self, job: str, mode: Mode, started_at: datetime | None = None) -> int:
        """Record that a pass of ``job`` began (``mode`` e.g. plan, apply, run) and return its id."""
        check_pass_key(job, mode)
        with self._db.tx(write=True) as conn:
            return insert_pass_in(conn, job, mode, started_at or _now(), {})

    def finish_pass(self, pass_id: int, **ended: Unpack[Ended]) -> None:
        """Record how a pass ended; ``result``: ok, no_changes, rejected, error, unknown_outcome, skipped."""
        values = pass_outcome(**ended)
        with self._db.tx(write=True) as conn:
            finish_pass_in(conn, pass_id, values)

    def record_batch(
        self,
        pass_id: int,
        index: int,
        request: Mapping[str, str],
        answer: object | None = None,
        error: str | None = None,
        *,
        recorded_at: datetime | None = None,
    ) -> int:
        """Store one batch of a pass: its request parameters (minus credentials), its answer or its error."""
        with self._db.tx(write=True) as conn:
            return batch_in(conn, pass_id, index, request, answer, error, recorded_at or _now())

    def record_results(self, pass_id: int, results: Sequence[OrderResult]) -> None:
        """Store the per-order outcomes of a pass, after any already stored for it."""
        if not results:
            return
        with self._db.tx(write=True) as conn:
            results_in(conn, pass_id, results)

    def history(
        self,
        job: str | None = None,
        limit: int = 50,
        *,
        since: datetime | None = None,
        result: str | None = None,
    ) -> list[PassRecord]:
        """The latest passes, newest first, of one job or of all; optionally only those started at or after
        ``since`` and only those that ended with ``result``."""
        query = _pass_query().order_by(t.passes.c.started_at_ms.desc(), t.passes.c.id.desc()).limit(limit)
        if job is not None:
            query = query.where(t.passes.c.job == job)
        if since is not None:
            query = query.where(t.passes.c.started_at_ms >= to_ms(since))
        if result is not None:
            query = query.where(t.passes.c.result == result)
        with self._db.tx(write=False) as conn:
            return [_pass_record(row) for row in conn.execute(query)]

    def known_jobs(self) -> frozenset[str]:
        """Every job name the store holds anything for: passes, tracked orders, flags, leases, daemon schedules."""
        tables = (t.passes, t.tracked_orders, t.job_flags, t.leases, t.daemon_jobs)
        names = union(*(select(table.c.job) for table in tables))
        with self._db.tx(write=False) as conn:
            return frozenset(str(row[0]) for row in conn.execute(names))

    def pass_detail(self, pass_id: int) -> PassDetail | None:
        """One pass with its batches and per-order results, or None if there is no such pass."""
        with self._db.tx(write=False) as conn:
            row = conn.execute(_pass_query().where(t.passes.c.id == pass_id)).first()
            if row is None:
                return None
            b = t.batches.c
            batches = conn.execute(select(t.batches).where(b.pass_id == pass_id).order_by(b.batch_index, b.id)).all()
            results = conn.execute(
                select(t.order_results).where(t.order_results.c.pass_id == pass_id).order_by(t.order_results.c.seq)
            ).all()
        return PassDetail(
            record=_pass_record(row),
            batches=tuple(
                BatchRecord(
                    id=r.id,
                    index=r.batch_index,
                    recorded_at=cell("batches", "recorded_at_ms", r.recorded_at_ms, stored_ms),
                    request=cell("batches", "request", r.request, load_json),
                    answer=cell("batches", "answer", r.answer, load_json),
                    error=r.error,
                )
                for r in batches
            ),
            results=tuple(_order_result(r) for r in results),
            fills=tuple(f.to_dict() for f in self.fills(row.job, pass_id=pass_id)),
        )

    # Tracked order ids and in-flight batches (ownership: tracked).

    def tracked_ids(self, job: str) -> frozenset[str]:
        """Ids of the orders ``job`` placed and still owns."""
        with self._db.tx(write=False) as conn:
            return tracked_ids_in(conn, job)

    def track(self, job: str, ids: Iterable[str]) -> None:
        """Add order ids to those ``job`` owns (ids already tracked are left as they are)."""
        with self._db.tx(write=True) as conn:
            track_in(self._db, conn, job, ids, _now())

    def untrack(self, job: str, ids: Iterable[str]) -> None:
        """Forget order ids (cancelled or filled orders); unknown ids are ignored."""
        with self._db.tx(write=True) as conn:
            untrack_in(conn, job, ids)

    def begin_in_flight(
        self,
        job: str,
        pass_id: int | None,
        placements: Sequence[tuple[Side | str, Decimal | str, Decimal | str]],
        *,
        created_at: datetime | None = None,
    ) -> int:
        """Record, before sending, what a batch of ``job`` will place; returns the id to close it by."""
        checked = [Placement.of(side, price, volume) for side, price, volume in placements]
        with self._db.tx(write=True) as conn:
            return begin_in_flight_in(conn, job, pass_id, checked, created_at or _now())

    def end_in_flight(self, in_flight_id: int, confirmed_ids: Iterable[str] = ()) -> None:
        """Close an in-flight record, tracking ``confirmed_ids`` for its job in the same transaction.

        Closing twice is harmless; an unknown id is a ``ValueError``.
        """
        with self._db.tx(write=True) as conn:
            close_in_flight_in(self._db, conn, in_flight_id, confirmed_ids, _now())

    def open_in_flight(self, job: str) -> list[InFlight]:
        """In-flight records of ``job`` never closed (their process died mid-batch), oldest first."""
        with self._db.tx(write=False) as conn:
            return open_in_flight_in(conn, job)

    # Pause switch.

    def set_paused(self, job: str, paused: bool) -> None:
        """Pause or resume ``job``: a paused job's passes are skipped until it is resumed."""
        with self._db.tx(write=True) as conn:
            set_paused_in(self._db, conn, job, paused, _now())

    def pause_for_risk(self, job: str, paused_by: str, reason: str, now: datetime) -> None:
        """Pause ``job`` for a guard (``paused_by``) with its reason, in one transaction."""
        with self._db.tx(write=True) as conn:
            pause_for_risk_in(self._db, conn, job, paused_by, reason, now)

    def is_paused(self, job: str) -> bool:
        """Whether ``job`` is paused (a job never mentioned is not)."""
        with self._db.tx(write=False) as conn:
            return paused_in(conn, job)

    def paused_jobs(self) -> frozenset[str]:
        """Names of every paused job."""
        with self._db.tx(write=False) as conn:
            return frozenset(conn.execute(select(t.job_flags.c.job).where(t.job_flags.c.paused)).scalars())

    # Leases.


def _order_result(row: Row[Any]) -> OrderResult:
    """One stored order result; a garbage action, side, status, price or volume is named."""
    checks = {"action": ActionKind, "side": Side, "status": OutcomeStatus, "price": stored_decimal}
    for column, read in {**checks, "volume": stored_decimal}.items():
        cell("order_results", column, getattr(row, column), read)
    return OrderResult(**{k: getattr(row, k) for k in RESULT_FIELDS})


def _counts(text: str | None) -> dict[str, int]:
    return {str(k): int(v) for k, v in (load_json(text) or {}).items()}


def _pass_query() -> Any:
    """SELECT of passes with the number of batches of each."""
    count = select(func.count()).select_from(t.batches).where(t.batches.c.pass_id == t.passes.c.id).scalar_subquery()
    return select(t.passes, count.label("batch_count"))


def _pass_record(row: Row[Any]) -> PassRecord:
    return PassRecord(
        id=row.id,
        job=row.job,
        mode=cell("passes", "mode", row.mode, Mode),
        started_at=cell("passes", "started_at_ms", row.started_at_ms, stored_ms),
        duration_ms=row.duration_ms,
        result=None if row.result is None else cell("passes", "result", row.result, PassResult),
        summary=cell("passes", "summary", row.summary, _counts),
        warnings=cell("passes", "warnings", row.warnings, lambda text: tuple(load_json(text) or ())),
        error=row.error,
        reference_price=row.reference_price,
        fingerprint=row.fingerprint,
        batch_count=int(row.batch_count),
        **pass_origin(row),
    )
