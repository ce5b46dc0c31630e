"""A job's state on the status pages comes from its last pass's ``PassResult``: every result is placed, and a job
whose pass failed shows ``failing`` on the daemon's HTTP page (the page once compared with a word no pass has)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.jobfile.load import load_job
from rebalancer.pictures.status_page import job_state, state_of
from rebalancer.scheduler.metrics import HealthServer
from rebalancer.scheduler.pages import StatusPages
from rebalancer.state.store import StateStore
from rebalancer.vocab import JobState, PassResult
from tests.jobtext import ladder_job

EXPECTED = {
    PassResult.OK: JobState.RUNNING,
    PassResult.NO_CHANGES: JobState.RUNNING,
    PassResult.PLANNED: JobState.RUNNING,
    PassResult.DECLINED: JobState.RUNNING,
    PassResult.REJECTED: JobState.FAILING,
    PassResult.UNKNOWN_OUTCOME: JobState.FAILING,
    PassResult.ERROR: JobState.FAILING,
    PassResult.SKIPPED: JobState.RUNNING,
    PassResult.FENCED: JobState.RUNNING,  # a lease that moved to another process, not a failure
}


@pytest.mark.parametrize("result", list(PassResult))
def test_every_pass_result_has_a_state(result: PassResult) -> None:
    assert result in EXPECTED, f"place the new pass result {result!r} in EXPECTED (failing or running?)"
    assert state_of(False, result) is EXPECTED[result]
    assert state_of(True, result) is JobState.PAUSED


@pytest.mark.parametrize(
    ("row", "state"),
    [
        ({"paused": False, "last_pass": None}, JobState.IDLE),
        ({"paused": True, "last_pass": None}, JobState.PAUSED),
        ({"paused": False, "last_pass": {"result": "error"}}, JobState.FAILING),
        ({"paused": False, "last_pass": {"result": "rejected"}}, JobState.FAILING),
        ({"paused": False, "last_pass": {"result": "no_changes"}}, JobState.RUNNING),
        ({"paused": False, "last_pass": {"result": None}}, JobState.RUNNING),  # a pass under way
        ({"paused": True, "last_pass": {"result": "error"}}, JobState.PAUSED),
    ],
)
def test_the_state_of_a_status_row(row: dict[str, Any], state: JobState) -> None:
    assert job_state(row) is state


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_failing_job_shows_failing_on_the_daemon_page(sandbox: Any, tmp_path: Path) -> None:
    broken, fine = tmp_path / "broken.yaml", tmp_path / "fine.yaml"
    broken.write_text(ladder_job("broken", f"http://127.0.0.1:{_closed_port()}", every="1h", ownership="tracked"))
    fine.write_text(ladder_job("fine", sandbox.url, every="1h", ownership="tracked"))
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store:
        daemon = Daemon(store, opener=lambda job: open_exchange(job, env), stop_wait=10)
        daemon.start([load_job(broken), load_job(fine)])
        server = HealthServer(daemon.metrics, "127.0.0.1", 0, daemon.ready, StatusPages(daemon, daemon.holder).respond)
        server.start()
        try:
            daemon.run_pass_now("broken")
            daemon.run_pass_now("fine")
            page = requests.get(f"{server.url}/", timeout=10)
        finally:
            server.stop()
            daemon.stop()
    assert page.status_code == 200
    assert "<tr class='job' data-job='broken' data-state='failing'>" in page.text
    assert "<tr class='job' data-job='fine' data-state='running'>" in page.text
