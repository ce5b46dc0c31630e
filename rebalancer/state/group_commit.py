"""Group commit: the write transactions of a process's passes, several in one SQLite transaction.

SQLite has one write lock per file, and a commit costs a WAL sync. With a thousand jobs every five seconds, a
process's pass threads spent most of their time queued for that lock, each polling it through SQLite's busy
handler (which sleeps up to 100 ms between tries), for a transaction that holds it about 3 ms. Here the threads of
one process queue in Python instead: the first writer leads, runs every write queued so far in one ``BEGIN
IMMEDIATE`` transaction, commits, and hands the lead to the next one waiting.

Each write keeps its own outcome: with two or more in a group, each runs in a savepoint, so one that fails (a
value the store refuses, a lost lease) rolls back alone and its caller gets its error; the others commit. A caller
returns only once its own write is committed, so a write-ahead is still on disk before its batch is sent. When the
transaction itself fails (the lock never came, the commit failed, SQLite rolled the whole transaction back), every
caller in the group gets that error and nothing of the group stays.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from rebalancer.errors import StateError

T = TypeVar("T")

Write = Callable[[Connection], T]


class _Ticket(Generic[T]):
    """One caller's write, and what came of it."""

    __slots__ = ("done", "error", "result", "woken", "write")

    def __init__(self, write: Write[T]) -> None:
        self.write = write
        self.woken: threading.Event | None = None  # a caller that waits for another's commit waits on this
        self.done = False
        self.result: T | None = None
        self.error: BaseException | None = None


class GroupCommit:
    """Runs the writes handed to ``run`` in as few transactions as the callers' timing allows.

    ``begin`` opens one writing transaction (committed when its block ends, its failures already ``StateError``);
    ``failure`` turns a database error of one write into the ``StateError`` its caller sees; ``largest`` caps a
    group, so that one transaction never holds the lock for long.
    """

    def __init__(
        self,
        begin: Callable[[], AbstractContextManager[Connection]],
        failure: Callable[[BaseException], StateError],
        largest: int,
    ) -> None:
        self._begin = begin
        self._failure = failure
        self._largest = largest
        self._lock = threading.Lock()
        self._waiting: list[_Ticket[Any]] = []
        self._leading = False  # a caller is committing a group; when False, nobody is waiting either

    @property
    def leading(self) -> bool:
        """Whether a caller is committing a group now."""
        return self._leading

    @property
    def waiting(self) -> int:
        """How many writes wait for a transaction (the group being committed not counted)."""
        return len(self._waiting)

    def run(self, write: Write[T]) -> T:
        """Run ``write`` on an open writing transaction and return its result once that transaction is committed.

        ``write`` runs on whichever caller's thread leads its group, so it must not depend on its own thread, nor
        call ``run`` itself.
        """
        ticket: _Ticket[T] = _Ticket(write)
        with self._lock:
            leads = not self._leading
            if leads:
                self._leading = True
            else:
                ticket.woken = threading.Event()
                self._waiting.append(ticket)
        if not leads:
            ticket.woken.wait()  # type: ignore[union-attr]  # set just above
        if not ticket.done:  # the lead is this caller's: first in line, or handed on by the last leader
            self._lead(ticket)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result  # type: ignore[return-value]  # set by the write that succeeded

    def _lead(self, own: _Ticket[Any]) -> None:
        """Commit ``own`` with the writes waiting now, wake their callers, and hand the lead on to the next one
        waiting."""
        with self._lock:
            group = [own, *self._waiting[: self._largest - 1]]
            del self._waiting[: self._largest - 1]
        try:
            self._commit(group)
        finally:
            with self._lock:
                successor = self._waiting.pop(0) if self._waiting else None
                self._leading = successor is not None
            for ticket in group:
                ticket.done = True
                if ticket.woken is not None:
                    ticket.woken.set()
            if successor is not None:
                successor.woken.set()  # type: ignore[union-attr]  # every waiting ticket has its event

    def _commit(self, group: list[_Ticket[Any]]) -> None:
        """One transaction for ``group``; a write alone needs no savepoint (its failure is the transaction's)."""
        try:
            with self._begin() as conn:
                if len(group) == 1:
                    group[0].result = group[0].write(conn)
                else:
                    for ticket in group:
                        self._run_one(conn, ticket)
        except BaseException as exc:
            shared = len(group) > 1 and isinstance(exc, StateError)
            for ticket in group:
                if ticket.error is None:
                    ticket.error = StateError(str(exc)) if shared else exc  # each caller raises its own
                    ticket.result = None
            if not isinstance(exc, Exception):
                raise

    def _run_one(self, conn: Connection, ticket: _Ticket[Any]) -> None:
        """Run one write of a group in its own savepoint; a failure stays its own unless SQLite ended the
        transaction with it (then the group's transaction fails)."""
        try:
            with conn.begin_nested():
                ticket.result = ticket.write(conn)
        except (SQLAlchemyError, sqlite3.Error) as exc:
            cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig else exc
            ticket.error = self._failure(cause)
            if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                raise ticket.error from exc
        except Exception as exc:
            ticket.error = exc
