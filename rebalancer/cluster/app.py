"""The procrastinate application of a cluster: its connection, its schema, its two tasks and its recovery.

- ``reconcile(job, due_ms)``: one pass of one job, deferred with ``lock=job`` (one job's passes never overlap) and
  ``queueing_lock=job`` (at most one pass per job waits).
- The dispatch (``rebalancer.cluster.dispatcher.dispatch_every``) and ``end_stalled_jobs`` are not queued tasks:
  every member's worker loop runs them, the dispatch every ``CLUSTER_DISPATCH_SECONDS`` (a due job is claimed in the
  store by the member that finds it first), the recovery every ``CLUSTER_RECOVER_SECONDS`` (it ends the jobs of
  members whose worker heartbeat stopped, which frees their locks so the job continues on a live member). As
  periodic queued tasks they cost every member a deferral, a wake-up and a fetch each second, and one member a
  finish more: half of an idle member's CPU.
- ``dispatch`` and ``recover`` stay registered as plain tasks, so that the ones an older member deferred as periodic
  tasks still run during a rolling upgrade.

The queue lives in its own PostgreSQL schema (``QUEUE_SCHEMA``) of the state store's database, created on start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import make_url

from rebalancer.cluster.dispatcher import dispatch_due
from rebalancer.defaults import CLUSTER_PG_SESSION, CLUSTER_STALLED_AFTER_SECONDS
from rebalancer.errors import StateError

if TYPE_CHECKING:
    import procrastinate
    import psycopg_pool

    from rebalancer.cluster.member import Member

log = logging.getLogger("rebalancer.cluster")

QUEUE_SCHEMA = "rebalancer_queue"
RECONCILE = "rebalancer.reconcile"
IDLE_CHECK_SECONDS = 5.0  # a queue connection not handed out for longer is checked before use
_SCHEMA_LOCK = 0x7262_7175_6575  # advisory lock key serialising the queue schema's creation


def conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (the driver part dropped)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise StateError("--cluster needs a PostgreSQL state store: set REBALANCER_STATE_URL to a postgresql:// URL")
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def ensure_queue_schema(url: str) -> None:
    """Create the queue's schema and procrastinate's tables in it, once, whichever member starts first."""
    import psycopg
    from procrastinate.schema import SchemaManager

    try:
        with psycopg.connect(conninfo(url), autocommit=False) as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {QUEUE_SCHEMA}")
            exists = conn.execute("SELECT to_regclass(%s)", (f"{QUEUE_SCHEMA}.procrastinate_jobs",)).fetchone()
            if exists is None or exists[0] is None:
                conn.execute(f"SET LOCAL search_path TO {QUEUE_SCHEMA}")
                conn.execute(SchemaManager.get_schema())
                log.info("created the job queue's tables", extra={"schema": QUEUE_SCHEMA})
            conn.commit()
    except psycopg.Error as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StateError(f"cluster queue: {first_line}") from exc


def make_app(url: str) -> procrastinate.App:
    """The procrastinate App on the state store's database, its tasks registered."""
    import procrastinate

    settings = {"search_path": QUEUE_SCHEMA, **CLUSTER_PG_SESSION}
    options = " ".join(f"-c {name}={value}" for name, value in settings.items())
    connector = procrastinate.PsycopgConnector(
        conninfo=conninfo(url), kwargs={"options": options}, min_size=1, max_size=8, pool_factory=_queue_pool
    )
    app = procrastinate.App(connector=connector)
    _register_tasks(app)
    return app


def _queue_pool(**options: Any) -> psycopg_pool.AsyncConnectionPool:
    """procrastinate's connection pool, its connections in autocommit, checking one before use only when it was
    not handed out for a while.

    Every queue query is one statement (procrastinate's procedures): in autocommit it is one round trip, where an
    implicit transaction added a BEGIN and a COMMIT to each (a pass's fetch and finish among them).

    procrastinate asks the pool to check every connection it hands out (a round trip to the server each time, so
    several per pass); a connection handed out within ``IDLE_CHECK_SECONDS`` was alive then, and one that died
    since fails its query, which the worker survives (it is restarted) and the pool replaces. The time is noted as a
    connection is handed out, not as it comes back: a pool with a return hook sends every return through its
    background worker, a task and several event-loop turns per query.
    """
    from psycopg_pool import AsyncConnectionPool

    handed: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()

    async def check_if_idle(conn: Any) -> None:
        now = time.monotonic()
        last = handed.get(conn)
        if last is None or now - last > IDLE_CHECK_SECONDS:
            await AsyncConnectionPool.check_connection(conn)
        handed[conn] = now

    async def autocommit(conn: Any) -> None:
        await conn.set_autocommit(True)

    return AsyncConnectionPool(**{**options, "configure": autocommit, "check": check_if_idle})


def _register_tasks(app: procrastinate.App) -> None:
    from procrastinate import JobContext

    @app.task(name=RECONCILE, pass_context=True)
    def reconcile(context: JobContext, job: str, due_ms: int) -> str:
        member: Member = context.additional_context["member"]
        return member.reconcile(job, due_ms, pass_id=int(context.job.id or 0))

    @app.task(name="rebalancer.dispatch", pass_context=True)
    async def dispatch(context: JobContext, timestamp: int) -> int:
        """A dispatch an older member deferred as a periodic task (during a rolling upgrade): run, not refused."""
        member: Member = context.additional_context["member"]
        return await dispatch_due(member.store, reconcile)

    @app.task(name="rebalancer.recover", pass_context=True)
    async def recover(context: JobContext, timestamp: int) -> int:
        """A recovery an older member deferred as a periodic task (during a rolling upgrade): run, not refused."""
        return await end_stalled_jobs(context.app)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop for the queue's worker where uvloop is installed (the ``cluster`` extra brings it, except
    on Windows), else None: asyncio's own.

    The worker's loop runs procrastinate's fetch and finish of every pass and the dispatch, each a few queries on
    psycopg's asynchronous connections; asyncio's pure-Python loop (a reader added and removed per wait, a handle per
    callback) cost a member about half a millisecond of CPU per pass more than uvloop
    (``bench/RESULTS-cluster.md``).
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def recover_every(app: Any, seconds: float, stop: asyncio.Event) -> None:
    """``end_stalled_jobs`` every ``seconds`` until ``stop``; a failure is logged and the next round tries again."""
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        if stop.is_set():
            return
        try:
            await end_stalled_jobs(app)
        except Exception as exc:  # the database away for a while: the worker notices too, and is restarted
            log.warning("recovery of stalled passes failed", extra={"error": str(exc)})


async def end_stalled_jobs(app: Any) -> int:
    """End the running jobs of workers whose heartbeat stopped, freeing their locks; how many were ended.

    A job is deleted rather than retried: its next pass is dispatched afresh when due (or already waits). The lease
    its pass held still protects the book: the pass that takes over cannot write before that lease is over.
    """
    from procrastinate import jobs

    ended = 0
    for stalled in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=CLUSTER_STALLED_AFTER_SECONDS):
        try:
            await app.job_manager.finish_job(stalled, status=jobs.Status.FAILED, delete_job=True)
        except Exception as exc:  # ended meanwhile by another member or by its own worker
            log.debug("stalled job already ended", extra={"queue_job_id": stalled.id, "error": str(exc)})
            continue
        ended += 1
        log.warning(
            "ended the pass of an unresponsive member",
            extra={"task": stalled.task_name, "job": stalled.task_kwargs.get("job"), "queue_job_id": stalled.id},
        )
    return ended
