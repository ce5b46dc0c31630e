"""The sandbox's WSGI application: routing, the answer envelope, checks, rate limits, faults and the request
log.

Every /open/api answer is HTTP 200 with ``{"code": "0", "msg": "suc", "data": ...}``, errors included
(``code`` is a string); only injected faults and rate limiting answer 500 or 429, and an unknown path is 404.
With a ``prefix`` (``/exchange-open-api``), the /open/api routes are served under it only, as some deployments do.
The engine and the fault settings are attributes of the app, so a long-running server can be handed a fresh
world between tests. ``/sandbox/...`` (inspection and controls, see ``control``) is unsigned and answers
loopback clients only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl

from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from rebalancer.sandbox import control
from rebalancer.sandbox.book import Reject
from rebalancer.sandbox.checks import Received, is_loopback, verify_signed
from rebalancer.sandbox.engine import Engine, wall_ms
from rebalancer.sandbox.faults import Faults, RateLimiter
from rebalancer.sandbox.openapi import envelope, envelope_body
from rebalancer.sandbox.routes import ROUTES, V2_ONLY, Route
from rebalancer.sandbox.world import save as save_world

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

    from rebalancer.sandbox.stream import StreamServer

KEPT_REQUESTS = 500
LOGGED_VALUE_CHARS = 2000


class SandboxApp:
    """The WSGI callable. ``engine`` and ``faults`` may be replaced while serving (``reset``).

    With ``save_path`` set, the world is saved after every successful write and every control action, so the
    embedded sandbox and ``rebalancer sandbox`` share one persistent world.
    """

    def __init__(
        self,
        engine: Engine,
        faults: Faults | None = None,
        *,
        save_path: str | Path | None = None,
        prefix: str = "",
    ) -> None:
        self.engine = engine
        self.prefix = check_prefix(prefix)
        self.faults = faults if faults is not None else Faults()
        self.save_path = None if save_path is None else Path(save_path)
        self.limiter = RateLimiter()
        self.requests: deque[dict[str, Any]] = deque(maxlen=KEPT_REQUESTS)
        self.counts: Counter[str] = Counter()
        self._log_lock = threading.Lock()
        self.stream: StreamServer | None = None  # the market stream served beside, for its controls

    def reset(self, engine: Engine, faults: Faults | None = None) -> None:
        """Serve a fresh world: new engine and faults, empty request log and rate-limit counters."""
        self.engine = engine
        self.faults = faults if faults is not None else Faults()
        self.limiter.reset()
        with self._log_lock:
            self.requests.clear()
            self.counts.clear()

    def request_counts(self) -> dict[str, int]:
        """How many /open/api requests each path received since the last reset (the log keeps only the latest)."""
        with self._log_lock:
            return dict(self.counts)

    def request_log(self) -> list[dict[str, Any]]:
        """The most recent requests, oldest first: time, method, path, parameters, HTTP status and code."""
        with self._log_lock:
            return list(self.requests)

    def save(self) -> None:
        """Save the world if the app was given a ``save_path``."""
        if self.save_path is not None:
            save_world(self.engine, self.save_path)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        request_path = "/" + _wsgi_text(environ.get("PATH_INFO") or "").lstrip("/")  # as Werkzeug's Request reads it
        if request_path.startswith("/sandbox/"):
            request = Request(environ)
            if not is_loopback(request.remote_addr):
                response = envelope("403", "the sandbox controls answer loopback clients only", None, 403)
            else:
                response = control.handle(self, request)
            return response(environ, start_response)
        path = self._route_path(request_path)
        unserved = path in self.faults.unserved or (self.faults.legacy_paths and path in V2_ONLY)
        route = None if unserved else ROUTES.get(path)
        if route is None:
            return Answer("404", "not found", None, 404).send(start_response)
        if method != route.method:
            return Answer("405", f"use {route.method}", None, 405).send(start_response)
        incoming = Incoming(method, request_path, environ.get("HTTP_HOST", ""), environ.get("REMOTE_ADDR"))
        params = received_params(environ, method)
        served = self._serve(incoming, route, params)
        self._log(incoming, params, served)
        if served is None:
            self._drop(environ)
        return served.send(start_response)

    def _route_path(self, path: str) -> str:
        """The /open/api path a request names: with a prefix, only paths under it are served."""
        if not self.prefix:
            return path
        return path[len(self.prefix) :] if path.startswith(self.prefix + "/") else ""

    def _serve(self, request: Incoming, route: Route, params: dict[str, str]) -> Answer | None:
        faults, engine = self.faults, self.engine
        injected = faults.applies_to(request.path)
        if injected and faults.latency > 0:
            time.sleep(faults.latency)
        if faults.rate_limits:
            client = params.get("api_key") or request.remote_addr or "-"
            kind, limit = ("write", faults.write_limit) if route.writes else ("read", faults.read_limit)
            wait = self.limiter.allow(client, kind, limit)
            if wait is not None:
                return Answer("10069", "request rate too high", None, 429, retry_after=max(1, int(wait + 0.999)))
        if injected and faults.roll(faults.error_500):
            return Answer("100001", "system error (injected fault)", None, 500)
        if injected and faults.roll(faults.rate_429):
            return Answer("10069", "request rate too high (injected fault)", None, 429)
        engine.catch_up()
        try:
            api_key = None
            if route.signed:
                api_key = verify_signed(
                    params,
                    engine.secret_for,
                    wall_ms(),
                    faults.time_window_s,
                    received=Received(request.method, request.host, request.path),
                    mode=faults.sign,
                )
            data = route.handler(engine, params, api_key, faults)
        except Reject as exc:
            return Answer(exc.code, exc.msg, None)
        if route.writes:
            self.save()
            if injected and faults.roll(faults.drop_after_apply):
                if faults.drop_mode == "close":
                    return None
                return Answer("100001", "system error (injected fault; the write was applied)", None, 500)
        return Answer("0", "suc", data)

    def _drop(self, environ: WSGIEnvironment) -> NoReturn:
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        # The server treats a connection error as "client went away" and writes nothing more.
        raise ConnectionAbortedError("answer dropped on purpose (injected fault)")

    def _log(self, request: Incoming, params: dict[str, str], answer: Answer | None) -> None:
        entry = {
            "time": wall_ms(),
            "method": request.method,
            "path": request.path,
            "params": {k: v[:LOGGED_VALUE_CHARS] for k, v in params.items()},
            "status": 0 if answer is None else answer.status,
            "code": None if answer is None else answer.code,
        }
        with self._log_lock:
            self.requests.append(entry)
            self.counts[request.path] += 1


@dataclass(frozen=True, slots=True)
class Incoming:
    """What the sandbox uses of an /open/api request besides its parameters: method, path (as Werkzeug's
    ``Request.path`` reads it), the Host header as received and the client's address."""

    method: str
    path: str
    host: str
    remote_addr: str | None


class Answer:
    """An /open/api answer: the envelope's ``code``, its JSON body and the HTTP status, sent as a plain WSGI
    answer (``Content-Type``, ``Content-Length`` and, when rate limited, ``Retry-After``): the same bytes a
    Werkzeug response would send, without building one per request."""

    __slots__ = ("body", "code", "retry_after", "status")

    def __init__(
        self, code: str, msg: str | None, data: Any, status: int = 200, *, retry_after: int | None = None
    ) -> None:
        self.code = code
        self.body = envelope_body(code, msg, data)
        self.status = status
        self.retry_after = retry_after

    def send(self, start_response: StartResponse) -> list[bytes]:
        """Start the WSGI answer and return its body."""
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(self.body)))]
        if self.retry_after is not None:
            headers.append(("Retry-After", str(self.retry_after)))
        start_response(STATUS_LINES[self.status], headers)
        return [self.body]


STATUS_LINES = {status: f"{status} {HTTP_STATUS_CODES[status].upper()}" for status in (200, 404, 405, 429, 500)}
"""The status lines of the /open/api answers, spelled as Werkzeug spells them."""


def received_params(environ: WSGIEnvironment, method: str) -> dict[str, str]:
    """Each received parameter's first value, the query string's before the form's, as Werkzeug's
    ``request.values`` gives them (a GET's form is not read): the query string parsed as Werkzeug parses it, the
    form of other methods read by Werkzeug itself."""
    pairs = parse_qsl(
        environ.get("QUERY_STRING", "").encode("latin1").decode(), keep_blank_values=True, errors="werkzeug.url_quote"
    )
    params: dict[str, str] = {}
    for name, value in pairs:
        params.setdefault(name, value)
    if method == "GET":
        return params
    return {**dict(Request(environ).form.items()), **params}


def _wsgi_text(value: str) -> str:
    return value.encode("latin1").decode(errors="replace")


def check_prefix(prefix: str) -> str:
    """A path prefix such as ``/exchange-open-api`` (no trailing slash; empty for none); else ValueError."""
    cleaned = prefix.rstrip("/")
    if cleaned and (not cleaned.startswith("/") or not all(part for part in cleaned[1:].split("/"))):
        raise ValueError(f"a path prefix looks like /exchange-open-api, got {prefix!r}")
    if any(c.isspace() or c in "?#%" for c in cleaned) or cleaned.startswith("/sandbox"):
        raise ValueError(f"a path prefix looks like /exchange-open-api, got {prefix!r}")
    return cleaned


def make_app(
    engine: Engine, faults: Faults | None = None, *, save_path: str | Path | None = None, prefix: str = ""
) -> SandboxApp:
    """The sandbox WSGI application serving ``engine`` with ``faults`` (all off when None) under ``prefix``."""
    return SandboxApp(engine, faults, save_path=save_path, prefix=prefix)
