"""The sandbox with its market stream, served over real loopback sockets for this package's tests.

``streamed`` yields a handle with the REST ``url``, the stream ``stream_url``, the ``engine`` (a fresh manual-clock
world, seed 7: the market moves only when a test moves it) and ``control(path, **params)`` for the /sandbox/
controls. The stream pings every 0.2 s, so heartbeats are exercised in every test (and cuts a client silent for 5 s).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer

PING_EVERY = 0.2
PONG_TIMEOUT = 5.0  # generous: a loaded machine may answer late, and a cut would fail tests that expect none
DEADLINE = 20.0


def wait_for(condition: Callable[[], Any], what: str, deadline: float = DEADLINE) -> Any:
    """Poll ``condition`` until it returns something true (returned), failing after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"not within {deadline}s: {what}")
        time.sleep(0.01)


@dataclass(frozen=True)
class Streamed:
    """What a test needs to watch and steer the served sandbox and its stream."""

    url: str
    stream_url: str
    engine: Engine
    server: SandboxServer

    def control(self, path: str, method: str = "POST", **params: str) -> Any:
        """Call a /sandbox/ control; the answer's data (fails the test on an error answer)."""
        answer = requests.request(method, f"{self.url}/sandbox/{path}", params=params, timeout=10).json()
        assert answer["code"] == "0", answer
        return answer["data"]


@pytest.fixture(scope="module")
def stream_server() -> Iterator[SandboxServer]:
    """One sandbox with its stream per test module, on free loopback ports."""
    server = SandboxServer(
        Engine.create(seed=7, clock="manual"),
        Faults(rate_limits=False),
        stream=True,
        ping_every=PING_EVERY,
        pong_timeout=PONG_TIMEOUT,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def streamed(stream_server: SandboxServer) -> Streamed:
    """A fresh manual-clock world (seed 7) behind the module's server; no stalled channel."""
    engine = Engine.create(seed=7, clock="manual")
    stream_server.reset(engine, Faults(rate_limits=False))
    assert stream_server.stream is not None and stream_server.stream_url is not None
    for name in list(stream_server.stream.stalled):
        stream_server.stream.stall(name, False)
    return Streamed(stream_server.url, stream_server.stream_url, engine, stream_server)
