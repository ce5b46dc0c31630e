"""Public market data over HTTP: symbols, ticker and depth, the envelope, and unknown paths."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests


def test_symbols_lists_the_defaults(api: Any) -> None:
    response = api.get("/open/api/common/symbols")
    assert response.status_code == 200
    body = response.json()
    assert body["code"] == "0" and body["msg"] == "suc"
    by_name = {s["symbol"]: s for s in body["data"]}
    assert by_name["btcusdt"] == {
        "symbol": "btcusdt",
        "base_coin": "BTC",
        "count_coin": "USDT",
        "price_precision": 2,
        "amount_precision": 4,
        "limit_volume_min": "0.0001",
    }
    assert by_name["ethusdt"]["limit_volume_min"] == "0.001"


def test_ticker_shows_strings_around_the_start_price(api: Any) -> None:
    data = api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).json()["data"]
    for key in ("buy", "sell", "last", "high", "low", "vol", "rose"):
        assert isinstance(data[key], str), key
    assert isinstance(data["time"], int)
    bid, ask = Decimal(data["buy"]), Decimal(data["sell"])
    assert bid < Decimal("30000") < ask
    assert data["buy"] == format(bid.quantize(Decimal("0.01")), "f")


def test_ticker_follows_the_market_clock(sandbox: Any, api: Any) -> None:
    before = api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).json()["data"]
    sandbox.engine.advance(30)
    after = api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).json()["data"]
    assert Decimal(after["last"]) == sandbox.engine.mid("btcusdt")
    assert after["last"] != before["last"]


def test_depth_is_sorted_best_first_and_uncrossed(api: Any) -> None:
    body = api.get("/open/api/market_dept", {"symbol": "ethusdt", "type": "step0"}).json()
    tick = body["data"]["tick"]
    bids = [Decimal(p) for p, _ in tick["bids"]]
    asks = [Decimal(p) for p, _ in tick["asks"]]
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert all(Decimal(q) > 0 for _, q in tick["bids"] + tick["asks"])


def test_depth_is_stable_between_ticks_and_changes_with_them(sandbox: Any, api: Any) -> None:
    params = {"symbol": "btcusdt", "type": "step0"}
    first = api.get("/open/api/market_dept", params).json()["data"]["tick"]
    again = api.get("/open/api/market_dept", params).json()["data"]["tick"]
    assert (first["bids"], first["asks"]) == (again["bids"], again["asks"])
    sandbox.engine.advance(1)
    moved = api.get("/open/api/market_dept", params).json()["data"]["tick"]
    assert (moved["bids"], moved["asks"]) != (first["bids"], first["asks"])


def test_resting_bid_above_the_crowd_becomes_best_bid(sandbox: Any, api: Any) -> None:
    ticker = api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).json()["data"]
    inside = Decimal(ticker["buy"]) + Decimal("1.00")
    assert inside < Decimal(ticker["sell"])
    answer = api.replace("btcusdt", place=[api.item("BUY", str(inside), "0.0100")])
    assert api.placed_ids(answer)
    ticker = api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).json()["data"]
    assert Decimal(ticker["buy"]) == inside
    tick = api.get("/open/api/market_dept", {"symbol": "btcusdt", "type": "step0"}).json()["data"]["tick"]
    assert tick["bids"][0] == [format(inside, "f"), "0.0100"]


@pytest.mark.parametrize("side", ["BUY", "SELL"])
def test_an_order_resting_through_the_crowd_never_leaves_rest_depth_crossed(api: Any, side: str) -> None:
    """A buy three crowd levels deep into the asks, for more than they hold, takes them and rests above the rest
    of them until the next tick: market_dept shows the book as the ticker does (the crowd's levels the order
    crosses left out), never a crowd ask below a bid (before: every crowd level stayed, crossing the order)."""
    params = {"symbol": "btcusdt", "type": "step0"}
    crowd = api.get("/open/api/market_dept", params).json()["data"]["tick"]
    through = crowd["asks"][:3] if side == "BUY" else crowd["bids"][:3]
    price = through[-1][0]
    volume = sum(Decimal(v) for _, v in through) + 1
    assert api.placed_ids(api.replace("btcusdt", place=[api.item(side, price, format(volume, "f"))]))
    tick = api.get("/open/api/market_dept", params).json()["data"]["tick"]
    bids = [Decimal(p) for p, _ in tick["bids"]]
    asks = [Decimal(p) for p, _ in tick["asks"]]
    assert bids[0] < asks[0], (bids[:2], asks[:2])
    assert (bids[0] if side == "BUY" else asks[0]) == Decimal(price)  # the order is the best of its side
    ticker = api.get("/open/api/get_ticker", {"symbol": "btcusdt"}).json()["data"]
    assert bids[0] <= Decimal(ticker["buy"]) and asks[0] >= Decimal(ticker["sell"])  # nothing the ticker leaves out
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)


def test_depth_needs_a_known_type(api: Any) -> None:
    assert api.get("/open/api/market_dept", {"symbol": "btcusdt"}).json()["code"] == "100004"
    assert api.get("/open/api/market_dept", {"symbol": "btcusdt", "type": "x"}).json()["code"] == "100004"


def test_unknown_symbol_and_missing_symbol(api: Any) -> None:
    assert api.get("/open/api/get_ticker", {"symbol": "dogeusdt"}).json()["code"] == "1"
    assert api.get("/open/api/get_ticker").json()["code"] == "100004"


def test_unknown_path_is_404_and_wrong_method_405(api: Any) -> None:
    assert requests.get(api.url + "/open/api/nope", timeout=10).status_code == 404
    assert requests.get(api.url + "/elsewhere", timeout=10).status_code == 404
    assert requests.get(api.url + "/open/api/mass_replaceV2", timeout=10).status_code == 405
