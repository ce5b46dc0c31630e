"""A cluster member's process: joins the cluster, runs the queue's worker in a thread, reloads, stops cleanly.

The main thread waits for signals and job-file edits (as the single daemon does); a heartbeat thread proves the
member alive and renews the leases of its running passes every second; the worker thread runs procrastinate's
worker with four concurrent passes per core (``--concurrency``; a pass mostly waits on the network), and starts it
again if it fails (for instance after the member was frozen so long that its worker registration was pruned). The
worker's event loop is uvloop's where it is installed (``event_loop_factory``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

from prometheus_client import Gauge

from rebalancer.cluster.app import RECONCILE, ensure_queue_schema, event_loop_factory, make_app, recover_every
from rebalancer.cluster.dispatcher import dispatch_every
from rebalancer.cluster.member import Member
from rebalancer.cluster.view import ClusterView
from rebalancer.defaults import (
    CLUSTER_DISPATCH_SECONDS,
    CLUSTER_PASSES_PER_CORE,
    CLUSTER_RECOVER_SECONDS,
    CLUSTER_RENEW_SECONDS,
    CLUSTER_STALLED_AFTER_SECONDS,
    CLUSTER_WORKER_HEARTBEAT_SECONDS,
    STOP_WAIT_SECONDS,
)
from rebalancer.errors import ConfigError, JobFileError, Problem, RebalancerError
from rebalancer.notify import post
from rebalancer.scheduler.metrics import HealthServer, parse_address
from rebalancer.scheduler.pages import StatusPages
from rebalancer.scheduler.watch import StopAndReload, load, snapshot_mtimes, watch
from rebalancer.state.store import StateStore
from rebalancer.vocab import NotifyKind

log = logging.getLogger("rebalancer.cluster")

RESTART_PAUSE_SECONDS = 1.0


def require_postgresql(url: str) -> None:
    """Refuse a state store a cluster cannot share (one clear error line)."""
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        raise ConfigError(
            "--cluster needs a PostgreSQL state store shared by every member: "
            "set REBALANCER_STATE_URL to a postgresql+psycopg:// URL"
        )


class ClusterSupervisor(StopAndReload):
    """Runs one member until a stop signal."""

    def __init__(
        self,
        paths: Sequence[str],
        store: StateStore,
        url: str,
        *,
        concurrency: int | None = None,
        http: str | None = None,
        watch: bool = True,
    ) -> None:
        require_postgresql(url)
        self.paths = list(paths)
        self.url = url
        self.member = Member(store, concurrency=concurrency or CLUSTER_PASSES_PER_CORE * (os.cpu_count() or 1))
        Gauge(
            "rebalancer_cluster_member",
            "This process's member name (value 1).",
            ["member"],
            registry=self.member.metrics.registry,
        ).labels(self.member.name).set(1)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._signals = 0
        self._watch = watch
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker_stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._http: HealthServer | None = None
        if http:
            try:
                host, port = parse_address(http)
                pages = StatusPages(self.member, self.member.name, lambda now: ClusterView.read(store, now))
                self._http = HealthServer(self.member.metrics, host, port, self._ready.is_set, pages.respond)
            except ValueError as exc:
                raise ConfigError(f"--http: {exc}") from None
            except OSError as exc:
                raise ConfigError(f"--http: cannot listen on {http}: {exc.strerror or exc}") from None

    def run(self) -> None:
        """Join the cluster and serve until stopped."""
        since = snapshot_mtimes(self.paths)
        jobs = load(self.paths)
        ensure_queue_schema(self.url)
        self.member.start(jobs)
        heart = threading.Thread(target=self._beat, name="member-heartbeat", daemon=True)
        worker = threading.Thread(target=self._work, name="member-worker", daemon=True)
        heart.start()
        worker.start()
        if self._http is not None:
            self._http.start()
        log.info(
            "member started",
            extra={
                "member": self.member.name,
                "jobs": len(jobs),
                "concurrency": self.member.concurrency,
                "event_loop": "uvloop" if event_loop_factory() else "asyncio",
            },
        )

        def worker_alive() -> None:
            if not worker.is_alive():
                raise RebalancerError("the queue worker stopped unexpectedly")

        try:
            watch(
                self.paths,
                self._stop,
                self._reload,
                self._do_reload,
                since=since,
                files=self._watch,
                on_tick=worker_alive,
            )
        finally:
            log.info("stopping: waiting for running passes")
            self._stop_worker()
            worker.join(STOP_WAIT_SECONDS)
            self._stop.set()
            self.member.stop()
            if self._http is not None:
                self._http.stop()
            log.info("member stopped", extra={"member": self.member.name})

    def _do_reload(self) -> None:
        try:
            jobs = load(self.paths)
        except JobFileError as exc:
            for problem in exc.problems:
                log.error("reload refused, keeping the running jobs", extra={"problem": str(problem)})
            self._tell_refused(exc.problems)
            return
        self.member.reload(jobs)
        log.info("reloaded", extra={"jobs": len(jobs)})

    def _tell_refused(self, problems: Sequence[Problem]) -> None:
        """Tell the webhook of each running job whose file was refused (its first problem), as the daemon does."""
        first: dict[str, Problem] = {}
        for problem in problems:
            first.setdefault(problem.file, problem)
        for job in self.member.jobs.values():
            if job.source in first:
                post(job, NotifyKind.RELOAD_REFUSED, str(first[job.source]), self.member.notifier)

    def _beat(self) -> None:
        while not self._stop.wait(CLUSTER_RENEW_SECONDS):
            try:
                self.member.beat()
            except RebalancerError as exc:
                log.error("heartbeat failed", extra={"error": str(exc)})

    def _work(self) -> None:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(self._worker_main())

    async def _worker_main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_quiet_stale_finish)
        self._worker_stop = asyncio.Event()
        app = make_app(self.url)
        async with app.open_async():
            reconcile = app.tasks[RECONCILE]
            control = [
                asyncio.create_task(recover_every(app, CLUSTER_RECOVER_SECONDS, self._worker_stop)),
                asyncio.create_task(
                    dispatch_every(self.member.store, reconcile, CLUSTER_DISPATCH_SECONDS, self._worker_stop)
                ),
            ]
            try:
                await self._serve(app)
            finally:
                self._worker_stop.set()
                await asyncio.gather(*control)

    async def _serve(self, app: Any) -> None:
        """Run the queue's worker until told to stop, starting it again when it fails."""
        assert self._worker_stop is not None
        while not self._worker_stop.is_set():
            run = asyncio.create_task(app.run_worker_async(**self._worker_options()))
            stop = asyncio.create_task(self._worker_stop.wait())
            self._ready.set()
            await asyncio.wait({run, stop}, return_when=asyncio.FIRST_COMPLETED)
            if stop.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run
                return
            stop.cancel()
            failure = run.exception()
            log.error(
                "queue worker stopped; starting it again", extra={"error": str(failure) if failure else "no error"}
            )
            await asyncio.sleep(RESTART_PAUSE_SECONDS)

    def _worker_options(self) -> dict[str, Any]:
        return {
            "name": self.member.name,
            "concurrency": self.member.concurrency,
            "install_signal_handlers": False,
            "update_heartbeat_interval": CLUSTER_WORKER_HEARTBEAT_SECONDS,
            "stalled_worker_timeout": max(30.0, 4 * CLUSTER_STALLED_AFTER_SECONDS),
            "delete_jobs": "always",
            "shutdown_graceful_timeout": STOP_WAIT_SECONDS,
            "additional_context": {"member": self.member},
        }

    def _stop_worker(self) -> None:
        loop, event = self._loop, self._worker_stop
        if loop is not None and event is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(event.set)


def _quiet_stale_finish(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """One log line, not a traceback, when a pass's queue job was ended by others while this member was frozen.

    The worker then fails to record the job's end (it is gone); that is expected after a freeze, and harmless.
    """
    exc = context.get("exception")
    cause = getattr(exc, "__cause__", None)
    if cause is not None and "Job was not found" in str(cause):
        future = context.get("future")
        name = future.get_name() if isinstance(future, asyncio.Task) else ""
        log.warning(
            "a pass's queue job was ended by the cluster while this member was unresponsive", extra={"task": name}
        )
        return
    loop.default_exception_handler(context)
