"""``rebalancer run --workers N``: N daemon processes on one machine, each running a share of the jobs.

One process's passes queue on the GIL (bench/RESULTS-daemon.md): past one core of passes, a second process is the
only way to the second core. The parent loads the job files (all valid or nothing starts), forks N-1 workers for
shares 1..N-1 and runs share 0 itself: each process is a whole daemon (``Supervisor``) on the shared state store
with its own leases, as cluster members share one, for the jobs whose name falls in its share (``share_of``: the
same split at every reload, so a job never moves). An idle parent would only hold the originals of the pages its
workers copied. The parent forwards SIGTERM/SIGINT/SIGHUP (and answers them for its own share), serves one
``/metrics`` (every process's samples, labelled ``worker``, the parent's own ``0``), one ``/readyz`` (ready when
every process is) and the status pages of every process's jobs (``fleet_pages``), and, from a thread watching
the workers, stops everything when one dies. ``--workers auto`` (the default) is ``worker_count``: one process per
``JOBS_PER_WORKER`` jobs, up to the cores this process may use.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import multiprocessing
import os
import signal
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from types import FrameType

from rebalancer.daemon.fleet_pages import FleetPages, fetch
from rebalancer.daemon.heap import one_malloc_arena, start_trimming
from rebalancer.daemon.supervisor import Supervisor
from rebalancer.defaults import FLEET_PROBE_SECONDS, JOBS_PER_WORKER, MAX_WORKERS, STOP_WAIT_SECONDS
from rebalancer.errors import RebalancerError
from rebalancer.job import Job
from rebalancer.scheduler.metrics import http_server
from rebalancer.scheduler.watch import load
from rebalancer.state.store import StateStore

log = logging.getLogger("rebalancer.daemon")


def share_of(name: str, count: int) -> int:
    """Which of ``count`` workers runs the job ``name``: a hash of the name, the same in every process and run."""
    return zlib.crc32(name.encode("utf-8")) % count


def labelled(exposition: bytes, worker: int) -> list[tuple[str, list[str]]]:
    """A Prometheus text exposition split into families (header lines, sample lines), every sample labelled with
    ``worker`` so that the workers' series stay apart when merged (``merged``)."""
    families: list[tuple[str, list[str]]] = []
    samples: list[str] = []
    label = f'worker="{worker}"'
    for line in exposition.decode("utf-8").splitlines():
        if line.startswith("# HELP "):
            samples = []
            families.append((line, samples))
        elif line.startswith("#"):
            families[-1] = (f"{families[-1][0]}\n{line}", samples)
        elif line:
            samples.append(_with_label(line, label))
    return families


def _with_label(line: str, label: str) -> str:
    """A sample line with ``label`` first among its labels; the name ends at its first "{" or space (``find``
    rather than a scan in Python: a worker's text has ~40 000 samples at a thousand jobs)."""
    brace, space = line.find("{"), line.find(" ")
    if brace != -1 and (space == -1 or brace < space):
        close = "," if line[brace + 1 : brace + 2] != "}" else ""
        return f"{line[: brace + 1]}{label}{close}{line[brace + 1 :]}"
    end = len(line) if space == -1 else space
    return f"{line[:end]}{{{label}}}{line[end:]}"


def merged(expositions: Sequence[bytes]) -> bytes:
    """One exposition of every worker's (the i-th text is worker i's): each family's header once, then the
    samples of every worker that has it, in the first worker's order of families."""
    order: list[str] = []
    samples: dict[str, list[str]] = {}
    for worker, text in enumerate(expositions):
        for header, lines in labelled(text, worker):
            if header not in samples:
                order.append(header)
                samples[header] = []
            samples[header].extend(lines)
    return "".join(f"{header}\n" + "".join(f"{line}\n" for line in samples[header]) for header in order).encode()


def worker_count(jobs: int, cores: int) -> int:
    """``--workers auto``: one worker per ``JOBS_PER_WORKER`` jobs (at least one), but no more than ``cores``: a
    worker past the jobs' need only costs memory, and one past the cores only waits for a core."""
    return max(1, min(cores, -(-jobs // JOBS_PER_WORKER), MAX_WORKERS))


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and ``taskset`` narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_daemon(paths: Sequence[str], *, workers: int | None = 1, http: str | None = None, watch: bool = True) -> int:
    """``rebalancer run``: the daemon in this process, or the parent of ``workers`` worker processes (None: as many
    as ``worker_count`` says for the jobs loaded now); the exit status once stopped."""
    one_malloc_arena()
    jobs = None
    if workers is None:
        jobs = load(paths)
        workers = worker_count(len(jobs), available_cores())
    if workers > 1:
        fleet = Fleet(paths, workers, http=http, watch=watch, jobs=jobs)
        fleet.install_signals()
        return fleet.run()
    start_trimming()
    with StateStore() as store:
        supervisor = Supervisor(paths, store, http=http, watch=watch)
        supervisor.install_signals()
        supervisor.run(jobs)
    return 0


class Fleet:
    """The parent of ``count - 1`` worker processes, itself running share 0; ``run`` returns the exit status."""

    def __init__(
        self,
        paths: Sequence[str],
        count: int,
        *,
        http: str | None = None,
        watch: bool = True,
        jobs: Sequence[Job] | None = None,
    ) -> None:
        self.paths = list(paths)
        self._loaded = None if jobs is None else list(jobs)
        self.count = count
        self._watch = watch
        self._stop = threading.Event()  # shared with the parent's own supervisor: set, its passes stop too
        self._reload = threading.Event()
        self._signals = 0
        self._told: set[int] = set()  # the workers sent a stop signal already (a second one exits at once)
        self._died = False
        self._workers: list[multiprocessing.process.BaseProcess] = []
        self._urls: list[str] = []  # by share: the parent's own internal server first
        self._http = http_server(http, self._exposition, self._ready, self._pages().respond) if http else None

    def install_signals(self) -> None:
        """SIGTERM/SIGINT stop every process (a second one makes them exit at once); SIGHUP reloads every one."""
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, self._on_reload_signal)

    def run(self) -> int:
        """Load the jobs, start the workers, run share 0 here until a stop signal or a worker's death, stop all."""
        jobs = load(self.paths) if self._loaded is None else self._loaded
        with StateStore():  # made and migrated here, once: workers opening a new store at once would race for it
            pass
        context = multiprocessing.get_context("fork")  # the workers start from the jobs loaded here
        # What the parent holds now (modules, jobs) is shared with the workers page by page until written. A garbage
        # collector writes to every object it tracks, copying those pages into the process that collects: frozen,
        # the collector leaves them alone, in the workers and in the parent, which runs passes too. The garbage of
        # loading is collected first; what is frozen is what lives as long as the process or is freed by reference
        # counting (a job replaced at a reload).
        gc.collect()
        gc.freeze()
        reports: list[Connection] = []
        for share in range(1, self.count):
            receive, send = context.Pipe(duplex=False)
            worker = context.Process(
                target=_worker,
                args=(self.paths, jobs, share, self.count, self._http is not None, self._watch, send),
                name=f"rebalancer-worker-{share}",
            )
            worker.start()
            send.close()
            self._workers.append(worker)
            reports.append(receive)
        if self._stop.is_set():  # a stop signal while they were starting reached only those started before it
            self._tell_workers()
        start_trimming()
        try:
            with StateStore() as store:
                own = Supervisor(
                    self.paths,
                    store,
                    http="127.0.0.1:0" if self._http is not None else None,
                    watch=self._watch,
                    mine=_mine(0, self.count),
                    stop=self._stop,
                    reload=self._reload,
                )
                self._urls = [own.url or "", *(_first_report(report) for report in reports)]
                if self._http is not None:
                    self._http.start()
                    log.info("serving metrics", extra={"url": self._http.url})
                threading.Thread(target=self._watch_workers, name="rebalancer-fleet-watch", daemon=True).start()
                log.info("workers started", extra={"jobs": len(jobs), "workers": self.count})
                if not self._stop.is_set():
                    own.run(jobs)
        finally:
            self._stop.set()
            self._tell_workers()
            status = self._join_all()
        return status or int(self._died)

    def _watch_workers(self) -> None:
        """Until stopped: when a worker dies, stop the parent's own passes and every other worker."""
        while not self._stop.is_set():
            ready = wait([worker.sentinel for worker in self._workers], timeout=FLEET_PROBE_SECONDS)
            gone = [worker for worker in self._workers if worker.sentinel in ready]
            if gone and not self._stop.is_set():
                dead = gone[0]
                dead.join()  # its sentinel is ready a moment before its exit status
                log.error("a worker stopped; stopping the others", extra={"worker": dead.name, "code": dead.exitcode})
                self._died = True
                self._stop.set()
                self._tell_workers()
                return

    def _join_all(self) -> int:
        """Wait for every worker to stop (bounded), stop serving; 0 if all exited with 0."""
        for worker in self._workers:
            worker.join(STOP_WAIT_SECONDS)
            if worker.is_alive():
                log.error("worker did not stop; killing it", extra={"worker": worker.name})
                worker.kill()
                worker.join()
        if self._http is not None:
            self._http.stop()
        log.info("workers stopped")
        return 0 if all(w.exitcode == 0 for w in self._workers) else 1

    def _tell_workers(self) -> None:
        """Send SIGTERM to every worker that was sent no stop signal yet: a second one would make it exit at once."""
        self._forward(signal.SIGTERM, only_untold=True)

    def _forward(self, signum: int, *, only_untold: bool = False) -> None:
        for worker in self._workers:
            if worker.pid is not None and worker.is_alive() and not (only_untold and worker.pid in self._told):
                if signum != signal.SIGHUP:
                    self._told.add(worker.pid)
                with contextlib.suppress(ProcessLookupError):  # reaped meanwhile by the other thread
                    os.kill(worker.pid, signum)

    def _on_stop_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        self._stop.set()
        self._forward(signum)
        if self._signals > 1:
            os.write(2, b"Second signal: exiting now.\n")
            os._exit(130)

    def _on_reload_signal(self, signum: int, frame: FrameType | None) -> None:
        self._reload.set()
        self._forward(signum)

    def _pages(self) -> FleetPages:
        """``/`` and ``/jobs/NAME`` of every process's jobs, from each one's own pages (the parent's own first)."""
        return FleetPages(lambda: self._urls, lambda name: share_of(name, self.count))

    def _exposition(self) -> bytes:
        """Every process's ``/metrics`` (the parent's own share first), merged; one that does not answer is left
        out of this scrape."""
        return merged([_get(url + "/metrics") or b"" for url in self._urls])

    def _ready(self) -> bool:
        """Ready once every process, the parent's own share included, answers its ``/readyz`` with 200."""
        return len(self._urls) == self.count and all(_get(url + "/readyz") is not None for url in self._urls)


def _worker(
    paths: list[str], jobs: list[Job], share: int, count: int, http: bool, watch: bool, report: Connection
) -> None:
    """One worker process: a whole daemon for the jobs of its share, until SIGTERM or the parent's death."""
    os.setpgrp()  # a terminal's Ctrl-C reaches only the parent, which forwards it once
    parent = os.getppid()
    start_trimming()
    try:
        with StateStore() as store:
            supervisor = Supervisor(
                paths, store, http="127.0.0.1:0" if http else None, watch=watch, mine=_mine(share, count)
            )
            supervisor.install_signals()
            report.send(supervisor.url or "")
            report.close()
            supervisor.run(jobs, orphaned=lambda: os.getppid() != parent)
    except RebalancerError as exc:
        sys.stderr.write(f"Error: worker {share}: {exc}\n")
        sys.exit(1)


def _mine(share: int, count: int) -> Callable[[str], bool]:
    return lambda name: share_of(name, count) == share


def _first_report(report: Connection) -> str:
    """The worker's status URL (empty without ``--http``); empty too when it died before it could say."""
    try:
        return str(report.recv())
    except EOFError:
        return ""
    finally:
        report.close()


def _get(url: str) -> bytes | None:
    """The body of a 200 answer from a worker on loopback; None for anything else."""
    answer = fetch(url)
    return answer[1] if answer is not None and answer[0] == 200 else None
