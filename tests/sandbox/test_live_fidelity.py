"""The sandbox answers as live deployments were seen to, so that what passes here passes there: unknown ids and
symbols, history windows and order, marketable orders, and the old paths (served beside the v2 ones, or alone)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

import pytest
import requests

SYMBOL = "btcusdt"
FAR_BUY = {"side": "BUY", "type": "1", "volume": "0.0100", "price": "15000.00"}


def stamp(ms: int) -> str:
    """A time as the history endpoints take it: ``yyyy-MM-dd HH:mm:ss`` (UTC)."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def test_order_info_of_an_unknown_id_is_code_0_with_a_null_order(api: Any) -> None:
    body = api.sget("/open/api/order_info", {"symbol": SYMBOL, "order_id": "987654"})
    assert body["code"] == "0" and body["data"]["order_info"] is None


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/open/api/get_ticker", {}, "1"),
        ("/open/api/market_dept", {"type": "step0"}, "1"),
        ("/open/api/v2/new_order", {}, "1"),
        ("/open/api/new_order", {}, "1"),
        ("/open/api/order_info", {"order_id": "1001"}, "1"),
        ("/open/api/v2/all_order", {}, "1"),
        ("/open/api/all_trade", {}, "1"),
        ("/open/api/get_trades", {}, "1"),
    ],
)
def test_a_read_of_an_unknown_symbol_answers_code_1(api: Any, path: str, params: dict[str, str], code: str) -> None:
    assert api.sget(path, {"symbol": "dogeusdt", **params})["code"] == code


@pytest.mark.parametrize(
    ("path", "params"), [("/open/api/cancel_order", {"order_id": "1001"}), ("/open/api/cancel_order_all", {})]
)
def test_a_cancel_on_an_unknown_symbol_answers_code_8(api: Any, path: str, params: dict[str, str]) -> None:
    assert api.spost(path, {"symbol": "dogeusdt", **params}).json()["code"] == "8"


def test_order_history_reads_a_window_of_at_most_ten_minutes_in_either_order(sandbox: Any, api: Any) -> None:
    early_ms = sandbox.engine.now_ms()
    early = api.placed_ids(api.replace(SYMBOL, place=[FAR_BUY, FAR_BUY]))
    sandbox.engine.advance(11 * 60)
    late = api.placed_ids(api.replace(SYMBOL, place=[FAR_BUY]))
    now_ms = sandbox.engine.now_ms()

    def ids(path: str, **params: str) -> list[int]:
        data = api.sget(path, {"symbol": SYMBOL, **params})["data"]
        return [row["id"] for row in data["orderList"]]

    for path in ("/open/api/v2/all_order", "/open/api/all_order"):
        assert ids(path) == late, "without dates: the last ten minutes"
        assert ids(path, startDate=stamp(early_ms), endDate=stamp(early_ms + 60_000)) == sorted(early, reverse=True)
        assert ids(path, startDate=stamp(early_ms), sort="0") == early, "sort=0: oldest first"
        assert ids(path, endDate=stamp(now_ms + 1000)) == late
        assert ids(path, startDate=str(early_ms), endDate=str(early_ms + 1000)) == sorted(early, reverse=True)
    wide = api.sget(
        "/open/api/v2/all_order", {"symbol": SYMBOL, "startDate": stamp(early_ms), "endDate": stamp(now_ms)}
    )
    assert wide["code"] == "100004", "eleven minutes apart"
    for bad in ({"startDate": "yesterday"}, {"sort": "2"}, {"endDate": "9" * 40}):
        assert api.sget("/open/api/v2/all_order", {"symbol": SYMBOL, **bad})["code"] == "100004"


def test_trade_history_reads_a_window_and_honours_sort(sandbox: Any, api: Any) -> None:
    [first] = api.placed_ids(api.replace(SYMBOL, place=[FAR_BUY]))
    sandbox.engine.fill(first, "0.0040")
    first_ms = sandbox.engine.clock_ms
    sandbox.engine.advance(11 * 60)
    sandbox.engine.fill(first, "0.0060")

    [second] = api.placed_ids(api.replace(SYMBOL, place=[FAR_BUY]))
    sandbox.engine.fill(second, "0.0030")

    def trades(**params: str) -> list[str]:
        data = api.sget("/open/api/all_trade", {"symbol": SYMBOL, **params})["data"]
        return [row["volume"] for row in data["resultList"]]

    assert trades() == ["0.0030", "0.0060"], "the last ten minutes, newest first"
    assert trades(sort="0") == ["0.0060", "0.0030"]
    assert trades(startDate=stamp(first_ms - 1000)) == ["0.0040"]
    assert trades(startDate=stamp(first_ms - 1000), endDate=stamp(first_ms + 1000)) == ["0.0040"]


def test_a_marketable_limit_order_fills_at_once_at_the_books_prices(sandbox: Any, api: Any) -> None:
    asks = api.get("/open/api/market_dept", {"symbol": SYMBOL, "type": "step0"}).json()["data"]["tick"]["asks"]
    levels = [(D(price), D(qty)) for price, qty in asks[:3]]
    limit = levels[2][0]
    volume = levels[0][1] + levels[1][1] + D("0.0001")  # the first two levels and one lot of the third

    def usdt() -> dict[str, str]:
        return next(row for row in api.sget("/open/api/user/account")["data"]["coin_list"] if row["coin"] == "usdt")

    before = D(usdt()["normal"])
    [oid] = api.placed_ids(api.replace(SYMBOL, place=[{**FAR_BUY, "price": str(limit), "volume": str(volume)}]))
    info = api.sget("/open/api/order_info", {"symbol": SYMBOL, "order_id": str(oid)})["data"]
    assert info["order_info"]["status"] == 2, "filled at once, not a tick later"
    fills = [(D(t["price"]), D(t["volume"])) for t in info["trade_list"]]
    expected = [levels[0], levels[1], (levels[2][0], D("0.0001"))]
    assert fills == expected, "walked the book best price first, each level at its own price"
    spent = sum((p * q for p, q in expected), D(0))
    assert D(usdt()["normal"]) == before - spent and D(usdt()["locked"]) == 0
    assert spent < limit * volume


def test_the_old_paths_are_served_beside_the_v2_ones(sandbox: Any, api: Any) -> None:
    placed = api.placed_ids(api.replace(SYMBOL, place=[FAR_BUY, FAR_BUY]))
    old = api.sget("/open/api/new_order", {"symbol": SYMBOL})["data"]
    new = api.sget("/open/api/v2/new_order", {"symbol": SYMBOL})["data"]
    assert old == new and sorted(row["id"] for row in old["resultList"]) == placed
    assert api.sget("/open/api/all_order", {"symbol": SYMBOL}) == api.sget("/open/api/v2/all_order", {"symbol": SYMBOL})
    market = api.sget("/open/api/market")["data"]
    assert set(market) == {"btcusdt", "ethusdt"} and D(market["btcusdt"]) > 0
    sandbox.engine.fill(placed[0])
    trades = api.get("/open/api/get_trades", {"symbol": SYMBOL}).json()["data"]
    assert [(t["price"], t["amount"], t["type"]) for t in trades] == [("15000.00", "0.0100", "buy")]
    candles = api.get("/open/api/get_records", {"symbol": SYMBOL, "period": "1"}).json()["data"]
    assert candles and all(len(candle) == 6 for candle in candles)
    assert candles[-1][4] == "15000.00" and candles[-1][5] == "0.0100"
    assert api.get("/open/api/get_records", {"symbol": SYMBOL, "period": "0"}).json()["code"] == "100004"


def test_the_legacy_switch_serves_only_the_old_paths(sandbox: Any, api: Any) -> None:
    control = sandbox.url + "/sandbox/faults"
    assert requests.post(control, json={"legacy_paths": True}, timeout=10).json()["data"]["legacy_paths"] is True
    for path in ("/open/api/v2/new_order", "/open/api/v2/all_order"):
        response = api.session.get(api.url + path, params=api.signed_params({"symbol": SYMBOL}), timeout=10)
        assert response.status_code == 404
    assert api.sget("/open/api/new_order", {"symbol": SYMBOL})["code"] == "0"
    assert api.sget("/open/api/all_order", {"symbol": SYMBOL})["code"] == "0"
    requests.post(control, json={"legacy_paths": False}, timeout=10)
    assert api.sget("/open/api/v2/new_order", {"symbol": SYMBOL})["code"] == "0"
