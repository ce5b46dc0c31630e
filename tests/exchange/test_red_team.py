"""Hostile exchange answers over real sockets that the other tests do not send: a gzip bomb (a small body that
inflates past the answer bound) and a JSON answer nested beyond any real one."""

from __future__ import annotations

import json
import resource
import socket
import threading
import zlib

import pytest

from rebalancer.errors import BadResponse, ExchangeError
from tests.exchange.hostile import http_answer, serving
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
    with (
        serving(gzip_bomb) as server,
        client_for(server.url, read_timeout=10) as client,
        pytest.raises(BadResponse, match="larger than 16 MiB"),
    ):
        client.ticker("btcusdt")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < 128 * 1024, f"the peak memory grew by {grown} KiB reading a {len(BOMB)}-byte answer"


def test_an_answer_nested_beyond_reason_is_a_bad_response() -> None:
    with (
        serving(deep) as server,
        client_for(server.url, read_timeout=10) as client,
        pytest.raises(BadResponse) as refused,
    ):
        client.ticker("btcusdt")
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 300


@pytest.mark.parametrize(
    ("code", "msg"),
    [
        ("100004", "line1\nline2\x1b[2J\x1b]0;pwned\x07"),
        ("100004", "\u202eevil"),
        ("9" * 100_000, "refused"),
        ("\x1b[31m1", "coloured code"),
    ],
    ids=["escapes-and-line-breaks", "bidi-override", "huge-code", "escape-in-code"],
)
def test_an_exchanges_message_reaches_no_terminal_raw(code: str, msg: str) -> None:
    body = json.dumps({"code": code, "msg": msg}).encode()

    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(http_answer(body))

    with serving(respond) as server, client_for(server.url) as client, pytest.raises(ExchangeError) as refused:
        client.ticker("btcusdt")
    text = str(refused.value)
    assert text.isprintable(), repr(text)  # no line break, escape, bell or direction override
    assert len(text) < 500


@pytest.mark.parametrize(
    "ident",
    ["1001\x1b[2J\x1b]0;pwned\x07", "10 01", "7" * 200, "x" * 1_000_000, "10\n01"],
    ids=["escapes", "inner-space", "200-characters", "a-million-characters", "line-break"],
)
def test_an_order_id_no_exchange_writes_is_a_bad_row(ident: str) -> None:
    # An id is shown in plans and history, stored, and sent back in cancels: it must be short printable text.
    row = {"id": ident, "side": "BUY", "price": "1.00", "volume": "1", "status": 1}
    body = json.dumps({"code": "0", "msg": "suc", "data": {"count": 1, "resultList": [row]}}).encode()

    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(http_answer(body))

    with (
        serving(respond) as server,
        client_for(server.url) as client,
        pytest.raises(BadResponse, match=r"resultList\[0\]\.id is not an id") as refused,
    ):
        client.open_orders("btcusdt")
    assert str(refused.value).isprintable() and len(str(refused.value)) < 300


@pytest.mark.parametrize("ident", ["1001", "504", "a7f3c2e1-0b4d-4e5f-9a8b-1c2d3e4f5a6b", "7" * 64])
def test_ids_exchanges_write_are_read(ident: str) -> None:
    row = {"id": ident, "side": "BUY", "price": "1.00", "volume": "1", "status": 1}
    body = json.dumps({"code": "0", "msg": "suc", "data": {"count": 1, "resultList": [row]}}).encode()

    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(http_answer(body))

    with serving(respond) as server, client_for(server.url) as client:
        assert [order.id for order in client.open_orders("btcusdt")] == [ident]
