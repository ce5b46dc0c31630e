"""A pass's own round trips to the state store: everything it needs read in one transaction, a pass that sent
nothing recorded in one statement.

A quiet daemon pass used to open eight transactions (tracked ids twice, in-flight records, last reference, held
levels, a pass row started and then finished); now it opens two: ``pass_inputs`` and ``record_pass``. The writes of
a pass that sends (in-flight marker, batches, outcome) stay where they are: they must land before and after sending.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Connection, select

from rebalancer.core.fills import Seen
from rebalancer.models import Side
from rebalancer.state import schema as t
from rebalancer.state.db import Database, inserted_id
from rebalancer.state.fills import last_fills_in, watched_in
from rebalancer.state.records import (
    InFlight,
    Placement,
    cell,
    check_pass_key,
    pass_outcome,
    stored_decimal,
    stored_ms,
    to_ms,
)
from rebalancer.state.rejections import held_levels_in, last_reference_in
from rebalancer.vocab import Mode, PassResult

_CHUNK = 500  # ids per IN (...) clause, well below SQLite's bound-parameter limit


@dataclass(frozen=True, slots=True)
class PassInputs:
    """What one pass reads from the store: owned ids, unconfirmed batches, and what the guards need."""

    tracked: frozenset[str]
    in_flight: tuple[InFlight, ...]
    last_reference: Decimal | None
    held_levels: Mapping[str, str]
    watched: Mapping[str, Seen] = field(default_factory=dict)  # orders whose fills are learnt (``state.fills``)
    last_fills: Mapping[str, datetime] = field(default_factory=dict)  # per ladder level, its latest fill


class PassIO:
    """The pass methods of ``StateStore`` (which supplies ``_db``)."""

    _db: Database

    def pass_inputs(self, job: str, now: datetime) -> PassInputs:
        """Tracked ids, open in-flight records, the last observed reference and the levels held at ``now``."""
        with self._db.tx(write=False) as conn:
            return PassInputs(
                tracked=tracked_ids_in(conn, job),
                in_flight=tuple(open_in_flight_in(conn, job)),
                last_reference=last_reference_in(conn, job),
                held_levels=held_levels_in(conn, job, now),
                watched=watched_in(conn, job),
                last_fills=last_fills_in(conn, job),
            )

    def record_pass(
        self,
        job: str,
        mode: Mode,
        started_at: datetime,
        *,
        result: PassResult,
        summary: Mapping[str, int],
        warnings: Sequence[str] = (),
        error: str | None = None,
        duration_ms: int | None = None,
        reference_price: str | None = None,
        fingerprint: str | None = None,
    ) -> int:
        """Record a whole pass that is already over (one INSERT); returns its id. For passes that sent nothing."""
        check_pass_key(job, mode)
        values = {
            "job": job,
            "mode": mode,
            "started_at_ms": to_ms(started_at),
            **pass_outcome(
                result=result,
                summary=summary,
                warnings=warnings,
                error=error,
                duration_ms=duration_ms,
                reference_price=reference_price,
                fingerprint=fingerprint,
            ),
        }
        with self._db.tx(write=True) as conn:
            return inserted_id(conn.execute(t.passes.insert().values(**values)))


def tracked_ids_in(conn: Connection, job: str) -> frozenset[str]:
    """Ids of the orders ``job`` placed and still owns, inside an open transaction."""
    rows = conn.execute(select(t.tracked_orders.c.order_id).where(t.tracked_orders.c.job == job))
    return frozenset(rows.scalars())


def open_in_flight_in(conn: Connection, job: str) -> list[InFlight]:
    """In-flight records of ``job`` never closed, oldest first, inside an open transaction."""
    f, p = t.in_flight.c, t.in_flight_placements.c
    heads = conn.execute(select(t.in_flight).where(f.job == job, f.closed_at_ms.is_(None)).order_by(f.id)).all()
    ids = [h.id for h in heads]
    placements: dict[int, list[Placement]] = {i: [] for i in ids}
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            select(t.in_flight_placements)
            .where(p.in_flight_id.in_(ids[start : start + _CHUNK]))
            .order_by(p.in_flight_id, p.seq)
        )
        for r in rows:
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
