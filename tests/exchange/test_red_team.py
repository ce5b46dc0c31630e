"""Hostile exchange answers over real sockets that the other tests do not send: a gzip bomb (a small body that
inflates past the answer bound) and a JSON answer nested beyond any real one."""

from __future__ import annotations

import resource
import socket
import threading
import zlib

import pytest

from rebalancer.errors import BadResponse
from tests.exchange.hostile import serving
from tests.exchange.test_hostile_servers import client_for

INFLATED = 256 * 1024 * 1024


def _bomb() -> bytes:
    """256 MiB of spaces after a ticker's opening brace, gzip-compressed (about 250 KiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [packer.compress(b'{"code": "0", "data": ')]
    block = b" " * (1024 * 1024)
    parts += [packer.compress(block) for _ in range(INFLATED // len(block))]
    parts.append(packer.flush())
    return b"".join(parts)


BOMB = _bomb()


def gzip_bomb(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: {len(BOMB)}"
    conn.sendall(head.encode() + b"\r\n\r\n" + BOMB)


def deep(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    body = b'{"code": "0", "data": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    conn.sendall(body)


def test_a_gzip_bomb_is_refused_at_the_answer_bound_without_inflating_it() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with serving(gzip_bomb) as server, client_for(server.url, read_timeout=10) as client:
        with pytest.raises(BadResponse, match="larger than 16 MiB"):
            client.ticker("btcusdt")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 128 * 1024, f"the peak memory grew by {grown} KiB reading a {len(BOMB)}-byte answer"


def test_an_answer_nested_beyond_reason_is_a_bad_response() -> None:
    with serving(deep) as server, client_for(server.url, read_timeout=10) as client:
        with pytest.raises(BadResponse) as refused:
            client.ticker("btcusdt")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300
