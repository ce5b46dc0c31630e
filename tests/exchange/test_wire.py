"""The transport's own send (``exchange/wire.py``) against ``requests``' ``Session.send`` over loopback: the same bytes
on the wire, the same ``Response``, the same exception for every way a request can fail, through a proxy too."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from rebalancer.errors import ExchangeError, OutcomeUnknown, RequestError, TransientError
from rebalancer.exchange import transport
from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.transport import Transport
from tests.exchange.hostile import serving

BODY = b'{"code": "0", "msg": "ok", "data": {"last": "1.5"}}'


def answer(head: str, body: bytes = BODY, *, length: int | None = None) -> bytes:
    """An HTTP/1.1 answer: the status line and headers given, the connection closed after it, and ``body``."""
    size = len(body) if length is None else length
    return f"{head}\r\nConnection: close\r\nContent-Length: {size}\r\n\r\n".encode("latin-1") + body


ANSWERS = {
    "json": answer("HTTP/1.1 200 OK\r\nContent-Type: application/json"),
    "cookie and charset": answer(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=latin-1\r\nSet-Cookie: edge=xyz; Path=/"
    ),
    "no content type": answer("HTTP/1.1 200 OK"),
    "429": answer("HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3", b""),
    "503": answer("HTTP/1.1 503 Service Unavailable", b"down"),
    "chunked": b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
    + f"{len(BODY):x}\r\n".encode()
    + BODY
    + b"\r\n0\r\n\r\n",
    "to the end": b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY,
    "cut short": answer("HTTP/1.1 200 OK", BODY[:10], length=len(BODY)),
    "bad chunk": b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "not http": b"HELLO\r\n\r\n",
    "closed": b"",
}

Send = Callable[[Transport, requests.PreparedRequest, str], requests.Response]


def by_requests(ours: Transport, request: requests.PreparedRequest, on_wire: str) -> requests.Response:
    """The same request sent by ``requests`` itself, as the transport sent it before it had its own send."""
    timeout = (ours.profile.connect_timeout, 0.5)
    return ours.session.send(
        request, stream=True, timeout=timeout, verify=ours._verify, proxies=ours.session.proxies, allow_redirects=False
    )


def by_wire(ours: Transport, request: requests.PreparedRequest, on_wire: str) -> requests.Response:
    """The request sent by the transport's own send."""
    return ours.wire.send(request, on_wire, (ours.profile.connect_timeout, 0.5))


def outcome(send: Send, base_url: str, write: bool) -> tuple[Any, ...]:
    """What one request comes to: the answer (status, headers, encoding, body, the cookies kept) or the failure
    (the ``requests`` exception, what it wraps, and the transport's error for it)."""
    ours = Transport(base_url, "key-1234567", "secret-1234567", ExchangeProfile(), insecure=True)
    seen: list[int] = []
    ours.session.hooks["response"].append(lambda response, **kwargs: seen.append(response.status_code))
    request, on_wire = ours.wire.prepare("POST" if write else "GET", "get_ticker", {"symbol": "btcusdt"}, write)
    try:
        response = send(ours, request, on_wire)
        body = b"".join(response.iter_content(64 * 1024))
    except requests.RequestException as error:
        cause = error.args[0] if error.args else None
        mapped = ours._transport_error(error, "get_ticker", write)
        return ("failed", type(error), type(getattr(cause, "reason", cause)), type(mapped), str(mapped))
    finally:
        ours.close()
    kept = ours.session.cookies.get_dict()
    head = (response.status_code, response.reason, dict(response.headers), response.encoding, response.url)
    return ("answered", *head, body, response.cookies.get_dict(), kept, seen)


def canned(payload: bytes, heads: list[bytes]) -> Callable[[socket.socket, bytes, threading.Event], None]:
    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        heads.append(request)
        if payload:
            conn.sendall(payload)

    return respond


@pytest.mark.parametrize("write", [False, True], ids=["read", "write"])
@pytest.mark.parametrize("name", list(ANSWERS))
def test_every_answer_comes_back_as_requests_would_give_it(name: str, write: bool) -> None:
    heads: list[bytes] = []
    with serving(canned(ANSWERS[name], heads)) as server:
        theirs = outcome(by_requests, server.url, write)
        mine = outcome(by_wire, server.url, write)
    assert mine == theirs
    assert len(heads) == 2 and heads[0] == heads[1]  # the same bytes on the wire


def test_the_table_reaches_every_kind_of_ending() -> None:
    """The answers above are answers, broken bodies and broken heads: the comparison covers each."""
    endings = set()
    for name in ("json", "cut short", "not http"):
        with serving(canned(ANSWERS[name], [])) as server:
            endings.add(outcome(by_wire, server.url, write=True)[:2])
    assert ("failed", requests.exceptions.ChunkedEncodingError) in endings
    assert ("failed", requests.ConnectionError) in endings
    assert any(ending[0] == "answered" for ending in endings)


def test_a_silent_server_times_out_as_requests_would() -> None:
    def silent(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        stop.wait(5)

    with serving(silent) as server:
        theirs = outcome(by_requests, server.url, write=True)
        mine = outcome(by_wire, server.url, write=True)
    assert mine == theirs and mine[1] is requests.ReadTimeout and mine[3] is OutcomeUnknown


def test_a_closed_port_is_refused_as_requests_would() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    theirs, mine = outcome(by_requests, url, write=True), outcome(by_wire, url, write=True)
    assert mine == theirs and mine[3] is TransientError and "nothing was sent" in mine[4]


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Sets the environment's HTTP proxy; the transport's reading of it (once per URL) starts afresh."""

    def use(url: str) -> None:
        monkeypatch.setenv("HTTP_PROXY", url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        transport._environ_proxies.cache_clear()

    yield use
    transport._environ_proxies.cache_clear()


def test_through_a_proxy_from_the_environment(proxied: Callable[[str], None]) -> None:
    """An HTTP proxy named by the environment gets the whole URL, as requests sends it; answers and errors match."""
    heads: list[bytes] = []
    with serving(canned(ANSWERS["json"], heads)) as proxy:
        proxied(proxy.url)
        exchange = "http://127.0.0.1:9/prefix"  # never reached: the proxy answers
        theirs = outcome(by_requests, exchange, write=False)
        mine = outcome(by_wire, exchange, write=False)
    assert mine == theirs and mine[0] == "answered"
    assert heads[0] == heads[1] and heads[0].startswith(b"GET http://127.0.0.1:9/prefix/open/api/get_ticker?symbol=")


@pytest.mark.parametrize("proxy", ["closed", "malformed"])
def test_a_proxy_that_cannot_be_used_fails_as_requests_would(proxy: str, proxied: Callable[[str], None]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    proxied(closed if proxy == "closed" else "http://:80")
    exchange = "http://127.0.0.1:8"
    theirs = outcome(by_requests, exchange, write=True)
    mine = outcome(by_wire, exchange, write=True)
    assert mine == theirs and mine[0] == "failed"
    assert issubclass(mine[3], ExchangeError) and mine[3] in (TransientError, OutcomeUnknown, RequestError)


def test_a_closed_transport_reconnects_as_a_session_would() -> None:
    heads: list[bytes] = []
    with serving(canned(ANSWERS["json"], heads)) as server:
        ours = Transport(server.url, "key-1234567", "secret-1234567", ExchangeProfile(), insecure=True)
        assert ours.read("get_ticker", {"symbol": "btcusdt"}, signed=False) == {"last": "1.5"}
        ours.close()
        assert ours.read("get_ticker", {"symbol": "btcusdt"}, signed=False) == {"last": "1.5"}
        ours.close()
    assert len(heads) == 2
