"""Tiny hostile HTTP servers on 127.0.0.1 for client tests: each connection is answered by a test's function."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator

Respond = Callable[[socket.socket, bytes], None]


def read_request(conn: socket.socket) -> bytes:
    """The whole request: its head up to the blank line and a body of its Content-Length.

    Reading the body matters: closing a socket with unread data resets the connection under the answer.
    """
    data = b""
    conn.settimeout(5)
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = conn.recv(4096)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else 0
    while len(body) < length:
        chunk = conn.recv(4096)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def drip(conn: socket.socket, payload: bytes, every: float, stop: threading.Event) -> None:
    """Send ``payload`` one byte at a time, ``every`` seconds apart, until done or ``stop`` is set."""
    for index in range(len(payload)):
        if stop.is_set():
            return
        conn.sendall(payload[index : index + 1])
        time.sleep(every)


def http_answer(body: bytes, *, status: str = "200 OK") -> bytes:
    """A complete HTTP/1.1 answer with a JSON body and its length."""
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode("ascii") + body


class RawServer:
    """Accepts connections on a free loopback port and hands each to ``respond`` in its own thread.

    ``requests`` counts the connections answered; ``stop`` ends every drip and closes the socket.
    """

    def __init__(self, respond: Callable[[socket.socket, bytes, threading.Event], None]) -> None:
        self._respond = respond
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.stop_event = threading.Event()
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        """The base URL of the server."""
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self.stop_event.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self.requests += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            request = read_request(conn)
            self._respond(conn, request, self.stop_event)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        self._thread.join(timeout=5)
        self._sock.close()


@contextlib.contextmanager
def serving(respond: Callable[[socket.socket, bytes, threading.Event], None]) -> Iterator[RawServer]:
    """A ``RawServer`` running for the block."""
    with RawServer(respond) as server:
        yield server
