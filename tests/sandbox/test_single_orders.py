"""create_order and cancel_order: one order per signed request, as bots without batch support use them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

SYMBOL = "btcusdt"


def order(side: str = "BUY", price: str = "29000.00", volume: str = "0.0100", **extra: str) -> dict[str, str]:
    """create_order parameters for a limit order on btcusdt."""
    return {"symbol": SYMBOL, "side": side, "type": "1", "price": price, "volume": volume, **extra}


def test_create_order_rests_and_locks_funds(api: Any, sandbox: Any) -> None:
    body = api.spost("/open/api/create_order", order()).json()
    assert body["code"] == "0", body
    order_id = body["data"]["order_id"]
    assert isinstance(order_id, int)
    (rested,) = sandbox.engine.open_orders(sandbox.api_key, SYMBOL)
    assert (rested.id, rested.price, rested.volume) == (str(order_id), Decimal("29000.00"), Decimal("0.0100"))
    assert sandbox.engine.balances(sandbox.api_key).coins["usdt"].locked == Decimal("290.000000")


def test_cancel_order_removes_it_and_a_second_cancel_is_22(api: Any, sandbox: Any) -> None:
    order_id = api.spost("/open/api/create_order", order(side="SELL", price="31000.00")).json()["data"]["order_id"]
    first = api.spost("/open/api/cancel_order", {"symbol": SYMBOL, "order_id": str(order_id)}).json()
    assert first["code"] == "0", first
    assert sandbox.engine.open_orders(sandbox.api_key, SYMBOL) == ()
    assert sandbox.engine.balances(sandbox.api_key).coins["btc"].locked == 0
    again = api.spost("/open/api/cancel_order", {"symbol": SYMBOL, "order_id": str(order_id)}).json()
    assert again["code"] == "22"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        (order(type="2"), "100004"),
        (order(side="HOLD"), "100004"),
        (order(price="29000.001"), "10062"),
        (order(volume="0.00001"), "10062"),
        (order(volume="0.0000"), "10064"),
        ({k: v for k, v in order().items() if k != "price"}, "24"),
        ({k: v for k, v in order().items() if k != "volume"}, "23"),
        (order(symbol="nosuch"), "100004"),
    ],
)
def test_create_order_refusals(api: Any, sandbox: Any, params: dict[str, str], code: str) -> None:
    body = api.spost("/open/api/create_order", params).json()
    assert body["code"] == code, body
    assert sandbox.engine.open_orders(sandbox.api_key, SYMBOL) == ()


@pytest.mark.parametrize("order_id", ["abc", "-5", "999999"])
def test_cancel_order_refusals(api: Any, order_id: str) -> None:
    body = api.spost("/open/api/cancel_order", {"symbol": SYMBOL, "order_id": order_id}).json()
    assert body["code"] == ("22" if order_id.isdigit() else "100004"), body


def test_single_order_endpoints_are_signed_posts(api: Any, sandbox: Any) -> None:
    unsigned = api.session.post(api.url + "/open/api/create_order", data=order(), timeout=10).json()
    assert unsigned["code"] != "0"
    assert api.get("/open/api/cancel_order", {"symbol": SYMBOL, "order_id": "1"}).status_code == 405
    assert sandbox.engine.open_orders(sandbox.api_key, SYMBOL) == ()
