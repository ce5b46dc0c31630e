"""The transport prepares each request itself (cheaper than ``Session.request``): the same request on the wire."""

from __future__ import annotations

import socket
import threading

import requests
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.transport import Transport
from tests.exchange.hostile import http_answer, serving

URL = "http://127.0.0.1:9/prefix"
values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
params = st.dictionaries(st.text("abcxyz_&=+ %é", min_size=1, max_size=6), values, max_size=5)


def transport(cookie: bool = True) -> Transport:
    made = Transport(URL, "key-1234567", "secret-1234567", ExchangeProfile(), insecure=True)
    if cookie:
        made.session.cookies.set("session", "abc")  # a cookie the exchange set goes back, as requests would send it
    made.session.hooks["response"].append(_seen)  # a response hook (the churn benchmark counts requests so)
    return made


def _seen(response: requests.Response, **kwargs: object) -> None:
    """A response hook."""


@given(params, st.booleans(), st.booleans(), st.sampled_from(["v2/new_order", "order_info", "a b/é%41"]))
def test_prepared_as_the_session_would_prepare_it(fields: dict[str, str], write: bool, cookie: bool, path: str) -> None:
    ours = transport(cookie)
    url = f"{URL}/open/api/{path}"
    method = "POST" if write else "GET"
    mine, on_wire = ours.wire.prepare(method, path, fields, write)
    theirs = ours.session.prepare_request(
        requests.Request(method, url, params=None if write else fields, data=fields if write else None)
    )
    assert (mine.method, mine.url, mine.body) == (theirs.method, theirs.url, theirs.body)
    assert on_wire == theirs.path_url
    assert dict(mine.headers) == dict(theirs.headers) and mine.hooks == theirs.hooks == {"response": [_seen]}
    assert mine.headers.get("Cookie") == ("session=abc" if cookie else None) and mine.headers["Host"] == "127.0.0.1:9"
    ours.close()


def test_a_cookie_the_exchange_sets_goes_back_and_response_hooks_see_every_answer() -> None:
    """Sent past ``Session.send``: the answer's cookies are kept for the next request and the hooks still run."""
    heads: list[bytes] = []

    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        heads.append(request.partition(b"\r\n\r\n")[0].lower())
        body = b'{"code": "0", "msg": "ok", "data": {}}'
        answer = http_answer(body).replace(b"\r\n\r\n", b"\r\nSet-Cookie: edge=xyz; Path=/\r\n\r\n", 1)
        conn.sendall(answer)

    seen: list[int] = []
    with serving(respond) as server:
        ours = Transport(server.url, "key-1234567", "secret-1234567", ExchangeProfile(), insecure=True)
        ours.session.hooks["response"].append(lambda response, **kwargs: seen.append(response.status_code))
        ours.read("get_ticker", {"symbol": "btcusdt"}, signed=False)
        ours.read("get_ticker", {"symbol": "btcusdt"}, signed=False)
        ours.close()
    assert seen == [200, 200]
    assert b"cookie:" not in heads[0] and b"\r\ncookie: edge=xyz" in heads[1]
