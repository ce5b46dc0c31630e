"""The state store's database: an engine that several processes can share, and its schema kept current.

SQLite (the default) runs in WAL mode with a busy timeout and foreign keys on; each writing transaction
starts with ``BEGIN IMMEDIATE`` so that concurrent writers wait for the lock at their start (asking again every
millisecond or two, for at most the busy timeout) instead of failing with "database is locked" when a read turns
into a write. ``tx`` sends that ``BEGIN`` to the driver's connection itself: through SQLAlchemy (a ``begin`` event
running ``exec_driver_sql``) it cost a whole statement's execution and kept the engine's event dispatch on for
every other statement. A process's pass writes share transactions (``write``, ``rebalancer.state.group_commit``).
PostgreSQL needs nothing special: every check-then-write the store does is a single statement. Database failures
surface as ``StateError`` with a one-line message and no password.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, CursorResult, Table, create_engine, event, func, inspect, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from rebalancer.defaults import (
    BUSY_RETRY_FIRST_SECONDS,
    BUSY_RETRY_LONGEST_SECONDS,
    BUSY_TIMEOUT_MS,
    GROUP_COMMIT_LARGEST,
)
from rebalancer.errors import StateError
from rebalancer.logs import redact, register_secret
from rebalancer.state import schema
from rebalancer.state.group_commit import GroupCommit, Write
from rebalancer.state.hot import HotConnection

_PG_INIT_LOCK = 0x7265_6261_6C61  # advisory lock key serialising concurrent schema creation on PostgreSQL
SUPPORTED = ("sqlite", "postgresql")
T = TypeVar("T")


_SECRET_QUERY_KEY = re.compile(r"pass|pwd|secret|token", re.IGNORECASE)


def parse_url(url: str) -> URL:
    """The parsed state store URL, its password and secret query values registered for redaction.

    An unparsable URL is refused without echoing it: it may hold a password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise StateError(
            "the state store URL is not a database URL such as sqlite:///path/state.db or "
            "postgresql+psycopg://user@host/database"
        ) from None
    for value in [parsed.password, *_secret_query(parsed).values()]:
        if value:
            register_secret(str(value))
    return parsed


def shown_url(parsed: URL) -> str:
    """The URL as messages may show it: the password and secret-like query values (``?password=``) masked."""
    masked = parsed.update_query_dict({key: "***" for key in _secret_query(parsed)})
    return masked.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _secret_query(parsed: URL) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else ",".join(value)
        for key, value in parsed.query.items()
        if _SECRET_QUERY_KEY.search(key)
    }


class Database:
    """An SQLAlchemy engine on a SQLite or PostgreSQL URL, with the state store's tables in place."""

    def __init__(
        self, url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, pg_settings: Mapping[str, str] | None = None
    ) -> None:
        parsed = parse_url(url)
        self.display = shown_url(parsed)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in SUPPORTED:
            raise StateError(f"state store {self.display}: only SQLite and PostgreSQL are supported")
        self._file: Path | None = None
        self._identity: tuple[int, int] | None = None
        self._insert_new: dict[str, Any] = {}
        self._busy_timeout_ms = int(busy_timeout_ms)
        self._busy_handler_back = f"PRAGMA busy_timeout = {self._busy_timeout_ms}"
        if self.dialect == "sqlite" and parsed.database not in (None, "", ":memory:"):
            self._file = Path(parsed.database).expanduser()
            self._file.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._engine = create_engine(parsed)
        except (SQLAlchemyError, ImportError) as exc:
            raise StateError(f"state store {self.display}: {exc}") from exc
        if self.dialect == "sqlite":
            self._configure_sqlite(busy_timeout_ms)
        elif pg_settings:
            self._configure_postgresql(pg_settings)
        try:
            self._init_schema()
        except BaseException:
            self._engine.dispose()
            raise
        self._identity = self._file_identity()
        self._group = GroupCommit(lambda: self.tx(write=True), self._failure, GROUP_COMMIT_LARGEST)

    def _file_identity(self) -> tuple[int, int] | None:
        """(device, inode) of the SQLite file, or None when it is gone (or the store is not a file)."""
        if self._file is None:
            return None
        try:
            stat = self._file.stat()
        except OSError:
            return None
        return (stat.st_dev, stat.st_ino)

    def check_file(self) -> None:
        """Raise ``StateError`` when the SQLite file was deleted or replaced since it was opened.

        A process keeps writing to a deleted file it holds open: its records would vanish with it and its leases
        would no longer keep another process off its jobs. Checked before every transaction (one ``stat``).
        """
        if self._identity is not None and self._file_identity() != self._identity:
            raise StateError(
                f"state store {self.display}: the database file was deleted or replaced while this process ran; "
                "its leases no longer protect the jobs: stop this process and start it again"
            )

    def _configure_sqlite(self, busy_timeout_ms: int) -> None:
        """Per-connection pragmas; ``tx``, not the sqlite3 module, opens transactions (so writers wait for each
        other)."""

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

    def _configure_postgresql(self, settings: Mapping[str, str]) -> None:
        """Session settings (``SET name = value``) on every new PostgreSQL connection, e.g. lock timeouts."""

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            autocommit = dbapi_connection.autocommit
            dbapi_connection.autocommit = True
            with dbapi_connection.cursor() as cursor:
                for name, value in settings.items():
                    cursor.execute(f"SET {name} = '{value}'")
            dbapi_connection.autocommit = autocommit

    def _init_schema(self) -> None:
        """Create missing tables and check the schema version, one process at a time."""
        with self.tx(write=True) as conn:
            if self.dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_INIT_LOCK})
            schema.metadata.create_all(conn)
            for index in schema.passes.indexes:  # indexes added since a store was made (create_all skips them)
                index.create(conn, checkfirst=True)
            version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
            if version is None:
                conn.execute(schema.schema_version.insert().values(version=schema.SCHEMA_VERSION))
            elif version < schema.SCHEMA_VERSION:
                _migrate(conn, version)
            elif version > schema.SCHEMA_VERSION:
                raise StateError(
                    f"state store {self.display} has schema version {version}; "
                    f"this rebalancer understands up to {schema.SCHEMA_VERSION}: upgrade rebalancer"
                )

    @contextmanager
    def tx(self, *, write: bool) -> Iterator[Connection]:
        """One transaction, committed if the block succeeds; database failures become ``StateError``."""
        self.check_file()
        try:
            with self._engine.connect() as conn, conn.begin():
                if self.dialect == "sqlite":
                    driver: Any = conn.connection.driver_connection
                    if write:
                        self._begin_immediate(driver)
                    else:
                        driver.execute("BEGIN")
                yield conn
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise self._failure(exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc) from exc

    def write(self, write: Write[T]) -> T:
        """Run ``write`` in a writing transaction and return its result once committed: on a SQLite file, in one
        transaction with the writes other threads of this process hand in at the same time
        (``rebalancer.state.group_commit``), since they would otherwise queue one by one for its one write lock.
        On PostgreSQL, which locks rows, each write has a transaction of its own; so has a write to an in-memory
        SQLite database, which is a database of each thread's own."""
        if self._file is None:
            with self.tx(write=True) as conn:
                return write(conn)
        return self._group.run(write)

    def _begin_immediate(self, driver: sqlite3.Connection) -> None:
        """``BEGIN IMMEDIATE``, asked again every millisecond or two while another process holds the write lock,
        for at most the busy timeout (then SQLite's "database is locked").

        SQLite's own busy handler sleeps longer and longer between tries, up to 100 ms each: with two processes
        of a fleet taking turns at the lock for a few milliseconds at a time, a waiting writer slept through most
        of its turns while the lock stood free.
        """
        driver.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + self._busy_timeout_ms / 1000
            pause = BUSY_RETRY_FIRST_SECONDS
            while True:
                try:
                    driver.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() + pause > deadline:
                        raise
                time.sleep(pause)
                pause = min(pause * 2, BUSY_RETRY_LONGEST_SECONDS)
        finally:
            driver.execute(self._busy_handler_back)

    @contextmanager
    def driver(self) -> Iterator[HotConnection]:
        """PostgreSQL only: the pooled psycopg connection itself, for a cluster member's hot statements
        (``rebalancer.state.hot``), in autocommit: each statement commits by itself, and a script that opens a
        transaction (``HotStatement(before="BEGIN")``) commits it in a later script. A transaction left open or failed
        when the block ends is rolled back. Failures become ``StateError`` as in ``tx``; a connection that broke is
        dropped from the pool."""
        import psycopg

        try:
            pooled = self._engine.raw_connection()
        except SQLAlchemyError as exc:
            raise self._failure(exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc) from exc
        pg: Any = pooled.driver_connection
        try:
            pg.autocommit = True
            yield HotConnection(pg)
        except psycopg.Error as exc:
            if pg.broken or pg.closed:
                pooled.invalidate()
            raise self._failure(exc) from exc
        finally:
            try:
                if not pg.closed:
                    if pg.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        pg.rollback()  # the block failed half way: nothing of it stays
                    pg.autocommit = False
            except psycopg.Error:
                pooled.invalidate()
            pooled.close()

    def _failure(self, cause: BaseException) -> StateError:
        """A database failure as the one-line ``StateError`` every caller of the store sees.

        The stored values were redacted on their way in (``schema.RedactedString``, ``HotStatement.params``); the
        database's own message may quote a statement's value all the same.
        """
        first_line = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return StateError(f"state store {self.display}: {redact(first_line)}")

    def upsert(self, table: Table) -> Any:
        """An INSERT of this database's dialect, which offers ``on_conflict_do_nothing/update``."""
        return upsert_for(self.dialect, table)

    def insert_new(self, table: Table) -> Any:
        """An INSERT that leaves rows already there as they are (``ON CONFLICT DO NOTHING``), built once per table:
        passes run it often, and building a statement costs more CPU than running it."""
        statement = self._insert_new.get(table.name)
        if statement is None:
            statement = self._insert_new[table.name] = self.upsert(table).on_conflict_do_nothing()
        return statement

    def close(self) -> None:
        """Release every connection."""
        self._engine.dispose()


def _migrate(conn: Connection, version: int) -> None:
    """Bring a store of an older schema ``version`` up to the current one (new tables exist already)."""
    if version < 2:
        # Version 2: fencing epochs on leases. The cluster's tables are new and made by ``create_all``.
        conn.execute(text("ALTER TABLE leases ADD COLUMN epoch BIGINT NOT NULL DEFAULT 0"))
    watched = {column["name"] for column in inspect(conn).get_columns("watched_orders")}
    if version < 3 and "volume" not in watched:  # create_all made the table afresh for a store older than it
        # Version 3: the volume of each watched order, the bound of the fills learnt from it.
        conn.execute(text("ALTER TABLE watched_orders ADD COLUMN volume VARCHAR(64)"))
    passes = {column["name"] for column in inspect(conn).get_columns("passes")}
    for column in ("wake", "prices") if version < 4 else ():
        # Version 4: why each pass ran and where its prices came from; older passes keep NULL (not known).
        if column not in passes:
            conn.execute(text(f"ALTER TABLE passes ADD COLUMN {column} VARCHAR(16)"))
    conn.execute(schema.schema_version.update().values(version=schema.SCHEMA_VERSION))


def upsert_for(dialect: str, table: Table) -> Any:
    """An INSERT of ``dialect`` (``sqlite`` or ``postgresql``), which offers ``on_conflict_do_nothing/update``."""
    return sqlite_insert(table) if dialect == "sqlite" else pg_insert(table)


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row an INSERT just added (``StateError`` if the database gave none)."""
    key = result.inserted_primary_key
    if key is None:
        raise StateError("the database returned no id for the new row")
    return int(key[0])
