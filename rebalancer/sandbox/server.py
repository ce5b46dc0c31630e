"""Serving the sandbox over real HTTP: in a background thread (tests, the embedded ``url: sandbox``) or in the
foreground (``rebalancer sandbox``).

The server is Werkzeug's threaded server bound to 127.0.0.1 by default; port 0 picks a free port, and ``url``
tells which one was taken. It keeps HTTP/1.1 connections open between requests (keep-alive), as real exchanges do,
so a client's session reuses one connection and a benchmark measures the client, not connection set-up.
"""

from __future__ import annotations

import contextlib
import email.utils
import io
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

from rebalancer.sandbox.app import SandboxApp
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.stream import StreamServer

MAX_KEPT_BODY = 1024 * 1024
"""A request body longer than this closes the connection after its answer (Werkzeug then discards the rest)."""


class QuietHandler(WSGIRequestHandler):
    """Request handler that does not print a line per request (the app keeps its own request log) and keeps the
    connection open after an answer of known length.

    Werkzeug's handler ends every answer with ``Connection: close`` and, once answered, discards whatever the
    client sent next (the request body it left unread, it assumes, as no second request can follow). Here the
    request body is read to its ``Content-Length`` instead, so the bytes after it are the next request; a chunked
    or large (over ``MAX_KEPT_BODY``) request body, an answer without a length, or a client asking to close still
    closes the connection, as Werkzeug does.
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # the headers and the body leave in two writes: the second must not wait
    _body: LimitedStream | None = None
    _sized_answer = False
    _date_text: tuple[int, str] = (-1, "")

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing: ``GET /sandbox/requests`` shows the traffic."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The ``Date`` header's text, formatted once per second (every answer of that second sends the same)."""
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        kept = QuietHandler._date_text
        if kept[0] != second:
            kept = (second, email.utils.formatdate(second, usegmt=True))
            QuietHandler._date_text = kept  # one tuple swapped whole: a race only formats the same second twice
        return kept[1]

    def make_environ(self) -> Any:
        """Werkzeug's environ, its input limited to this request's body (read to its end after the answer)."""
        environ = super().make_environ()
        self._sized_answer = False
        length = environ.get("CONTENT_LENGTH") or "0"
        if not environ.get("wsgi.input_terminated") and length.isdigit() and int(length) <= MAX_KEPT_BODY:
            self._body = LimitedStream(environ["wsgi.input"], int(length))
            environ["wsgi.input"] = self._body
            self.rfile = _NOTHING_LEFT  # what Werkzeug's after-answer discard reads: the next request stays unread
        return environ

    def run_wsgi(self) -> None:
        """Answer one request; then read what is left of its body, so the connection is ready for the next."""
        rfile = self.rfile
        self._body = None
        try:
            super().run_wsgi()
        finally:
            self.rfile = rfile
        if self._body is None:
            self.close_connection = True
        elif not self.close_connection:
            with contextlib.suppress(OSError, ValueError):
                self._body.exhaust()

    def send_header(self, keyword: str, value: str) -> None:
        """Send a header, except Werkzeug's ``Connection: close`` after an answer that says its length."""
        name = keyword.lower()
        if name == "content-length":
            self._sized_answer = True
        elif name == "connection" and value.lower() == "close" and self._keeps_open():
            return
        super().send_header(keyword, value)

    def _keeps_open(self) -> bool:
        return self._sized_answer and self._body is not None and not self.close_connection


_NOTHING_LEFT = io.BytesIO()


class KeepAliveServer(ThreadedWSGIServer):
    """Werkzeug's threaded server that counts the connections it accepted and can close the open ones: a client
    keeps its connection open between requests, so stopping the server must end them too."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        super().__init__(host, port, app, QuietHandler)
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Count and note the connection, then serve it in its own thread."""
        with self._open_lock:
            self.accepted += 1
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        """Forget the connection and close it."""
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open connection (its thread then sees the client gone and finishes)."""
        with self._open_lock:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SandboxServer:
    """The sandbox served in a daemon thread: ``start()``, ``url``, ``stop()``, or use it as a context
    manager.

    ``engine`` and ``faults`` can be replaced while it runs (``reset``), so one server can outlive many
    worlds.
    """

    def __init__(
        self,
        engine: Engine,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        save_path: str | Path | None = None,
        prefix: str = "",
        stream: bool = False,
        stream_port: int = 0,
        ping_every: float = 5.0,
        pong_timeout: float | None = None,
    ) -> None:
        self.app = SandboxApp(engine, faults, save_path=save_path, prefix=prefix)
        self.host = host
        self.port = port
        self.stream = (
            StreamServer(engine, host, stream_port, ping_every=ping_every, pong_timeout=pong_timeout)
            if stream
            else None
        )
        self.app.stream = self.stream
        self._server: KeepAliveServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def engine(self) -> Engine:
        """The world being served."""
        return self.app.engine

    @property
    def faults(self) -> Faults:
        """The fault settings in force."""
        return self.app.faults

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321`` or with the prefix (only once started)."""
        if self._server is None:
            raise RuntimeError("the sandbox server is not started")
        return f"http://{self.host}:{self._server.server_port}{self.app.prefix}"

    @property
    def stream_url(self) -> str | None:
        """The market stream's URL, ``ws://127.0.0.1:PORT/kline-api/ws`` (None when not served)."""
        return None if self.stream is None else self.stream.url

    def reset(self, engine: Engine, faults: Faults | None = None) -> None:
        """Serve a fresh world with fresh fault settings (all off when None); the stream follows the new world."""
        self.app.reset(engine, faults)
        if self.stream is not None:
            self.stream.attach(engine)

    @property
    def connections_accepted(self) -> int:
        """How many TCP connections the server has accepted since it started (keep-alive reuses one)."""
        return 0 if self._server is None else self._server.accepted

    def bind(self) -> BaseWSGIServer:
        """Open the listening socket (without serving yet)."""
        if self._server is None:
            self._server = KeepAliveServer(self.host, self.port, self.app)
        return self._server

    def start(self) -> SandboxServer:
        """Bind and serve in a daemon thread (and the stream beside, when asked for); returns self."""
        server = self.bind()
        if self.stream is not None:
            self.stream.start()
        if self._thread is None:
            self._thread = threading.Thread(target=server.serve_forever, name="rebalancer-sandbox", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and save the world if the server was given a ``save_path``."""
        if self.stream is not None:
            self.stream.stop()
        if self._server is not None:
            if self._thread is not None:
                self._server.shutdown()
                self._thread.join()
            self._server.close_connections()
            self._server.server_close()
            self.app.save()
        self._server = None
        self._thread = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(
    engine: Engine,
    host: str = "127.0.0.1",
    port: int = 8790,
    on_ready: Callable[[str], None] | None = None,
    *,
    faults: Faults | None = None,
    save_path: str | Path | None = None,
) -> None:
    """Serve in the foreground until interrupted (KeyboardInterrupt ends it cleanly), saving the world at the
    end.

    ``on_ready(url)`` is called once the socket is bound, before serving: the CLI prints the base URL and the
    demo credentials there.
    """
    sandbox = SandboxServer(engine, faults, host, port, save_path=save_path)
    server = sandbox.bind()
    if on_ready is not None:
        on_ready(sandbox.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
