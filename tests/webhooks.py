"""Webhook endpoints on loopback ports for the notify tests: a receiver that records events, one that redirects,
and one that drips its answer a byte at a time (shared by the command and daemon suites)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextmanager
def receiver(status: int = 204, location: str | None = None) -> Iterator[tuple[str, list[dict]]]:
    """Record every JSON event POSTed to it; answer ``status`` (with ``location`` for a redirect)."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook?token=s3cret-hook", got
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def dripping(seconds: float = 60.0) -> Iterator[tuple[str, list[float]]]:
    """Accept a request, then send the answer's status line one byte every half second for ``seconds``.

    Yields the URL and the times (monotonic) at which requests arrived.
    """
    arrived: list[float] = []
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)
                end = time.monotonic() + seconds
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000:
                    if stop.is_set() or time.monotonic() > end:
                        return
                    conn.sendall(bytes([byte]))
                    stop.wait(0.5)
            except OSError:
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            arrived.append(time.monotonic())
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/slow", arrived
    finally:
        stop.set()
        thread.join(5)
        listener.close()
