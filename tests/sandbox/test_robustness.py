"""Whatever a client sends to mass_replaceV2, the sandbox answers with the envelope, never a crash."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from rebalancer.sandbox.app import make_app
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults

CLIENT = Client(make_app(Engine.create(clock="manual"), Faults(rate_limits=False)))

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=False, allow_infinity=False).map(str),
    st.sampled_from(["BUY", "SELL", "1", "2", "", "0.01", "29000", "1e400", "-0", "  5 "]),
    st.text(max_size=8),
)
ITEMS = st.dictionaries(st.sampled_from(["side", "type", "volume", "price", "x"]), SCALARS, max_size=5)


def post(params: dict[str, str]) -> Any:
    full = {**params, "api_key": DEMO_API_KEY, "time": str(time.time_ns() // 1_000_000)}
    text = "".join(f"{k}{full[k]}" for k in sorted(full)) + DEMO_SECRET_KEY
    full["sign"] = hashlib.md5(text.encode()).hexdigest()
    return CLIENT.post("/open/api/mass_replaceV2", data=full)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(ITEMS, SCALARS), max_size=4), st.lists(SCALARS, max_size=3))
def test_any_batch_gets_an_envelope(place: list[Any], cancel: list[Any]) -> None:
    response = post({"symbol": "btcusdt", "mass_place": json.dumps(place), "mass_cancel": json.dumps(cancel)})
    assert response.status_code == 200
    body = response.json
    assert isinstance(body["code"], str)
    if body["code"] == "0":
        assert len(body["data"]["mass_place"]) <= len(place)
        groups = body["data"]["mass_place"] + body["data"]["mass_cancel"]
        assert all(isinstance(g["code"], str) for g in groups)
    else:
        assert body["data"] is None


@settings(max_examples=40, deadline=None)
@given(st.text(max_size=30))
def test_any_list_text_gets_an_envelope(text: str) -> None:
    response = post({"symbol": "btcusdt", "mass_cancel": text})
    assert response.status_code == 200
    assert isinstance(response.json["code"], str)
