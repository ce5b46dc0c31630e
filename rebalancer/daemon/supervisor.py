"""The daemon's process lifecycle: signals, reloads on SIGHUP or file change, the health endpoint, clean stop.

``Daemon`` schedules passes; this module owns the main thread: it loads the jobs (all valid or nothing starts),
waits for signals and file changes, and stops the daemon cleanly. A second SIGTERM/SIGINT exits at once.
Reloads go file by file (``rebalancer.scheduler.reload``): a broken file keeps its previous version running, is
logged, counted (``rebalancer_reload_failures_total``) and recorded in the state store for ``rebalancer status``,
and never holds up the other files.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from rebalancer.daemon.scheduler import Daemon
from rebalancer.errors import Problem, StateError
from rebalancer.job import Job
from rebalancer.jobfile.load import FileRead, expand_paths, read_job_file
from rebalancer.scheduler.metrics import HealthServer, http_server
from rebalancer.scheduler.pages import StatusPages
from rebalancer.scheduler.reload import Merged, Refused, merge
from rebalancer.scheduler.watch import StopAndReload, load, snapshot_mtimes, watch
from rebalancer.state.store import StateStore
from rebalancer.vocab import NotifyKind

log = logging.getLogger("rebalancer.daemon")


class Supervisor(StopAndReload):
    """Runs a ``Daemon`` until a stop signal, reloading its jobs when asked to."""

    def __init__(
        self,
        paths: Sequence[str],
        store: StateStore,
        *,
        http: str | None = None,
        watch: bool = True,
        daemon: Daemon | None = None,
        mine: Callable[[str], bool] | None = None,
        stop: threading.Event | None = None,
        reload: threading.Event | None = None,
    ) -> None:
        self.paths = list(paths)
        self._mine = mine or (lambda _name: True)  # which jobs, by name, this daemon runs (``run --workers``)
        self.store = store
        self.daemon = daemon or Daemon(store)
        self._by_file: dict[str, Job] = {}
        self._failing: set[str] = set()
        # What the main thread waits on; ``run --workers``' parent sets them for its own share as for its workers.
        self._stop = stop or threading.Event()
        self._reload = reload or threading.Event()
        self._signals = 0
        self._watch = watch
        self._http: HealthServer | None = None
        if http:
            pages = StatusPages(self.daemon, self.daemon.holder, feeds=self.daemon.feed)
            self._http = http_server(http, self.daemon.metrics, self.daemon.ready, pages.respond)

    @property
    def url(self) -> str | None:
        """Where ``/metrics``, ``/livez`` and ``/readyz`` are served; None without ``http``."""
        return None if self._http is None else self._http.url

    def run(self, jobs: Sequence[Job] | None = None, *, orphaned: Callable[[], bool] | None = None) -> None:
        """Load and start every job (or start ``jobs``, already loaded), then serve until stopped, or until
        ``orphaned`` says so (asked every second). Returns after a clean stop."""
        since = snapshot_mtimes(self.paths)
        self.start(jobs)

        def on_tick() -> None:
            if orphaned is not None and orphaned():
                log.error("the parent process is gone: stopping")
                self._stop.set()

        try:
            watch(self.paths, self._stop, self._reload, self.reload, since=since, files=self._watch, on_tick=on_tick)
        finally:
            self.stop()

    def start(self, jobs: Sequence[Job] | None = None) -> None:
        """Load every job (any problem in any file: nothing starts) and start scheduling those that are ours."""
        jobs = load(self.paths) if jobs is None else list(jobs)
        self.daemon.start([job for job in jobs if self._mine(job.name)])
        self._by_file = {job.source: job for job in jobs}
        self._record(Merged(jobs, dict(self._by_file), [], list(self._by_file)))
        if self._http is not None:
            self._http.start()
            log.info("serving metrics", extra={"url": self._http.url})
        log.info("daemon started", extra={"jobs": len(self.daemon.jobs), "holder": self.daemon.holder})

    def stop(self) -> None:
        """Stop the daemon (running passes finish, ``on_stop`` applies) and the HTTP endpoint."""
        log.info("stopping: waiting for running passes")
        self.daemon.stop()
        if self._http is not None:
            self._http.stop()
        log.info("daemon stopped")

    def reload(self) -> Merged | None:
        """Read every job file again and run what each now holds; a refused file keeps its previous version.

        None when the files could not even be listed: then every running job keeps running.
        """
        try:
            files, listing_problems = expand_paths(self.paths)
        except Exception as exc:  # a listing bug must never stop the jobs that run fine
            log.error("reload refused, keeping the running jobs", extra={"problem": _one_line("list", exc)})
            return None
        merged = merge([read_safely(file) for file in files], self._by_file, listing_problems)
        unopened = self.daemon.reload([job for job in merged.jobs if self._mine(job.name)])
        for file in [f for f in merged.loaded if merged.by_file[f].name in unopened]:
            # Valid, but its exchange could not be opened: the old version runs on, and this counts as refused.
            name = merged.by_file[file].name
            problem = Problem(file, 1, 1, "", f"job {name} could not be started: {unopened[name]}")
            merged.loaded.remove(file)
            merged.refused.append(Refused(file, (problem,), self._by_file.get(file)))
        self._by_file = merged.by_file
        self._record(merged)
        log.info(
            "reloaded",
            extra={"jobs": len(merged.jobs), "files_loaded": len(merged.loaded), "files_refused": len(merged.refused)},
        )
        return merged

    def _record(self, merged: Merged) -> None:
        """Log, count and record refused files; clear the records of files that loaded or are gone."""
        metrics = self.daemon.metrics
        refused = {_key(r.file) for r in merged.refused}
        for item in merged.refused:
            for problem in item.problems:
                kept = "keeping its previous version" if item.kept else "it has no previous version"
                log.error(f"reload refused a job file, {kept}", extra={"file": item.file, "problem": str(problem)})
            # Labelled with the absolute path, as ``status`` names the file, whatever the daemon was given.
            metrics.reload_failures.labels(_key(item.file)).inc()
            metrics.reload_failing.labels(_key(item.file)).set(1)
        cleared = self._failing - refused
        for file in cleared:
            metrics.reload_failing.labels(file).set(0)
        self._failing = refused
        try:
            for item in merged.refused:
                first = str(item.problems[0]) if item.problems else "refused"
                job = item.kept.name if item.kept else None
                self.store.record_reload_failure(_key(item.file), first, holder=self.daemon.holder, job=job)
                if item.kept is not None and self._mine(item.kept.name):
                    self.daemon.notify(item.kept, NotifyKind.RELOAD_REFUSED, f"{item.file}: {first}")
            self.store.clear_reload_failures([*(_key(f) for f in merged.loaded), *cleared])
        except StateError as exc:
            log.error("could not record the reload in the state store", extra={"error": str(exc)})


def read_safely(file: Path) -> FileRead:
    """One job file read; a reader bug becomes a problem of that file, so that it never stops the running jobs."""
    try:
        return read_job_file(file)
    except Exception as exc:
        return FileRead(file, None, (Problem(str(file), 1, 1, "", _one_line("read", exc)),), (1, 1))


def _one_line(what: str, exc: Exception) -> str:
    return f"cannot {what} the job files: {exc.__class__.__name__}: {str(exc)[:200]}".replace("\n", " ")


def _key(file: str) -> str:
    """How a job file is named in the state store: its absolute path, so that any working directory finds it."""
    return str(Path(file).absolute())
