"""A tiny real HTTP server serving canned answers, for what the sandbox cannot produce.

Each test queues answers per path; the server records every request it receives (method, path, parameters).
"""

from __future__ import annotations

import email.utils
import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

Handler = Callable[[Request], Response | None]


def envelope(data: Any = None, code: Any = "0", msg: Any = "suc") -> str:
    """A JSON envelope body."""
    return json.dumps({"code": code, "msg": msg, "data": data})


@dataclass
class Seen:
    """One request as the server received it."""

    method: str
    path: str
    params: dict[str, str]


@dataclass
class CannedServer:
    """Answers queued per path (``/open/api/`` stripped); an empty queue answers 404."""

    url: str = ""
    answers: dict[str, deque[Handler]] = field(default_factory=lambda: defaultdict(deque))
    seen: list[Seen] = field(default_factory=list)
    repeat: dict[str, Handler] = field(default_factory=dict)
    date_skew_s: float = 0.0

    def add(self, path: str, body: str, status: int = 200, headers: dict[str, str] | None = None) -> None:
        """Queue one answer for ``path``."""
        self.answers[path].append(lambda _req: Response(body, status=status, headers=headers or {}))

    def add_handler(self, path: str, handler: Handler) -> None:
        """Queue a function computing the answer (returning None drops the connection)."""
        self.answers[path].append(handler)

    def always(self, path: str, handler: Handler) -> None:
        """Answer every request to ``path`` with ``handler`` once its queue is empty."""
        self.repeat[path] = handler

    def calls(self, path: str) -> list[Seen]:
        """The requests received for ``path``."""
        return [s for s in self.seen if s.path == path]

    def app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        path = request.path.removeprefix("/prefix").removeprefix("/open/api/")
        params = dict(request.args) if request.method == "GET" else dict(request.form)
        self.seen.append(Seen(request.method, path, params))
        queue = self.answers.get(path)
        handler = queue.popleft() if queue else self.repeat.get(path)
        response = handler(request) if handler else Response("not found", status=404)
        if response is None:
            sock = environ["werkzeug.socket"]
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            return []
        return response(environ, start_response)


def drop(_request: Request) -> None:
    """A handler that closes the connection without answering."""
    return None


class _SkewedHandler(WSGIRequestHandler):
    def date_time_string(self, timestamp: float | None = None) -> str:
        skew = self.server.canned.date_skew_s  # type: ignore[attr-defined]
        return email.utils.formatdate((timestamp or time.time()) + skew, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def canned() -> Iterator[CannedServer]:
    """A running canned server on 127.0.0.1 (a random free port), stopped after the test."""
    state = CannedServer()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, state.app, threaded=True, request_handler=_SkewedHandler)
    server.canned = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


SECRET = "s3cr3t-never-shown-0123456789abcdef"
API_KEY = "testkey-0123456789abcdef"


class SleepRecorder:
    """Stands in for ``time.sleep`` and a monotonic clock: sleeping records the delay and moves the clock."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 0.0

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        """The fake monotonic time."""
        return self.now


@pytest.fixture
def sleeps() -> SleepRecorder:
    """The recorder the ``client`` fixture sleeps with."""
    return SleepRecorder()


@pytest.fixture
def client(canned: CannedServer, sleeps: SleepRecorder) -> Iterator[Any]:
    """An ``OpenApiClient`` on the canned server: its own generous limiter, instant recorded sleeps."""
    from rebalancer.exchange.client import OpenApiClient
    from rebalancer.exchange.profile import ExchangeProfile, RateLimit
    from rebalancer.exchange.ratelimit import KeyLimiter

    profile = ExchangeProfile(read_retries=2, backoff_base=0.01, read_timeout=2.0, connect_timeout=2.0)
    limiter = KeyLimiter(RateLimit(10_000, 1.0), RateLimit(10_000, 1.0), clock=sleeps.clock, sleep=sleeps)
    with OpenApiClient(canned.url, API_KEY, SECRET, profile, limiter=limiter, sleep=sleeps) as made:
        yield made
