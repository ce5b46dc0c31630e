"""Serving the sandbox over real HTTP: in a background thread (tests, the embedded ``url: sandbox``) or in the
foreground (``rebalancer sandbox``).

The server is Werkzeug's threaded server bound to 127.0.0.1 by default; port 0 picks a free port, and ``url``
tells which one was taken.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from rebalancer.sandbox.app import SandboxApp
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.stream import StreamServer


class QuietHandler(WSGIRequestHandler):
    """Request handler that does not print a line per request (the app keeps its own request log)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Say nothing: ``GET /sandbox/requests`` shows the traffic."""


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
        self._server: BaseWSGIServer | None = None
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

    def bind(self) -> BaseWSGIServer:
        """Open the listening socket (without serving yet)."""
        if self._server is None:
            self._server = make_server(self.host, self.port, self.app, threaded=True, request_handler=QuietHandler)
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
