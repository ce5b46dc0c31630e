"""``OpenApiClient.create_order`` / ``cancel_order`` against the sandbox over real HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from rebalancer.errors import RejectedError, RequestError
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.models import OrderStatus, Side, Target

SYMBOL = "btcusdt"


@pytest.fixture
def client(sandbox: Any) -> Any:
    limiter = KeyLimiter(RateLimit(10_000, 1.0), RateLimit(10_000, 1.0))
    with OpenApiClient(sandbox.url, sandbox.api_key, sandbox.secret_key, ExchangeProfile(), limiter=limiter) as made:
        yield made


def test_create_then_cancel_round_trip(client: OpenApiClient, sandbox: Any) -> None:
    rules = client.rules(SYMBOL)
    buy = client.create_order(rules, Target("buy[0]", Side.BUY, Decimal("29000.5"), Decimal("0.01")))
    sell = client.create_order(rules, Target("sell[0]", Side.SELL, Decimal("31000"), Decimal("0.0200")))
    assert buy.isdigit() and sell.isdigit() and buy != sell
    standing = {o.id: o for o in client.open_orders(SYMBOL)}
    assert (standing[buy].side, standing[buy].price, standing[buy].volume) == (
        Side.BUY,
        Decimal("29000.50"),
        Decimal("0.0100"),
    )
    assert standing[sell].status is OrderStatus.NEW
    client.cancel_order(SYMBOL, buy)
    assert [o.id for o in client.open_orders(SYMBOL)] == [sell]
    assert [o.id for o in sandbox.engine.open_orders(sandbox.api_key, SYMBOL)] == [sell]


def test_cancel_of_an_order_no_longer_open_is_rejected(client: OpenApiClient) -> None:
    rules = client.rules(SYMBOL)
    order_id = client.create_order(rules, Target("buy[0]", Side.BUY, Decimal("29000"), Decimal("0.01")))
    client.cancel_order(SYMBOL, order_id)
    with pytest.raises(RejectedError) as caught:
        client.cancel_order(SYMBOL, order_id)
    assert caught.value.code == "22"


def test_create_order_never_rounds_and_sends_nothing_too_fine(client: OpenApiClient, sandbox: Any) -> None:
    rules = client.rules(SYMBOL)
    with pytest.raises(RequestError):
        client.create_order(rules, Target("buy[0]", Side.BUY, Decimal("29000.001"), Decimal("0.01")))
    assert sandbox.engine.open_orders(sandbox.api_key, SYMBOL) == ()
    assert not [r for r in sandbox.server.app.request_log() if r["path"] == "/open/api/create_order"]


def test_refused_placement_is_rejected_with_the_code(client: OpenApiClient, sandbox: Any) -> None:
    rules = client.rules(SYMBOL)
    with pytest.raises(RejectedError) as caught:
        client.create_order(rules, Target("buy[0]", Side.BUY, Decimal("29000"), Decimal("100000")))
    assert caught.value.code == "19"
    assert sandbox.engine.open_orders(sandbox.api_key, SYMBOL) == ()
