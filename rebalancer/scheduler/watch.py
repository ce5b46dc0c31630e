"""What every supervisor does on its main thread, the single daemon's and a cluster member's alike: load the job
files, answer the signals (SIGTERM/SIGINT stop, a second one exits at once, SIGHUP reloads) and watch the files for
edits, reloading once an edit has held still for one poll.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

from rebalancer.defaults import WATCH_INTERVAL_SECONDS
from rebalancer.job import Job
from rebalancer.jobfile.load import JOB_SUFFIXES, load_jobs


def load(paths: Sequence[str]) -> list[Job]:
    """Every job of ``paths``; any problem in any file raises ``JobFileError`` for all of them."""

    return load_jobs(list(paths))


def snapshot_mtimes(paths: Sequence[str]) -> dict[str, float]:
    """Modification times of the paths given and of the job files in the folders among them, to notice edits.

    One ``stat`` per file (a folder is listed with ``scandir``): the daemon polls this every second, and a folder
    may hold a thousand jobs. A path that cannot be read is left out, so its coming or going is a change too.
    """
    seen: dict[str, float] = {}
    for raw in paths:
        try:
            seen[raw] = os.stat(raw).st_mtime
            folder = os.scandir(raw) if os.path.isdir(raw) else None
        except OSError:
            continue
        if folder is None:
            continue
        with folder:
            for entry in folder:
                if entry.name.endswith(JOB_SUFFIXES):
                    with contextlib.suppress(OSError):
                        if entry.is_file():
                            seen[entry.path] = entry.stat().st_mtime
    return seen


def watch(
    paths: Sequence[str],
    stop: threading.Event,
    reload: threading.Event,
    on_reload: Callable[[], object],
    *,
    since: dict[str, float],
    files: bool = True,
    on_tick: Callable[[], None] | None = None,
) -> None:
    """Until ``stop`` is set: every poll call ``on_tick``, then reload (``on_reload``) when ``reload`` is set or,
    with ``files``, when the files changed since ``since`` (taken before the jobs were loaded) and the change
    held still for one poll. An editor that saves by renaming, or a checkout, briefly removes a file, and a job
    removed by mistake would apply its on_stop (maybe a cancel)."""
    mtimes = pending = since
    while not stop.wait(WATCH_INTERVAL_SECONDS):
        if on_tick is not None:
            on_tick()
        if files and not reload.is_set():
            current = snapshot_mtimes(paths)
            if current != mtimes and current == pending:
                reload.set()
            pending = current
        if reload.is_set():
            reload.clear()
            mtimes = snapshot_mtimes(paths)
            on_reload()
            pending = mtimes


class StopAndReload:
    """The signals every supervisor answers: SIGTERM/SIGINT stop (a second one exits at once), SIGHUP reloads.

    A subclass sets ``_stop`` and ``_reload`` (events its loop waits on) and ``_signals = 0``.
    """

    _stop: threading.Event
    _reload: threading.Event
    _signals: int

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
