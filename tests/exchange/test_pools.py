"""Transports of one exchange URL in one process share their keep-alive connections (``exchange.pools``)."""

from __future__ import annotations

import gc
import logging
import multiprocessing
import socket
import threading
from collections.abc import Iterator

import pytest

from rebalancer.exchange.pools import adapter_users
from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.transport import Transport
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from tests.exchange.hostile import http_answer, serving


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """A sandbox of this test's own: its URL is new, so no transport of another test shares its connections."""
    with SandboxServer(Engine.create(seed=7, clock="manual"), Faults(rate_limits=False)) as served:
        yield served


def transport(url: str) -> Transport:
    return Transport(url, DEMO_API_KEY, DEMO_SECRET_KEY, ExchangeProfile(), insecure=True)


def test_transports_of_one_url_send_over_one_connection(server: SandboxServer) -> None:
    """Five jobs' transports reading in turn: one connection, not five."""
    transports = [transport(server.url) for _ in range(5)]
    for each in transports:
        each.read("common/symbols", {}, signed=False)
        each.read("user/account", {}, signed=True)
    assert server.connections_accepted == 1
    for each in transports:
        each.close()


def test_the_last_transport_to_let_go_closes_the_connections(server: SandboxServer) -> None:
    first, second = transport(server.url), transport(server.url)
    first.read("common/symbols", {}, signed=False)
    assert adapter_users(server.url) == 2
    first.close()
    second.read("common/symbols", {}, signed=False)  # the pool outlives the transport that opened it
    assert server.connections_accepted == 1
    second.close()
    assert adapter_users(server.url) == 0
    third = transport(server.url)  # a new transport after the last one let go opens a new connection
    third.read("common/symbols", {}, signed=False)
    assert server.connections_accepted == 2
    third.close()


def test_a_transport_closed_twice_or_dropped_unclosed_gives_its_share_back_once(server: SandboxServer) -> None:
    kept, closed_twice = transport(server.url), transport(server.url)
    kept.read("common/symbols", {}, signed=False)
    closed_twice.close()
    closed_twice.close()  # a second close must not take the kept transport's share
    kept.read("common/symbols", {}, signed=False)
    assert server.connections_accepted == 1 and adapter_users(server.url) == 1
    dropped = transport(server.url)
    del dropped
    gc.collect()
    kept.read("common/symbols", {}, signed=False)
    assert server.connections_accepted == 1
    del kept
    gc.collect()
    assert adapter_users(server.url) == 0  # the last one, collected unclosed, let go of the pool


def test_different_urls_keep_different_connections(server: SandboxServer) -> None:
    with SandboxServer(Engine.create(seed=7, clock="manual"), Faults(rate_limits=False)) as other:
        mine, theirs = transport(server.url), transport(other.url)
        mine.read("common/symbols", {}, signed=False)
        theirs.read("common/symbols", {}, signed=False)
        assert (server.connections_accepted, other.connections_accepted) == (1, 1)
        mine.close()
        theirs.close()


def test_passes_sending_at_once_each_get_a_connection_and_none_is_dropped(
    server: SandboxServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Sixteen transports reading at once (a daemon's pass threads): every read answered, no 'pool is full'."""
    transports = [transport(server.url) for _ in range(16)]
    start = threading.Barrier(len(transports))
    failures: list[BaseException] = []

    def read(each: Transport) -> None:
        start.wait(timeout=30)
        try:
            for _ in range(5):
                each.read("common/symbols", {}, signed=False)
        except BaseException as error:  # reported by the test, not lost in the thread
            failures.append(error)

    threads = [threading.Thread(target=read, args=(each,)) for each in transports]
    with caplog.at_level(logging.WARNING, logger="urllib3"):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == []
    assert 1 <= server.connections_accepted <= len(transports)
    assert not [record for record in caplog.records if "pool is full" in record.getMessage()]
    for each in transports:
        each.close()


def _count_in_child(report: multiprocessing.connection.Connection, url: str) -> None:
    report.send(adapter_users(url))


def test_a_forked_process_starts_without_the_parents_connections(server: SandboxServer) -> None:
    held = transport(server.url)
    held.read("common/symbols", {}, signed=False)
    assert adapter_users(server.url) == 1
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=_count_in_child, args=(send, server.url))
    child.start()
    assert receive.poll(60)
    assert receive.recv() == 0
    child.join(60)
    held.close()


def test_a_shared_connection_the_server_closed_is_not_where_another_jobs_write_goes() -> None:
    """The server answers one request per connection and closes it without saying so (no ``Connection: close``):
    the next job's write must go over a new connection and succeed, not fail on the dead one as an unknown
    outcome."""
    closed = threading.Event()
    writes: list[bytes] = []

    def answer_once_then_close(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        if request.startswith(b"POST"):
            writes.append(request)
        conn.sendall(http_answer(b'{"code": "0", "msg": "suc", "data": {"order_id": "1"}}'))
        conn.shutdown(socket.SHUT_RDWR)
        closed.set()

    with serving(answer_once_then_close) as server:
        reader, writer = transport(server.url), transport(server.url)
        reader.read("get_ticker", {"symbol": "btcusdt"}, signed=False)
        assert closed.wait(30)
        assert writer.write("v2/new_order", {"symbol": "btcusdt", "side": "BUY"}) == {"order_id": "1"}
        assert len(writes) == 1 and server.requests == 2
        reader.close()
        writer.close()
