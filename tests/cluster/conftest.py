"""Cluster test fixtures: a fresh PostgreSQL database per test (dropped afterwards), accounts and job files for many
jobs on the test sandbox, and cluster members run as child processes.

``REBALANCER_TEST_PG_URL`` overrides the server (a database URL whose database is used only to create others).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from tests.reliability.kit import fast_client

PG_URL = os.environ.get("REBALANCER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SYMBOL = "btcusdt"


@functools.cache
def postgres_unavailable() -> str | None:
    """Why the cluster tests cannot run here, or None when they can."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(_libpq(PG_URL), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL at {make_url(PG_URL).render_as_string()} is not reachable: {type(exc).__name__}"


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def cluster_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database, dropped after the test."""
    reason = postgres_unavailable()
    if reason is not None:
        pytest.skip(reason)
    import psycopg

    name = f"rb_cluster_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(PG_URL), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def account(index: int) -> tuple[str, str]:
    """The API key and secret of test account ``index`` (one account per job, so each job has its own book)."""
    return f"clusterkey{index:06d}".ljust(32, "0"), f"clustersecret{index:06d}".ljust(32, "0")


def job_text(index: int, url: str, *, every: str = "2s", levels: int = 3, size: str = "0.01") -> str:
    """A two-sided ladder job for account ``index`` on the sandbox at ``url``."""
    return f"""\
version: 1
name: c{index:03d}
symbol: {SYMBOL}
exchange: {{url: "{url}", api_key_env: RB_KEY_{index}, secret_key_env: RB_SECRET_{index}}}
schedule: {{every: {every}}}
reference: mid
ladder:
  buy: {{levels: {levels}, first: 0.5%, step: 0.25%, size: "{size}"}}
  sell: {{levels: {levels}, first: 0.5%, step: 0.25%, size: "{size}"}}
tolerance: {{price: 0.1%, size: 10%}}
limits: {{max_orders: 40, band: 5%, post_only: true}}
ownership: symbol
"""


def sandbox_job(
    sandbox: Any, folder: Path, *, levels: int = 2, wrap: Callable[[Any], Any] = lambda client: client
) -> tuple[Path, Callable[[Any], contextlib.AbstractContextManager[Any]]]:
    """Job ``c000`` on its own funded sandbox account, written in ``folder``, and a member's opener for it: a fast
    client of that account (``wrap`` may stand in front of it)."""
    key, secret = account(0)
    sandbox.engine.add_account(key, secret, {"usdt": 1_000_000, "btc": 20})
    path = folder / "c000.yaml"
    path.write_text(job_text(0, sandbox.url, levels=levels))

    @contextlib.contextmanager
    def opener(job: Any) -> Iterator[Any]:
        client = fast_client(sandbox.url, key, secret)
        try:
            yield wrap(client)
        finally:
            client.close()

    return path, opener


@pytest.fixture
def cluster_jobs(sandbox, tmp_path: Path) -> Callable[..., tuple[Path, dict[str, str]]]:
    """``make(n)``: n job files in a folder, each on its own funded sandbox account; returns (folder, env)."""

    def make(count: int, **job_kw: object) -> tuple[Path, dict[str, str]]:
        folder = tmp_path / "jobs"
        folder.mkdir(exist_ok=True)
        env: dict[str, str] = {}
        for i in range(count):
            key, secret = account(i)
            sandbox.engine.add_account(key, secret, {"usdt": 1_000_000, "btc": 20})
            env[f"RB_KEY_{i}"], env[f"RB_SECRET_{i}"] = key, secret
            (folder / f"c{i:03d}.yaml").write_text(job_text(i, sandbox.url, **job_kw))  # type: ignore[arg-type]
        return folder, env

    return make


class MemberProcess:
    """``rebalancer run PATH --cluster`` in a child process, its output collected to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()/kill()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rebalancer", "run", *args, "--cluster", "--log-format", "json"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.pid = self.process.pid

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        self.process.send_signal(signum)

    def stop(self, timeout: float = 40.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.send_signal(signal.SIGTERM)
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
def spawn_member(tmp_path: Path, cluster_url: str) -> Iterator[Callable[..., MemberProcess]]:
    """Start members in child processes on the test's database; any still running at the end is killed."""
    started: list[MemberProcess] = []

    def start(*args: str, env: dict[str, str]) -> MemberProcess:
        full_env = {
            **os.environ,
            **env,
            "REBALANCER_STATE_URL": cluster_url,
            "REBALANCER_STATE_DIR": str(tmp_path / f"state{len(started)}"),
            "NO_COLOR": "1",
        }
        member = MemberProcess(list(args), full_env, tmp_path / f"member{len(started)}.log")
        started.append(member)
        return member

    yield start
    for member in started:
        member.kill()


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.1) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; the caller asserts the result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()
