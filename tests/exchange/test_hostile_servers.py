"""Hostile exchanges over real sockets: answers dripped a byte at a time, oversized bodies, endless pages."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from decimal import Decimal

import pytest

from rebalancer.errors import BadResponse, OutcomeUnknown, TransientError
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.models import Side, SymbolRules, Target
from tests.exchange.hostile import drip, http_answer, serving

TICKER = json.dumps({"code": "0", "msg": "suc", "data": {"buy": "1.0", "sell": "1.1", "last": "1.05"}}).encode()
RULES = SymbolRules("btcusdt", "btc", "usdt", 2, 4)


def client_for(url: str, **profile: object) -> OpenApiClient:
    """A client with its own limiter and no backoff waits; timeouts generous unless the test is about them (a
    loaded machine must not turn one of a thousand page reads into a timeout)."""
    limiter = KeyLimiter(RateLimit(10_000, 1.0), RateLimit(10_000, 1.0))
    settings = {"backoff_base": 0.0, "connect_timeout": 10.0, "read_timeout": 10.0, **profile}
    return OpenApiClient(url, "key", "secret", ExchangeProfile(**settings), limiter=limiter)  # type: ignore[arg-type]


def dripping_body(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    answer = http_answer(TICKER + b" " * 200)
    head, body = answer.split(b"\r\n\r\n", 1)
    conn.sendall(head + b"\r\n\r\n")
    drip(conn, body, 0.05, stop)


def dripping_everything(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    drip(conn, http_answer(TICKER), 0.05, stop)


@pytest.mark.parametrize("respond", [dripping_body, dripping_everything], ids=["body", "status-and-headers"])
def test_an_answer_dripped_a_byte_at_a_time_hits_the_total_deadline(respond: object) -> None:
    with serving(respond) as server, client_for(server.url, read_retries=3, read_timeout=0.5) as client:  # type: ignore[arg-type]
        started = time.monotonic()
        with pytest.raises(TransientError, match=r"no complete answer within 0\.5s"):
            client.ticker("btcusdt")
        elapsed = time.monotonic() - started
        assert server.requests <= 2  # a timed-out attempt uses up the retry window
    assert elapsed < 10, "each byte came within the per-read timeout, so only a total deadline ends this"


def test_a_dripped_write_answer_is_an_unknown_outcome_that_may_land_late() -> None:
    with serving(dripping_body) as server, client_for(server.url, read_timeout=0.5) as client:
        target = Target("buy-1", Side.BUY, Decimal("1.00"), Decimal("1"))
        with pytest.raises(OutcomeUnknown) as error:
            client.replace(RULES, [], [target])
        assert error.value.may_land_late


def oversized(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    size = 17 * 1024 * 1024
    conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n".encode())
    block = b" " * (1024 * 1024)
    for _ in range(17):
        if stop.is_set():
            return
        conn.sendall(block)


def test_an_answer_body_above_16_mib_is_refused() -> None:
    with serving(oversized) as server, client_for(server.url, read_timeout=10) as client:
        with pytest.raises(BadResponse, match="larger than 16 MiB"):
            client.ticker("btcusdt")
        with pytest.raises(OutcomeUnknown, match="larger than 16 MiB"):
            client.replace(RULES, ["1"], [])


def endless_pages(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """Every page holds one fresh order and claims a book of 900,000."""
    page = int(re.search(rb"[?&]page=(\d+)", request).group(1))  # type: ignore[union-attr]
    row = {"id": page, "side": "BUY", "price": "1.00", "volume": "1", "status": 1}
    body = json.dumps({"code": "0", "msg": "suc", "data": {"count": 900_000, "resultList": [row]}})
    conn.sendall(http_answer(body.encode()))


def test_pages_that_never_end_stop_at_the_page_cap() -> None:
    with serving(endless_pages) as server, client_for(server.url) as client:
        client.open_order_bound = 2_000_000  # past any count a page may claim: only the page cap stops the read
        with pytest.raises(BadResponse, match="still more pages after 1000"):
            client.open_orders("btcusdt")
        assert server.requests == 1000


def test_a_claimed_book_beyond_what_the_job_can_own_is_refused_at_the_first_page() -> None:
    with serving(endless_pages) as server, client_for(server.url) as client:
        client.open_order_bound = 120
        with pytest.raises(BadResponse, match="claims 900000 open orders on btcusdt, more than the 120"):
            client.open_orders("btcusdt")
        assert server.requests == 1


def lying_count(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """Pages of 50 fresh orders that always claim a book of 10: the count lies low, the rows never end."""
    page = int(re.search(rb"[?&]page=(\d+)", request).group(1))  # type: ignore[union-attr]
    rows = [{"id": page * 100 + i, "side": "BUY", "price": "1.00", "volume": "1", "status": 1} for i in range(50)]
    body = json.dumps({"code": "0", "msg": "suc", "data": {"count": 10, "resultList": rows}})
    conn.sendall(http_answer(body.encode()))


def test_rows_beyond_the_bound_are_refused_when_count_lies() -> None:
    with serving(lying_count) as server, client_for(server.url) as client:
        client.open_order_bound = 30
        with pytest.raises(BadResponse, match="claims 50 open orders on btcusdt, more than the 30"):
            client.open_orders("btcusdt")
        assert server.requests == 1


def short_of_count(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """Pages of 5 rows claiming a book of 30, each page sliding by one row: one new order a page, forever."""
    page = int(re.search(rb"[?&]page=(\d+)", request).group(1))  # type: ignore[union-attr]
    rows = [{"id": page + i, "side": "BUY", "price": "1.00", "volume": "1", "status": 1} for i in range(5)]
    body = json.dumps({"code": "0", "msg": "suc", "data": {"count": 30, "resultList": rows}})
    conn.sendall(http_answer(body.encode()))


def test_pages_beyond_what_count_and_the_page_size_allow_are_refused() -> None:
    with serving(short_of_count) as server, client_for(server.url) as client:
        with pytest.raises(BadResponse, match="pages of up to 5 rows still fall short of count 30"):
            client.open_orders("btcusdt")
        assert server.requests == 7  # 30 rows at 5 a page is 6 pages, and one more for orders moving between pages


def same_page_again(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    """A server that ignores ``page``: the same two rows on every page, of a book of five."""
    rows = [{"id": i, "side": "BUY", "price": "1.00", "volume": "1", "status": 1} for i in (1, 2)]
    body = json.dumps({"code": "0", "msg": "suc", "data": {"count": 5, "resultList": rows}})
    conn.sendall(http_answer(body.encode()))


def test_a_server_that_ignores_page_is_refused_not_read_as_a_partial_book() -> None:
    with (
        serving(same_page_again) as server,
        client_for(server.url) as client,
        pytest.raises(BadResponse, match="page 2 repeats orders already read"),
    ):
        client.open_orders("btcusdt")


def unknown_charset(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=x-nonsense\r\nContent-Length: {len(TICKER)}"
    conn.sendall(head.encode() + b"\r\n\r\n" + TICKER)


def test_an_unknown_charset_is_read_as_utf8() -> None:
    with serving(unknown_charset) as server, client_for(server.url) as client:
        assert client.ticker("btcusdt").bid == Decimal("1.0")
