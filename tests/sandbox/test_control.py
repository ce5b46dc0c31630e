"""The /sandbox/ inspection and control endpoints, and their loopback-only guard."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests
from werkzeug.test import Client

from rebalancer.sandbox.app import make_app
from rebalancer.sandbox.checks import is_loopback
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults


@pytest.mark.parametrize(
    ("addr", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("10.0.0.1", False),
        ("192.168.1.20", False),
        ("0.0.0.0", False),
        ("::ffff:10.0.0.1", False),
        ("2001:db8::1", False),
        ("localhost", False),
        ("", False),
        (None, False),
    ],
)
def test_is_loopback(addr: str | None, expected: bool) -> None:
    assert is_loopback(addr) is expected


def test_controls_refuse_other_hosts_but_the_api_answers() -> None:
    client = Client(make_app(Engine.create(clock="manual"), Faults(rate_limits=False)))
    remote = {"REMOTE_ADDR": "203.0.113.9"}
    assert client.get("/sandbox/state", environ_overrides=remote).status_code == 403
    assert client.post("/sandbox/advance?seconds=5", environ_overrides=remote).status_code == 403
    assert client.get("/open/api/common/symbols", environ_overrides=remote).status_code == 200
    local = client.get("/sandbox/state", environ_overrides={"REMOTE_ADDR": "127.0.0.1"})
    assert local.status_code == 200 and local.json["code"] == "0"


def test_state_shows_books_balances_orders_and_fills_but_no_secret(sandbox: Any, api: Any) -> None:
    api.replace("btcusdt", place=[api.item("BUY", "29990.00", "0.5000")])
    sandbox.engine.set_price("btcusdt", Decimal("29000"))
    body = requests.get(sandbox.url + "/sandbox/state", timeout=10).json()
    assert body["code"] == "0"
    state = body["data"]
    assert state["clock"] == "manual" and state["seed"] == 7
    assert state["symbols"]["btcusdt"]["mid"] == "29000.00"
    assert len(state["symbols"]["ethusdt"]["bids"]) == 10
    account = state["accounts"][sandbox.api_key]
    assert set(account["balances"]) == {"usdt", "btc", "eth"}
    assert state["fills"] and state["fills"][0]["price"] == "29990.00"
    assert sandbox.secret_key not in requests.get(sandbox.url + "/sandbox/state", timeout=10).text


def test_advance_and_price_controls(sandbox: Any) -> None:
    twin = Engine.create(seed=7, clock="manual")
    twin.advance(42)
    body = requests.post(sandbox.url + "/sandbox/advance", params={"seconds": "42"}, timeout=10).json()
    assert body["data"]["mids"]["btcusdt"] == str(twin.mid("btcusdt"))
    assert sandbox.engine.mid("btcusdt") == twin.mid("btcusdt")
    price = sandbox.url + "/sandbox/price"
    body = requests.post(price, params={"symbol": "ethusdt", "price": "2500.5"}, timeout=10)
    assert body.json()["data"] == {"symbol": "ethusdt", "mid": "2500.50"}
    bad = requests.post(sandbox.url + "/sandbox/advance", params={"seconds": "-1"}, timeout=10).json()
    assert bad["code"] == "100004"
    bad = requests.post(price, params={"symbol": "ethusdt", "price": "x"}, timeout=10)
    assert bad.json()["code"] == "100004"
    assert requests.get(sandbox.url + "/sandbox/advance", timeout=10).status_code == 405
    assert requests.get(sandbox.url + "/sandbox/nothing", timeout=10).status_code == 404


def test_faults_control(sandbox: Any, api: Any) -> None:
    url = sandbox.url + "/sandbox/faults"
    body = requests.post(url, json={"error_500": 1, "endpoints": ["/open/api/get_ticker"]}, timeout=10).json()
    assert body["data"]["error_500"] == 1.0
    assert sandbox.faults.error_500 == 1.0
    assert api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).status_code == 500
    bad = requests.post(url, json={"error_500": "lots"}, timeout=10).json()
    assert bad["code"] == "100004"
    assert requests.post(url, json=[1], timeout=10).json()["code"] == "100004"
    assert requests.get(url, timeout=10).json()["data"]["error_500"] == 1.0


def test_request_log(sandbox: Any, api: Any) -> None:
    api.sget("/open/api/user/account")
    api.get("/open/api/get_ticker", {"symbol": "nope"})
    log = requests.get(sandbox.url + "/sandbox/requests", timeout=10).json()["data"]
    assert [(e["path"], e["status"], e["code"]) for e in log] == [
        ("/open/api/user/account", 200, "0"),
        ("/open/api/get_ticker", 200, "1"),  # an unknown symbol, as live deployments answer a read of one
    ]
    assert log[0]["params"]["api_key"] == sandbox.api_key
    assert sandbox.secret_key not in str(log)
