"""A hostile webhook over loopback: one that answers its event with an endless body. The notifier needs the
status only; it must not read (and hold in memory) whatever the endpoint sends after it."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rebalancer.notify import Notifier

BODY = 64 * 1024 * 1024
CHUNK = 64 * 1024


@contextmanager
def flooding() -> Iterator[tuple[str, list[dict], list[int]]]:
    """A webhook that takes the event, answers 200 with a 64 MiB body and writes it as fast as it is taken; the
    events it got and, once it stops, how many body bytes it sent before the other side hung up."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    got: list[dict] = []
    sent: list[int] = []

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
            )
            while len(body) < length:
                body += conn.recv(65536)
            got.append(json.loads(body))
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\nContent-Type: text/plain\r\n\r\n".encode())
            total = 0
            try:
                while total < BODY:
                    conn.sendall(b"x" * CHUNK)
                    total += CHUNK
            except OSError:
                pass
            sent.append(total)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/hook", got, sent
    finally:
        thread.join(timeout=30)
        server.close()


def test_an_endless_answer_is_not_read() -> None:
    failed: list[str] = []
    notifier = Notifier(on_failure=failed.append)
    with flooding() as (url, got, sent):
        notifier.send(url, "flood", "failing", "told once")
        notifier.close(wait=30)
    assert [event["message"] for event in got] == ["told once"]
    assert failed == []  # a 200 is a delivery, whatever follows it
    assert sent and sent[0] < 16 * 1024 * 1024, f"the notifier read {sent[0]} bytes of the answer's body"
