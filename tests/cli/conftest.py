"""Helpers for end-to-end command tests: job files aimed at the test sandbox, and a CLI runner with its env."""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from rebalancer.cli.main import main
from tests.jobtext import ladder_job


@pytest.fixture
def write_job(tmp_path: Path, sandbox: object) -> Callable[..., Path]:
    """Write a job file aimed at the test sandbox; keyword arguments fill the template, ``extra`` is appended."""

    def write(
        name: str = "e2e",
        *,
        levels: int = 5,
        ownership: str = "symbol",
        extra: str = "",
        url: str | None = None,
    ) -> Path:
        path = tmp_path / f"{name}.yaml"
        text = ladder_job(name, url or sandbox.url, levels=levels, ownership=ownership)  # type: ignore[attr-defined]
        path.write_text(text + textwrap.dedent(extra), encoding="utf-8")
        return path

    return write


@pytest.fixture
def cli(tmp_path: Path, sandbox: object) -> Callable[..., Result]:
    """Invoke ``rebalancer`` in-process with the sandbox's demo credentials and a private state directory."""
    env = {
        "REBALANCER_API_KEY": sandbox.api_key,  # type: ignore[attr-defined]
        "REBALANCER_SECRET_KEY": sandbox.secret_key,  # type: ignore[attr-defined]
        "REBALANCER_STATE_DIR": str(tmp_path / "state"),
        "NO_COLOR": "1",
    }

    def invoke(*args: str, env_overrides: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        runner = CliRunner()
        return runner.invoke(
            main, list(args), env={**env, **(env_overrides or {})}, input=input, catch_exceptions=False
        )

    return invoke


Answer = Callable[[Request], Response]


@pytest.fixture
def venue() -> Iterator[Callable[[Answer], str]]:
    """Serve ``answer`` on a loopback port (a fake other venue); returns its base URL."""
    servers = []

    def serve(answer: Answer) -> str:
        server = make_server("127.0.0.1", 0, Request.application(answer), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield serve
    for server in servers:
        server.shutdown()
