"""The daemon's process lifecycle: signals, reloads on SIGHUP or file change, the health endpoint, clean stop.

``Daemon`` schedules passes; this module owns the main thread: it loads the jobs (all valid or nothing starts),
waits for signals and file changes, and stops the daemon cleanly. A second SIGTERM/SIGINT exits at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from rebalancer.daemon.metrics import HealthServer, parse_address
from rebalancer.daemon.scheduler import Daemon
from rebalancer.defaults import WATCH_INTERVAL_SECONDS
from rebalancer.errors import ConfigError, JobFileError
from rebalancer.job import Job
from rebalancer.state.store import StateStore

log = logging.getLogger("rebalancer.daemon")


def load(paths: Sequence[str]) -> list[Job]:
    """Every job of ``paths``; any problem in any file raises ``JobFileError`` for all of them."""
    from rebalancer.jobfile.load import load_jobs

    return load_jobs(list(paths))


def snapshot_mtimes(paths: Sequence[str]) -> dict[str, float]:
    """Modification times of the job files (and folder listings) behind ``paths``, to notice edits."""
    from rebalancer.jobfile.load import expand_paths

    seen: dict[str, float] = {}
    for raw in paths:
        with contextlib.suppress(OSError):
            seen[raw] = Path(raw).stat().st_mtime
    for file in expand_paths(list(paths))[0]:
        try:
            seen[str(file)] = file.stat().st_mtime
        except OSError:
            seen[str(file)] = -1.0
    return seen


class Supervisor:
    """Runs a ``Daemon`` until a stop signal, reloading its jobs when asked to."""

    def __init__(self, paths: Sequence[str], store: StateStore, *, http: str | None = None, watch: bool = True) -> None:
        self.paths = list(paths)
        self.daemon = Daemon(store)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._signals = 0
        self._watch = watch
        self._http: HealthServer | None = None
        if http:
            try:
                host, port = parse_address(http)
            except ValueError as exc:
                raise ConfigError(f"--http: {exc}") from None
            try:
                self._http = HealthServer(self.daemon.metrics, host, port, self.daemon.ready)
            except OSError as exc:
                raise ConfigError(f"--http: cannot listen on {http}: {exc.strerror or exc}") from None

    def install_signals(self) -> None:
        """SIGTERM/SIGINT stop (a second one exits at once); SIGHUP reloads."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            os.write(2, b"Second signal: exiting now.\n")
            os._exit(130)
        self._stop.set()

    def run(self) -> None:
        """Load and start every job, then serve until stopped. Returns after a clean stop."""
        mtimes = snapshot_mtimes(self.paths)
        pending = mtimes
        jobs = load(self.paths)
        self.daemon.start(jobs)
        if self._http is not None:
            self._http.start()
            log.info("serving metrics", extra={"url": self._http.url})
        log.info("daemon started", extra={"jobs": len(jobs), "holder": self.daemon.holder})
        try:
            while not self._stop.wait(WATCH_INTERVAL_SECONDS):
                if self._watch and not self._reload.is_set():
                    # An edit must hold still for one poll: an editor that saves by renaming, or a checkout,
                    # briefly removes a file, and a removed job would apply its on_stop (maybe a cancel).
                    current = snapshot_mtimes(self.paths)
                    if current != mtimes and current == pending:
                        self._reload.set()
                    pending = current
                if self._reload.is_set():
                    self._reload.clear()
                    mtimes = snapshot_mtimes(self.paths)
                    self._do_reload()
                    pending = mtimes
        finally:
            log.info("stopping: waiting for running passes")
            self.daemon.stop()
            if self._http is not None:
                self._http.stop()
            log.info("daemon stopped")

    def _do_reload(self) -> None:
        """Swap in the jobs of the files as they are now; any failure to read them keeps the running jobs."""
        try:
            jobs = load(self.paths)
        except JobFileError as exc:
            for problem in exc.problems:
                log.error("reload refused, keeping the running jobs", extra={"problem": str(problem)})
            return
        except Exception as exc:  # a reader bug must never stop the jobs that run fine
            problem = f"cannot read the job files: {exc.__class__.__name__}: {str(exc)[:200]}".replace("\n", " ")
            log.error("reload refused, keeping the running jobs", extra={"problem": problem})
            return
        self.daemon.reload(jobs)
        log.info("reloaded", extra={"jobs": len(jobs)})
