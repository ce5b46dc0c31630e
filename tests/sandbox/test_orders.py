"""Orders over HTTP: mass_replaceV2, open-order pages, order_info, cancel_order_all, the exchange's rules."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

SYMBOL = "btcusdt"


def test_place_then_cancel_a_batch(api: Any) -> None:
    answer = api.replace(SYMBOL, place=[api.item("BUY", "29000.00", "0.0100"), api.item("SELL", "31000.00", "0.0200")])
    assert answer["code"] == "0"
    assert answer["data"]["mass_cancel"] == []
    [group] = answer["data"]["mass_place"]
    assert group["code"] == "0" and len(group["order_id"]) == 2
    rows = api.open_orders(SYMBOL)
    assert sorted(r["id"] for r in rows) == sorted(group["order_id"])
    by_side = {r["side"]: r for r in rows}
    assert by_side["BUY"]["price"] == "29000.00" and by_side["BUY"]["volume"] == "0.0100"
    assert by_side["SELL"]["remain_volume"] == "0.0200" and by_side["SELL"]["status"] == 1
    assert by_side["SELL"]["baseCoin"] == "BTC" and by_side["SELL"]["countCoin"] == "USDT"

    answer = api.replace(SYMBOL, cancel=group["order_id"])
    assert answer["data"]["mass_cancel"] == [{"code": "0", "msg": "Success", "order_id": group["order_id"]}]
    assert answer["data"]["mass_place"] == []
    assert api.open_orders(SYMBOL) == []


def test_cancel_ids_may_be_numeric_strings_and_values_numbers(api: Any) -> None:
    answer = api.replace(SYMBOL, place=[{"side": "BUY", "type": 1, "volume": 0.5, "price": 28000}])
    [oid] = api.placed_ids(answer)
    assert api.open_orders(SYMBOL)[0]["volume"] == "0.5000"
    answer = api.replace(SYMBOL, cancel=[str(oid)])
    assert answer["data"]["mass_cancel"][0]["code"] == "0"


def test_cancels_run_before_placements(sandbox: Any, api: Any) -> None:
    usdt = sandbox.engine.balances(sandbox.api_key).available("usdt")
    # One buy locks almost all the quote coin; a second as large only fits once the first is cancelled.
    volume = (usdt / Decimal("20000") * Decimal("0.9")).quantize(Decimal("0.0001"))
    [first] = api.placed_ids(api.replace(SYMBOL, place=[api.item("BUY", "20000.00", str(volume))]))
    answer = api.replace(SYMBOL, cancel=[first], place=[api.item("BUY", "20000.00", str(volume))])
    assert answer["data"]["mass_cancel"][0] == {"code": "0", "msg": "Success", "order_id": [first]}
    assert answer["data"]["mass_place"][0]["code"] == "0"


def test_twenty_five_orders_read_in_pages_of_ten(api: Any) -> None:
    place = [api.item("BUY", f"{29000 - i}.00", "0.0010") for i in range(25)]
    ids = api.placed_ids(api.replace(SYMBOL, place=place))
    assert len(ids) == 25
    pages = []
    for page in (1, 2, 3, 4):
        body = api.sget("/open/api/v2/new_order", {"symbol": SYMBOL, "page": str(page), "pageSize": "10"})
        assert body["data"]["count"] == 25
        pages.append([r["id"] for r in body["data"]["resultList"]])
    assert [len(p) for p in pages] == [10, 10, 5, 0]
    assert sorted(pages[0] + pages[1] + pages[2]) == sorted(ids)
    assert sorted(r["id"] for r in api.open_orders(SYMBOL, page_size=10)) == sorted(ids)


def test_page_size_is_capped_silently(sandbox: Any, api: Any) -> None:
    sandbox.faults.max_page_size = 4
    api.replace(SYMBOL, place=[api.item("SELL", f"{31000 + i}.00", "0.0010") for i in range(9)])
    body = api.sget("/open/api/v2/new_order", {"symbol": SYMBOL, "page": "1", "pageSize": "1000"})
    assert body["data"]["count"] == 9 and len(body["data"]["resultList"]) == 4
    assert len(api.open_orders(SYMBOL)) == 9


@pytest.mark.parametrize(("name", "value"), [("page", "0"), ("pageSize", "-1"), ("page", "x")])
def test_bad_paging_is_100004(api: Any, name: str, value: str) -> None:
    assert api.sget("/open/api/v2/new_order", {"symbol": SYMBOL, name: value})["code"] == "100004"


@pytest.mark.parametrize(
    ("item", "code"),
    [
        ({"side": "BUY", "type": "1", "volume": "0.01", "price": "29000.001"}, "10062"),
        ({"side": "SELL", "type": "1", "volume": "0.00001", "price": "31000"}, "10062"),
        ({"side": "BUY", "type": "1", "volume": "0.00005", "price": "29000"}, "10062"),
        ({"side": "BUY", "type": "1", "volume": "0.0000", "price": "29000"}, "10064"),
        ({"side": "BUY", "type": "1", "volume": "-1", "price": "29000"}, "10064"),
        ({"side": "BUY", "type": "1", "volume": "1000", "price": "29000"}, "19"),
        ({"side": "SELL", "type": "1", "volume": "21", "price": "31000"}, "19"),
        ({"side": "BUY", "type": "2", "volume": "100"}, "100004"),
        ({"side": "HOLD", "type": "1", "volume": "0.01", "price": "29000"}, "100004"),
        ({"side": "BUY", "type": "1", "price": "29000"}, "23"),
        ({"side": "BUY", "type": "1", "volume": "0.01", "price": ""}, "24"),
        ({"side": "BUY", "type": "1", "volume": "1e", "price": "29000"}, "100004"),
        ({"side": "BUY", "type": "1", "volume": "0.01", "price": "1e400"}, "100004"),
        ({"side": "BUY", "type": "1", "volume": "0.01", "price": "1e99999999999"}, "100004"),
        ({"side": "BUY", "type": "1", "volume": "0.01", "price": "1" + "0" * 100_000}, "100004"),
        ({"side": "BUY", "type": "1", "volume": "12345678901.2345", "price": "1234567890123456.7"}, "100004"),
    ],
)
def test_rejected_placement_codes(api: Any, item: dict[str, str], code: str) -> None:
    answer = api.replace(SYMBOL, place=[item])
    assert answer["code"] == "0"
    assert answer["data"]["mass_place"] == [
        {"code": code, "msg": answer["data"]["mass_place"][0]["msg"], "order_id": ""}
    ]
    assert api.open_orders(SYMBOL) == []


def test_below_minimum_volume_is_10063(api: Any) -> None:
    answer = api.replace("ethusdt", place=[api.item("BUY", "1900.00", "0.0009")])
    assert answer["data"]["mass_place"][0]["code"] == "10063"
    answer = api.replace("ethusdt", place=[api.item("BUY", "1900.00", "0.0010")])
    assert answer["data"]["mass_place"][0]["code"] == "0"


def test_mixed_batch_groups_by_code(api: Any) -> None:
    answer = api.replace(
        SYMBOL,
        cancel=[1, 2],
        place=[
            api.item("BUY", "29000.00", "0.0100"),
            api.item("BUY", "29000.00", "999"),
            api.item("BUY", "29001.00", "0.0100"),
        ],
    )
    places = answer["data"]["mass_place"]
    assert [g["code"] for g in places] == ["0", "19"]
    assert len(places[0]["order_id"]) == 2 and places[1]["order_id"] == ""
    assert answer["data"]["mass_cancel"] == [{"code": "22", "msg": "order does not exist", "order_id": [1, 2]}]


def test_per_order_answer_shape(sandbox: Any, api: Any) -> None:
    sandbox.faults.answer_shape = "per_order"
    answer = api.replace(
        SYMBOL,
        cancel=[5],
        place=[api.item("SELL", "31000.00", "0.0100"), api.item("SELL", "31000.00", "100")],
    )
    ok, failed = answer["data"]["mass_place"]
    assert ok["code"] == "0" and ok["order_id"].isdigit()
    assert failed == {"order_id": "", "code": "19", "msg": failed["msg"]}
    assert answer["data"]["mass_cancel"] == [{"order_id": 5, "code": "22", "msg": "order does not exist"}]


def test_more_than_1000_items_are_refused_whole(api: Any) -> None:
    place = [api.item("BUY", "20000.00", "0.0010")] * 1001
    assert api.replace(SYMBOL, place=place)["code"] == "100004"
    assert api.replace(SYMBOL, cancel=list(range(1, 1002)))["code"] == "100004"
    assert api.open_orders(SYMBOL) == []
    assert api.replace(SYMBOL, cancel=list(range(1, 1001)))["code"] == "0"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("mass_cancel", "[1,"),
        ("mass_cancel", '{"a":1}'),
        ("mass_cancel", "[1.5]"),
        ("mass_cancel", "[true]"),
        ("mass_place", "[1]"),
        ("mass_place", "NaN"),
        ("mass_cancel", '["12a"]'),
    ],
)
def test_malformed_lists_are_100004(api: Any, name: str, text: str) -> None:
    response = api.spost("/open/api/mass_replaceV2", {"symbol": SYMBOL, name: text})
    assert response.json()["code"] == "100004"


def test_balances_lock_and_release_exactly(sandbox: Any, api: Any) -> None:
    assert api.balances()["usdt"] == ("1000000.00000000", "0.00000000")
    assert api.balances()["btc"] == ("20.00000000", "0.00000000")
    answer = api.replace(SYMBOL, place=[api.item("BUY", "29000.10", "0.0123"), api.item("SELL", "31000.00", "1.5")])
    ids = api.placed_ids(answer)
    # 29000.10 × 0.0123 = 356.70123 quote locked; 1.5 base locked.
    assert api.balances()["usdt"] == ("999643.29877000", "356.70123000")
    assert api.balances()["btc"] == ("18.50000000", "1.50000000")
    api.replace(SYMBOL, cancel=ids)
    assert api.balances()["usdt"] == ("1000000.00000000", "0.00000000")
    assert api.balances()["btc"] == ("20.00000000", "0.00000000")
    assert sandbox.engine.balances(sandbox.api_key).coins["usdt"].locked == 0


def test_cancelling_twice_is_22(api: Any) -> None:
    [oid] = api.placed_ids(api.replace(SYMBOL, place=[api.item("BUY", "29000.00", "0.0100")]))
    assert api.replace(SYMBOL, cancel=[oid])["data"]["mass_cancel"][0]["code"] == "0"
    assert api.replace(SYMBOL, cancel=[oid])["data"]["mass_cancel"][0]["code"] == "22"
    # An order of another symbol is not found under this one.
    [eth] = api.placed_ids(api.replace("ethusdt", place=[api.item("BUY", "1900.00", "0.0100")]))
    assert api.replace(SYMBOL, cancel=[eth])["data"]["mass_cancel"][0]["code"] == "22"


def test_order_info_follows_an_order_to_cancelled(api: Any) -> None:
    [oid] = api.placed_ids(api.replace(SYMBOL, place=[api.item("SELL", "31000.00", "0.0100")]))
    body = api.sget("/open/api/order_info", {"symbol": SYMBOL, "order_id": str(oid)})
    assert body["data"]["order_info"]["status"] == 1 and body["data"]["trade_list"] == []
    api.replace(SYMBOL, cancel=[oid])
    body = api.sget("/open/api/order_info", {"symbol": SYMBOL, "order_id": str(oid)})
    assert body["data"]["order_info"]["status"] == 4
    unknown = api.sget("/open/api/order_info", {"symbol": SYMBOL, "order_id": "999999"})
    assert unknown["code"] == "0" and unknown["data"]["order_info"] is None  # as a live deployment answers
    assert api.sget("/open/api/order_info", {"symbol": SYMBOL})["code"] == "100004"


def test_cancel_order_all(api: Any) -> None:
    api.replace(SYMBOL, place=[api.item("BUY", f"{28000 + i}.00", "0.0010") for i in range(5)])
    api.replace("ethusdt", place=[api.item("BUY", "1900.00", "0.0100")])
    response = api.spost("/open/api/cancel_order_all", {"symbol": SYMBOL})
    assert response.json() == {"code": "0", "msg": "suc", "data": {}}
    assert api.open_orders(SYMBOL) == []
    assert len(api.open_orders("ethusdt")) == 1


def test_post_parameters_in_the_query_string_are_read(api: Any) -> None:
    params = api.signed_params({"symbol": SYMBOL, "mass_cancel": json.dumps([1])})
    response = api.session.post(api.url + "/open/api/mass_replaceV2", params=params, timeout=10)
    # Parameters in the query string of a POST are still read (and signed) as received.
    assert response.json()["code"] == "0"
