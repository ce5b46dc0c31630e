"""The store's pause switch in the daemon: read in the pass's own store read, so a pause committed before that read
stops the pass before any write, from this process or another; a paused job makes no market reads until resumed.

In-process daemons on a job due once an hour (its first pass at start, then only the passes the test runs), against
the sandbox over real HTTP; pauses are committed through another connection to the store, or by ``rebalancer pause``
in a child process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rebalancer.engine.connect import open_exchange
from rebalancer.jobfile.load import load_job
from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _book, _sample
from tests.daemonkit import running


class PausingReads:
    """The sandbox's client; while armed, its next ticker read first runs ``pause`` (a pause committed after the
    pass was claimed and before its store read, which follows the market reads)."""

    def __init__(self, inner: Any, pause: Callable[[], None]) -> None:
        self._inner = inner
        self._pause = pause
        self.armed = threading.Event()

    def ticker(self, symbol: str) -> Any:
        if self.armed.is_set():
            self.armed.clear()
            self._pause()
        return self._inner.ticker(symbol)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _env(sandbox: Any) -> dict[str, str]:
    return {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}


def _job(tmp_path: Path, job_text: Callable[..., str]) -> Any:
    path = tmp_path / "p.yaml"
    path.write_text(job_text("p", every="1h"))
    return load_job(path)


def _requests(sandbox: Any) -> int:
    return sum(sandbox.server.app.request_counts().values())


WRITES = ("/open/api/mass_replaceV2", "/open/api/create_order", "/open/api/cancel_order", "/open/api/cancel_order_all")


def _writes(sandbox: Any) -> int:
    counts = sandbox.server.app.request_counts()
    return sum(counts.get(path, 0) for path in WRITES)


def test_a_pause_committed_during_the_passs_market_reads_stops_it_before_any_write(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    job = _job(tmp_path, job_text)
    with StateStore(url) as store, StateStore(url) as other:
        wrapped: list[PausingReads] = []

        @contextlib.contextmanager
        def opener(j: Any) -> Iterator[Any]:
            with open_exchange(j, _env(sandbox)) as client:
                wrapped.append(PausingReads(client, lambda: other.set_paused("p", True)))
                wrapped[-1].armed.set()  # the first pass, at start: claimed unpaused, paused before its store read
                yield wrapped[-1]

        with running(store, [job], opener=opener) as daemon:
            assert wait_for(daemon.ready), "the stopped pass counts as a pass for ready"
            assert other.is_paused("p") and not wrapped[0].armed.is_set()
            assert _book(sandbox) == (), "the pass would have placed 6"
            assert _writes(sandbox) == 0
            assert store.history("p") == [], "no pass row: the pass stopped before its first write"
            assert store.open_in_flight("p") == []
            assert store.lease_holder("p") is None, "the paused job's lease is let go"
            assert _sample(daemon, "rebalancer_job_paused", job="p") == 1
            assert _sample(daemon, "rebalancer_passes_total", job="p", result="no_changes") == 0
            before = _requests(sandbox)
            assert daemon.run_pass_now("p") is None
            assert _requests(sandbox) == before, "a job known paused reads the switch before the market"
            other.set_paused("p", False)
            report = daemon.run_pass_now("p")
            assert report is not None and report.result == "ok"
            assert len(_book(sandbox)) == 6
            assert _sample(daemon, "rebalancer_job_paused", job="p") == 0


def test_rebalancer_pause_from_another_process_stops_the_next_pass_and_resume_resumes(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    job = _job(tmp_path, job_text)
    env = {**os.environ, "REBALANCER_STATE_URL": url, "NO_COLOR": "1"}

    def command(word: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "rebalancer", word, "p"], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr

    with StateStore(url) as store, running(store, [job]) as daemon:
        book = lambda: _book(sandbox)  # noqa: E731
        assert wait_for(lambda: len(book()) == 6 and daemon.ready())
        passes = len(store.history("p"))
        sandbox.engine.cancel(sandbox.api_key, "btcusdt", int(book()[0].id))  # the next pass would place it
        writes = _writes(sandbox)
        command("pause")
        assert daemon.run_pass_now("p") is None
        assert len(book()) == 5 and _writes(sandbox) == writes, "nothing sent"
        assert len(store.history("p")) == passes, "nothing recorded"
        assert store.lease_holder("p") is None
        command("resume")
        report = daemon.run_pass_now("p")
        assert report is not None and report.result == "ok"
        assert len(book()) == 6


def test_a_job_paused_before_the_daemon_starts_makes_no_market_reads(
    tmp_path: Path, sandbox: Any, job_text: Callable[..., str], wait_for: Callable[..., bool]
) -> None:
    url = f"sqlite:///{tmp_path}/state.db"
    job = _job(tmp_path, job_text)
    with StateStore(url) as store:
        store.set_paused("p", True)
        before = _requests(sandbox)
        with running(store, [job]) as daemon:
            assert wait_for(daemon.ready)
            assert daemon.run_pass_now("p") is None
            assert _requests(sandbox) - before <= 1, "at most the symbol rules, read when the exchange is opened"
