"""Daemon test helpers: job files aimed at the test sandbox, polling, and a daemon run in a child process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.jobtext import ladder_job


def wait_for(condition: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; the caller asserts the result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., bool]:
    """``wait_for(condition, timeout=15)``: poll until the condition holds."""
    return wait_for


@pytest.fixture
def job_text(sandbox: object) -> Callable[..., str]:
    """The text of a job file aimed at the test sandbox."""

    def text(
        name: str = "d1",
        *,
        symbol: str = "btcusdt",
        every: str = "200ms",
        levels: int = 3,
        ownership: str = "symbol",
        on_stop: str = "keep",
        url: str | None = None,
        size: str = "0.01",
    ) -> str:
        return ladder_job(
            name,
            url or sandbox.url,  # type: ignore[attr-defined]
            symbol=symbol,
            every=every,
            levels=levels,
            size=size,
            ownership=ownership,
            on_stop=on_stop,
            limits="{}",
        )

    return text


@pytest.fixture
def daemon_env(tmp_path: Path, sandbox: object) -> dict[str, str]:
    """Environment of a daemon child process: demo credentials and a private state directory."""
    return {
        **os.environ,
        "REBALANCER_API_KEY": sandbox.api_key,  # type: ignore[attr-defined]
        "REBALANCER_SECRET_KEY": sandbox.secret_key,  # type: ignore[attr-defined]
        "REBALANCER_STATE_DIR": str(tmp_path / "state"),
        "NO_COLOR": "1",
    }


class DaemonProcess:
    """``rebalancer run`` in a child process, its stderr collected to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rebalancer", "run", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@pytest.fixture
def spawn(tmp_path: Path, daemon_env: dict[str, str]) -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons in child processes; any still running at the end is killed."""
    started: list[DaemonProcess] = []

    def start(*args: str, env: dict[str, str] | None = None) -> DaemonProcess:
        process = DaemonProcess(list(args), env or daemon_env, tmp_path / f"daemon{len(started)}.log")
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
