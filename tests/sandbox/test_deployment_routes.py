"""What deployments serve beyond the template: all tickers, order history, trades; and bounded control inputs."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import pytest
import requests

BUY_FAR = {"side": "BUY", "type": "1", "volume": "0.01", "price": "15000.00"}


def test_get_allticker_lists_every_symbol_with_the_ticker_fields(sandbox: Any, api: Any) -> None:
    body = api.get("/open/api/get_allticker").json()
    assert body["code"] == "0"
    rows = {row["symbol"]: row for row in body["data"]["ticker"]}
    assert set(rows) == {spec.symbol for spec in sandbox.engine.specs()}
    single = api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).json()["data"]
    assert {k: rows["btcusdt"][k] for k in single} == single
    assert {"buy", "sell", "last", "high", "low", "vol", "rose"} <= set(rows["btcusdt"])
    assert isinstance(body["data"]["date"], int)


def test_all_order_pages_the_order_history_of_every_status(sandbox: Any, api: Any) -> None:
    placed = api.replace("btcusdt", place=[BUY_FAR, BUY_FAR, BUY_FAR])["data"]["mass_place"][0]["order_id"]
    api.replace("btcusdt", cancel=[placed[0]])
    first = api.sget("/open/api/v2/all_order", {"symbol": "btcusdt", "page": "1", "pageSize": "2"})["data"]
    second = api.sget("/open/api/v2/all_order", {"symbol": "btcusdt", "page": "2", "pageSize": "2"})["data"]
    assert first["count"] == second["count"] == 3
    rows = first["orderList"] + second["orderList"]
    assert [row["id"] for row in rows] == sorted(placed, reverse=True)
    assert {row["id"]: row["status"] for row in rows}[placed[0]] == 4  # cancelled, still in the history


def test_all_order_and_all_trade_are_signed(api: Any) -> None:
    for path in ("/open/api/v2/all_order", "/open/api/all_trade"):
        assert api.get(path, {"symbol": "btcusdt"}).json()["code"] == "100004"


def test_all_trade_lists_the_account_fills(sandbox: Any, api: Any) -> None:
    mid = sandbox.engine.mid("btcusdt")
    order = {**BUY_FAR, "price": str(mid * Decimal("0.99"))[:8]}
    order_id = api.replace("btcusdt", place=[order])["data"]["mass_place"][0]["order_id"][0]
    assert api.sget("/open/api/all_trade", {"symbol": "btcusdt"})["data"] == {"count": 0, "resultList": []}
    sandbox.engine.set_price("btcusdt", mid * Decimal("0.95"))
    data = api.sget("/open/api/all_trade", {"symbol": "btcusdt", "page": "1", "pageSize": "10"})["data"]
    assert data["count"] >= 1
    trade = data["resultList"][0]
    assert trade["bid_id"] == order_id and trade["side"] == "BUY"
    assert Decimal(trade["volume"]) > 0 and Decimal(trade["price"]) > 0


def test_a_time_ahead_of_the_clock_is_accepted_an_old_one_refused(api: Any) -> None:
    ahead = str(int(time.time() * 1000) + 10 * 60 * 1000)
    params = api.signed_params({}, stamp=ahead)
    assert api.session.get(api.url + "/open/api/user/account", params=params, timeout=10).json()["code"] == "0"
    old = str(int(time.time() * 1000) - 10 * 60 * 1000)
    params = api.signed_params({}, stamp=old)
    assert api.session.get(api.url + "/open/api/user/account", params=params, timeout=10).json()["code"] == "100008"


@pytest.mark.parametrize("seconds", ["3601", "99999999999999999999", "-1", "1.5", ""])
def test_advance_refuses_out_of_range_seconds_with_a_400(sandbox: Any, seconds: str) -> None:
    before = sandbox.engine.clock_ms
    response = requests.post(sandbox.url + "/sandbox/advance", params={"seconds": seconds}, timeout=10)
    assert response.status_code == 400
    assert response.json()["code"] == "100004" and "seconds" in response.json()["msg"]
    assert sandbox.engine.clock_ms == before


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (json.dumps({"latency": 1e9}), "latency must be 0 to 60 seconds"),
        ('{"latency": NaN}', "finite"),
        ('{"latency": Infinity}', "finite"),
        (json.dumps({"read_limit": {"count": 0, "seconds": 1}}), "rate limits"),
        ("[" * 100_000 + "]" * 100_000, "larger than 64 KiB"),
        ("[" * 5000 + "]" * 5000, "nested deeper than 4"),
        (json.dumps({"endpoints": [[[[["x"]]]]]}), "nested deeper than 4"),
        ("{", "not JSON"),
        (json.dumps({"sign": "sha1"}), "sign must be one of"),
        (json.dumps({"answer_shape": "weird"}), "answer_shape"),
    ],
)
def test_faults_control_bounds_its_inputs_with_a_400(sandbox: Any, body: str, message: str) -> None:
    response = requests.post(sandbox.url + "/sandbox/faults", data=body, timeout=10)
    assert response.status_code == 400, response.text
    assert message in response.json()["msg"]
    assert sandbox.faults.latency == 0 and sandbox.faults.sign == "any"
