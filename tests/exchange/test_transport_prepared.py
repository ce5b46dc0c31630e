"""The transport prepares each request itself (cheaper than ``Session.request``): the same request on the wire."""

from __future__ import annotations

import requests
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.transport import Transport

URL = "http://127.0.0.1:9/prefix"
values = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
params = st.dictionaries(st.text("abcxyz_&=+ %é", min_size=1, max_size=6), values, max_size=5)


def transport() -> Transport:
    made = Transport(URL, "key-1234567", "secret-1234567", ExchangeProfile(), insecure=True)
    made.session.cookies.set("session", "abc")  # a cookie the exchange set goes back, as requests would send it
    made.session.hooks["response"].append(_seen)  # a response hook (the churn benchmark counts requests so)
    return made


def _seen(response: requests.Response, **kwargs: object) -> None:
    """A response hook."""


@given(params, st.booleans())
def test_prepared_as_the_session_would_prepare_it(fields: dict[str, str], write: bool) -> None:
    ours = transport()
    url = f"{URL}/open/api/v2/new_order"
    method = "POST" if write else "GET"
    mine = ours._prepared(method, url, fields, write)
    theirs = ours.session.prepare_request(
        requests.Request(method, url, params=None if write else fields, data=fields if write else None)
    )
    assert (mine.method, mine.url, mine.body) == (theirs.method, theirs.url, theirs.body)
    assert dict(mine.headers) == dict(theirs.headers) and mine.hooks == theirs.hooks == {"response": [_seen]}
    assert mine.headers["Cookie"] == "session=abc" and mine.headers["Host"] == "127.0.0.1:9"
    ours.close()
