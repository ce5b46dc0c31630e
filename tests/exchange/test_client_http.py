"""The client over real HTTP against a canned server: requests it builds and answers it reads."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from rebalancer.errors import BadResponse, ConfigError, RequestError
from rebalancer.exchange.client import OpenApiClient, mass_cancel_json, mass_place_json
from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.signing import sign
from rebalancer.models import OrderStatus, Side, SymbolRules, Target

from .conftest import API_KEY, SECRET, CannedServer, envelope

RULES = SymbolRules("btcusdt", "btc", "usdt", price_precision=2, amount_precision=4)
SYMBOLS = [
    {
        "symbol": "btcusdt",
        "base_coin": "BTC",
        "count_coin": "USDT",
        "price_precision": 2,
        "amount_precision": 4,
    }
]


def assert_signed(params: dict[str, str]) -> None:
    """The server's check: the sign over every received value but ``sign``, lowercase hex."""
    assert params["api_key"] == API_KEY
    assert params["sign"] == sign({k: v for k, v in params.items() if k != "sign"}, SECRET)


def order_row(ident: int, status: int = 1, side: str = "BUY", price: str = "100.00") -> dict[str, Any]:
    return {
        "id": ident,
        "side": side,
        "price": price,
        "volume": "1.0000",
        "deal_volume": "0",
        "status": status,
    }


def test_repr_masks_the_key_and_never_shows_the_secret(client: OpenApiClient) -> None:
    text = repr(client) + repr(client.transport)
    assert SECRET not in text and API_KEY not in text
    assert client.base_url in text


@pytest.mark.parametrize(
    "url",
    ["http://exchange.example.com", "ftp://127.0.0.1", "https://", "https://host/?x=1", "http://10.0.0.1"],
)
def test_unsafe_or_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        OpenApiClient(url, API_KEY, SECRET)


@pytest.mark.parametrize("url", ["http://localhost:1", "http://127.0.0.2:8080/", "http://[::1]:1", "https://a.b/x"])
def test_safe_urls_are_accepted(url: str) -> None:
    OpenApiClient(url, API_KEY, SECRET).close()


def test_insecure_flag_allows_plain_http() -> None:
    OpenApiClient("http://exchange.example.com", API_KEY, SECRET, insecure=True).close()


def test_path_prefix_is_kept(canned: CannedServer) -> None:
    canned.add("get_ticker", envelope({"buy": "1", "sell": "2", "last": "1.5"}))
    with OpenApiClient(canned.url + "/prefix/", API_KEY, SECRET) as prefixed:
        assert prefixed.ticker("btcusdt").mid == Decimal("1.5")
    assert canned.seen[0].params == {"symbol": "btcusdt"}


def test_rules_are_cached_and_unknown_symbols_refused(client: OpenApiClient, canned: CannedServer) -> None:
    canned.always("common/symbols", lambda _r: _json(envelope(SYMBOLS)))
    assert client.rules("BTCUSDT") == RULES
    assert client.rules("btcusdt") == RULES
    assert len(canned.calls("common/symbols")) == 1
    with pytest.raises(ConfigError, match="ethbtc"):
        client.rules("ethbtc")


def test_balances_are_signed_and_exact(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add(
        "user/account",
        '{"code":0,"msg":null,"data":{"coin_list":[{"coin":"BTC","normal":0.12345678901234567890,"locked":"1"}]}}',
    )
    balances = client.balances()
    assert balances.available("btc") == Decimal("0.12345678901234567890")
    (call,) = canned.calls("user/account")
    assert call.method == "GET"
    assert_signed(call.params)
    assert len(call.params["time"]) == 13


def test_time_in_seconds_when_the_profile_says_so(canned: CannedServer) -> None:
    canned.add("user/account", envelope({"coin_list": []}))
    with OpenApiClient(canned.url, API_KEY, SECRET, ExchangeProfile(time_unit="s")) as seconds:
        seconds.balances()
    assert len(canned.seen[0].params["time"]) == 10


def test_depth(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("market_dept", envelope({"tick": {"asks": [["2", "1"]], "bids": [[1, 3]]}}))
    depth = client.depth("btcusdt")
    assert depth.bids == ((Decimal(1), Decimal(3)),)
    assert canned.seen[0].params == {"symbol": "btcusdt", "type": "step0"}


def _json(text: str) -> Any:
    from werkzeug.wrappers import Response

    return Response(text, content_type="application/json")


def paged_server(canned: CannedServer, rows: list[dict[str, Any]], cap: int, count: int | None = None) -> None:
    """Serve ``rows`` in pages of at most ``cap`` whatever pageSize is asked (a silent cap)."""

    def handler(request: Any) -> Any:
        page = int(request.args["page"])
        size = min(int(request.args["pageSize"]), cap)
        chunk = rows[(page - 1) * size : page * size]
        return _json(envelope({"count": len(rows) if count is None else count, "resultList": chunk}))

    canned.always("v2/new_order", handler)


def test_open_orders_reads_every_page_of_a_server_that_caps_page_size(
    client: OpenApiClient, canned: CannedServer
) -> None:
    statuses = [0, 1, 2, 3, 4, 5, 6, 1, 1, 3, 2]
    rows = [order_row(i + 1, status) for i, status in enumerate(statuses)]
    paged_server(canned, rows, cap=3)
    orders = client.open_orders("btcusdt")
    assert [o.id for o in orders] == [str(i + 1) for i, s in enumerate(statuses) if s in (0, 1, 3, 5)]
    assert OrderStatus.CANCEL_PENDING in {o.status for o in orders}
    calls = canned.calls("v2/new_order")
    assert [c.params["page"] for c in calls] == ["1", "2", "3", "4"]
    assert all(c.params["pageSize"] == "1000" for c in calls)
    for call in calls:
        assert_signed(call.params)


def test_a_server_ignoring_page_neither_loops_nor_passes_for_the_whole_book(
    client: OpenApiClient, canned: CannedServer
) -> None:
    rows = [order_row(1), order_row(2)]
    canned.always("v2/new_order", lambda _r: _json(envelope({"count": 50, "resultList": rows})))
    with pytest.raises(BadResponse, match="page 2 repeats orders already read"):
        client.open_orders("btcusdt")
    assert len(canned.calls("v2/new_order")) == 2


def test_duplicates_across_pages_are_merged(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("v2/new_order", envelope({"count": 3, "resultList": [order_row(1), order_row(2)]}))
    canned.add("v2/new_order", envelope({"count": 3, "orderList": [order_row(2), order_row(3)]}))
    assert [o.id for o in client.open_orders("btcusdt")] == ["1", "2", "3"]


def test_an_empty_page_ends_the_read(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("v2/new_order", envelope({"count": 9, "resultList": [order_row(1)]}))
    canned.add("v2/new_order", envelope({"count": 9, "resultList": []}))
    assert [o.id for o in client.open_orders("btcusdt")] == ["1"]


def test_a_failed_page_fails_the_whole_read(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("v2/new_order", envelope({"count": 4, "resultList": [order_row(1), order_row(2)]}))
    canned.add("v2/new_order", envelope({"count": 4, "resultList": [{"id": 3, "side": "BUY", "price": "oops"}]}))
    with pytest.raises(BadResponse, match="v2/new_order"):
        client.open_orders("btcusdt")


def test_replace_sends_compact_json_and_signs_exactly_what_it_sends(
    client: OpenApiClient, canned: CannedServer
) -> None:
    answer_data = {
        "mass_place": [{"code": "0", "msg": "ok", "order_id": [7, 8]}],
        "mass_cancel": [{"code": 0, "msg": None, "order_id": 504}],
    }
    canned.add("mass_replaceV2", envelope(answer_data))
    place = [
        Target("buy[0]", Side.BUY, Decimal("29850"), Decimal("0.01")),
        Target("sell[0]", Side.SELL, Decimal("30150.5"), Decimal("0.0125")),
    ]
    answer = client.replace(RULES, ["504", "12345678901234567890"], place)
    assert [g.order_ids for g in answer.place] == [("7", "8")]
    assert answer.cancel[0].order_ids == ("504",)
    (call,) = canned.calls("mass_replaceV2")
    assert call.method == "POST"
    assert call.params["mass_cancel"] == "[504,12345678901234567890]"
    assert call.params["mass_place"] == (
        '[{"side":"BUY","type":"1","volume":"0.0100","price":"29850.00"},'
        '{"side":"SELL","type":"1","volume":"0.0125","price":"30150.50"}]'
    )
    assert call.params["symbol"] == "btcusdt"
    assert_signed(call.params)
    sent = {k: v for k, v in call.params.items() if k not in ("api_key", "time", "sign")}
    assert answer.request is not None and answer.request.params() == sent


def test_an_empty_list_is_omitted(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("mass_replaceV2", envelope({"mass_cancel": []}))
    client.replace(RULES, ["9"], [])
    (call,) = canned.calls("mass_replaceV2")
    assert "mass_place" not in call.params
    assert json.loads(call.params["mass_cancel"]) == [9]


def test_nothing_to_do_sends_nothing(client: OpenApiClient, canned: CannedServer) -> None:
    assert client.replace(RULES, [], []).place == ()
    assert canned.seen == []


@pytest.mark.parametrize(("cancels", "places"), [(1001, 0), (0, 1001), (1001, 1001)])
def test_oversized_batches_are_refused_before_sending(
    client: OpenApiClient, canned: CannedServer, cancels: int, places: int
) -> None:
    target = Target("buy[0]", Side.BUY, Decimal(1), Decimal(1))
    with pytest.raises(RequestError, match="1001"):
        client.replace(RULES, [str(i) for i in range(cancels)], [target] * places)
    assert canned.seen == []


def test_a_price_finer_than_the_tick_is_refused_not_rounded(client: OpenApiClient, canned: CannedServer) -> None:
    with pytest.raises(RequestError, match=r"buy\[0\]"):
        client.replace(RULES, [], [Target("buy[0]", Side.BUY, Decimal("1.005"), Decimal(1))])
    assert canned.seen == []


def test_mass_json_helpers() -> None:
    assert mass_cancel_json(["1", "abc"]) == '[1,"abc"]'
    assert mass_place_json(RULES, []) == "[]"


def test_cancel_all_posts_the_symbol(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("cancel_order_all", envelope(None))
    client.cancel_all("btcusdt")
    (call,) = canned.calls("cancel_order_all")
    assert call.method == "POST" and call.params["symbol"] == "btcusdt"
    assert_signed(call.params)


def test_order_info(client: OpenApiClient, canned: CannedServer) -> None:
    canned.add("order_info", envelope({"order_info": order_row(42, status=2), "trade_list": []}))
    order = client.order_info("btcusdt", "42")
    assert order.id == "42" and order.status is OrderStatus.FILLED
    assert canned.seen[0].params["order_id"] == "42"
