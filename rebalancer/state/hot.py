"""A cluster member's hot statements on PostgreSQL: built with SQLAlchemy, compiled once, run on the driver itself.

A member runs a few statements of its own on every pass: the pass's start (version, pause switch and lease), its
record, a block of shared rate tokens, the fence before a write (a daemon on PostgreSQL runs that one too). Through
SQLAlchemy's execution each cost about 0.2 ms of CPU beyond what psycopg itself spends (the statement's cache
lookup, its bind and result processing, the transaction's bookkeeping), and a single statement paid two more round
trips for ``BEGIN`` and ``COMMIT``. ``HotStatement`` keeps SQLAlchemy as the one place a statement is built (and
type-cast, exactly as SQLAlchemy sends it), compiled to psycopg's text once; ``Database.driver`` lends the pooled
psycopg connection in autocommit. A transaction of several statements is scripts bound client-side, each one round
trip (``HotConnection.script``: ``BEGIN`` with the first, ``COMMIT`` with the last).

Every text parameter is redacted on its way in, as the columns' own type does for SQLAlchemy's statements
(``rebalancer.state.schema.RedactedString``): no secret reaches the store by this road either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.sql import ClauseElement

from rebalancer.logs import redact


class HotStatement:
    """One statement compiled once for psycopg (``%(name)s`` parameters, SQLAlchemy's casts kept), with the
    values its construct fixed itself (``epoch=1``) as defaults under the caller's; ``before`` and ``after`` are
    plain statements sent with it in one round trip (``HotConnection.script``), such as ``BEGIN`` and ``COMMIT``."""

    __slots__ = ("defaults", "sql")

    def __init__(self, statement: ClauseElement, *, before: str = "", after: str = "") -> None:
        from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

        compiled: Any = statement.compile(dialect=PGDialect_psycopg())  # an SQLCompiler: its binds and their names
        self.sql: str = "; ".join(part for part in (before, compiled.string, after) if part)
        self.defaults: dict[str, Any] = {
            compiled.bind_names[bind]: bind.value for bind in compiled.binds.values() if not bind.required
        }

    def params(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The statement's parameters: its own defaults, then ``values``, every text redacted."""
        merged = {**self.defaults, **values}
        return {name: redact(value) if isinstance(value, str) else value for name, value in merged.items()}


class HotConnection:
    """A pooled psycopg connection lent by ``Database.driver``: runs ``HotStatement`` s."""

    __slots__ = ("_pg",)

    def __init__(self, pg: Any) -> None:
        self._pg = pg

    def rows(self, statement: HotStatement, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row the statement returns (none for a statement without ``RETURNING``)."""
        cursor = self._pg.execute(statement.sql, statement.params(values))
        return cursor.fetchall() if cursor.description is not None else []

    def first(self, statement: HotStatement, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The statement's first row, or None."""
        cursor = self._pg.execute(statement.sql, statement.params(values))
        return cursor.fetchone() if cursor.description is not None else None

    def script(self, statement: HotStatement, values: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row of the first result that has rows, or None, of a statement sent with its parameters bound
        client-side: one round trip however many statements its text holds (``HotStatement``'s ``before`` and
        ``after``), each with a snapshot of its own. A failing statement ends the script there; its transaction is
        left failed, for ``Database.driver`` to roll back."""
        from psycopg import ClientCursor

        cursor = ClientCursor(self._pg)
        cursor.execute(statement.sql, statement.params(values))
        while cursor.description is None:
            if not cursor.nextset():
                return None
        return cursor.fetchone()

    def named(self, statement: HotStatement, values: Mapping[str, Any]) -> dict[str, Any] | None:
        """The statement's first row by column name, or None."""
        cursor = self._pg.execute(statement.sql, statement.params(values))
        row = cursor.fetchone()
        if row is None:
            return None
        return {column.name: value for column, value in zip(cursor.description, row, strict=True)}
