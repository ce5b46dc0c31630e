"""One sandbox world per state directory, shared: whichever process serves it, `plan`, `apply` and `cancel` on a
`url: sandbox` job talk to it at once, see the same orders, and the world outlives the process that served it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner, Result

from rebalancer.cli.main import main
from rebalancer.sandbox import share
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY

JOB = """\
version: 1
name: shared
symbol: ethusdt
exchange: {url: sandbox}
schedule: {every: 1s}
ownership: tracked
ladder:
  buy: {levels: 3, first: 1%, step: 0.5%, size: "0.5"}
  sell: {levels: 3, first: 1%, step: 0.5%, size: "0.5"}
"""


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Child:
    """A rebalancer command in a child process, its output collected to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rebalancer", *args], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(30)
        finally:
            self._log.close()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Path, Path, Callable[..., Child]]]:
    """A private state directory, a `url: sandbox` job file, and a way to start commands on them."""
    state = tmp_path / "state"
    job = tmp_path / "shared.yaml"
    job.write_text(JOB)
    env = {**os.environ, "REBALANCER_STATE_DIR": str(state), "NO_COLOR": "1"}
    children: list[Child] = []

    def start(*args: str) -> Child:
        child = Child(list(args), env, tmp_path / f"child{len(children)}.log")
        children.append(child)
        return child

    yield state, job, start
    for child in children:
        child.stop(signal.SIGKILL)


def _cli(state: Path, *args: str) -> Result:
    env = {"REBALANCER_STATE_DIR": str(state), "NO_COLOR": "1", "REBALANCER_API_KEY": "", "REBALANCER_SECRET_KEY": ""}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _served_url(state: Path) -> str:
    assert _wait_for(lambda: share.live_address(state) is not None), "no process published the world's address"
    address = share.live_address(state)
    assert address is not None
    return address.url


def _open_orders(url: str) -> int:
    from rebalancer.exchange.client import OpenApiClient

    with OpenApiClient(url, DEMO_API_KEY, DEMO_SECRET_KEY) as client:
        return len(client.open_orders("ethusdt"))


def test_plan_apply_and_cancel_use_the_world_rebalancer_sandbox_serves(world):
    state, job, start = world
    server = start("sandbox", "--port", "0")
    url = _served_url(state)

    planned = _cli(state, "plan", str(job))
    assert planned.exit_code == 0, planned.output
    assert "Plan: 6 to place" in planned.stdout
    applied = _cli(state, "apply", str(job), "--yes")
    assert applied.exit_code == 0, applied.output
    assert _open_orders(url) == 6, "the orders stand in the world the sandbox command serves"
    again = _cli(state, "plan", str(job))
    assert again.exit_code == 0 and "Plan: 6 to place" not in again.stdout, again.output
    cancelled = _cli(state, "cancel", str(job), "--yes")
    assert cancelled.exit_code == 0, cancelled.output
    assert _open_orders(url) == 0

    assert server.stop() == 0
    assert not (state / share.ADDR_FILE).exists(), "a server that stopped withdraws its address"


def test_plan_works_beside_a_daemon_that_serves_the_world_and_sees_its_orders(world):
    state, job, start = world
    daemon = start("run", str(job), "--no-watch")
    url = _served_url(state)
    assert _wait_for(lambda: _open_orders(url) == 6), daemon.output

    planned = _cli(state, "plan", str(job), "--json")

    assert planned.exit_code == 0, planned.output
    document = json.loads(planned.stdout)
    assert document["summary"]["keep"] >= 4, document["summary"]
    assert daemon.stop() == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_daemon_takes_over_the_world_when_its_server_ends(world, signum):
    state, job, start = world
    server = start("sandbox", "--port", "0")
    url = _served_url(state)
    daemon = start("run", str(job), "--no-watch")
    assert _wait_for(lambda: _open_orders(url) == 6), daemon.output

    server.stop(signum)

    def served_by_the_daemon() -> bool:
        address = share.live_address(state)
        return address is not None and address.pid == daemon.process.pid

    assert _wait_for(served_by_the_daemon), daemon.output
    assert share.live_address(state).url == url, "the world is served on the same port, so clients keep working"
    assert _wait_for(lambda: _open_orders(url) == 6), daemon.output
    planned = _cli(state, "plan", str(job))
    assert planned.exit_code == 0, planned.output
    assert "Plan: 6 to place" not in planned.stdout
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output


def test_a_stale_address_file_is_not_believed(world):
    state, job, _ = world
    state.mkdir(parents=True)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (state / share.ADDR_FILE).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": int(dead.stdout)}))
    planned = _cli(state, "plan", str(job))
    assert planned.exit_code == 0, planned.output
    assert "Plan: 6 to place" in planned.stdout
    assert not (state / share.ADDR_FILE).exists()


def test_the_sandbox_command_stands_by_while_another_process_serves(world):
    state, job, start = world
    daemon = start("run", str(job), "--no-watch")
    url = _served_url(state)
    standby = start("sandbox", "--port", "0")
    assert _wait_for(lambda: "takes over when it ends" in standby.output), standby.output
    assert f"url: {url}" in standby.output
    assert requests.get(f"{url}/open/api/common/symbols", timeout=5).ok
    assert daemon.stop() == 0
    assert _wait_for(lambda: "Serving the sandbox exchange" in standby.output), standby.output
    assert share.live_address(state).pid == standby.process.pid
    assert standby.stop() == 0
