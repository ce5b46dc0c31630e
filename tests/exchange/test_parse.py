"""Parsing tables: every sample answer of the docs, and the variants OPEN_API.md lists beyond them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rebalancer.errors import (
    AuthError,
    BadResponse,
    ExchangeError,
    RateLimited,
    RejectedError,
    TransientError,
)
from rebalancer.exchange.parse import (
    decode_json,
    parse_account,
    parse_batch_answer,
    parse_depth,
    parse_envelope,
    parse_order_info,
    parse_orders_page,
    parse_symbols,
    parse_ticker,
)
from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.models import BatchAnswer, OrderStatus, ResultGroup, Side

SAMPLES = Path(__file__).parent / "samples"
CLASSIFY = ExchangeProfile().classify
D = Decimal


def sample(name: str) -> Any:
    return decode_json((SAMPLES / name).read_text(), name)


def data(name: str) -> Any:
    return parse_envelope(sample(name), name, CLASSIFY)


def body(payload: dict[str, Any]) -> Any:
    """A body as it would arrive over the wire: serialised, then decoded by the client's decoder."""
    return decode_json(json.dumps(payload), "test")


def test_every_sample_file_is_covered() -> None:
    covered = {
        "account.json", "depth.json", "error-signature.json", "error-word-code.json", "new_order.json",
        "symbols.json", "ticker-numbers.json", "ticker-strings.json", "mass_replaceV2-empty-id-failure.json",
        "mass_replaceV2-failure-under-other-key.json", "mass_replaceV2-grouped.json",
        "mass_replaceV2-per-order.json",
    }  # fmt: skip
    assert {p.name for p in SAMPLES.glob("*.json")} == covered


def test_symbols_sample() -> None:
    rules = parse_symbols(data("symbols.json"))
    assert set(rules) == {"btcusdt", "ethbtc"}
    btc = rules["btcusdt"]
    assert (btc.base, btc.quote, btc.price_precision, btc.amount_precision, btc.min_volume) == (
        "btc",
        "usdt",
        2,
        4,
        None,
    )
    assert rules["ethbtc"].min_volume == D("0.001")
    assert rules["ethbtc"].quote == "btc"


@pytest.mark.parametrize(
    ("name", "bid", "ask", "last", "time"),
    [
        ("ticker-numbers.json", "10328.6517", "10340.1291", "10335.8936", 1563530414000),
        ("ticker-strings.json", "0.01000000", "1.12345680", "173.60263169", 1514448473626),
    ],
)
def test_ticker_samples(name: str, bid: str, ask: str, last: str, time: int) -> None:
    ticker = parse_ticker(data(name))
    assert (ticker.bid, ticker.ask, ticker.last, ticker.time) == (D(bid), D(ask), D(last), time)
    assert str(ticker.bid) == bid  # exact digits, trailing zeros included: no float on the way


def test_depth_sample_mixes_numbers_and_strings() -> None:
    depth = parse_depth(data("depth.json"))
    assert depth.asks == ((D("10352.1109"), D("0.1959")), (D("10352.1315"), D("0.2393")))
    assert depth.bids == ((D("10336.1313"), D("0.8707")), (D("10334.3287"), D("0.1721")))


def test_account_sample() -> None:
    balances = parse_account(data("account.json"))
    assert balances.coins["usdt"].available == D("27599.42")
    assert balances.coins["usdt"].locked == D("702.40")
    assert balances.coins["btc"].available == D("0.5")
    assert balances.available("BTC") == D("0.5")


def test_open_orders_sample_keeps_every_row_with_exact_values() -> None:
    count, orders = parse_orders_page(data("new_order.json"))
    assert count == 3
    assert [o.id for o in orders] == ["90419538", "424", "423"]
    first, partial, filled = orders
    assert (first.side, first.price, first.volume, first.status) == (
        Side.SELL, D("10474.83490000"), D("0.00040000"), OrderStatus.NEW,
    )  # fmt: skip
    assert first.created_at == 1563541098939
    assert partial.created_at == 1510993841000  # a string in the sample
    assert (partial.status, partial.deal_volume, partial.remaining) == (
        OrderStatus.PARTIALLY_FILLED, D("0.4"), D("0.6"),
    )  # fmt: skip
    assert filled.status is OrderStatus.FILLED


@pytest.mark.parametrize(
    ("name", "place", "cancel"),
    [
        (
            "mass_replaceV2-grouped.json",
            [("0", ("504", "505"))],
            [("0", ("572", "573", "574")), ("8", ("626",))],
        ),
        ("mass_replaceV2-per-order.json", [("0", ("1234",)), ("19", ())], [("0", ("1200",))]),
        (
            "mass_replaceV2-empty-id-failure.json",
            [("0", ("504", "505"))],
            [("10062", ()), ("0", ("572", "573"))],
        ),
        (
            "mass_replaceV2-failure-under-other-key.json",
            [("0", ("504", "505")), ("8", ("601", "602"))],
            [("0", ("572", "573"))],
        ),
    ],
)
def test_batch_answer_samples(name: str, place: list[Any], cancel: list[Any]) -> None:
    answer = parse_batch_answer(data(name))
    assert [(g.code, g.order_ids) for g in answer.place] == place
    assert [(g.code, g.order_ids) for g in answer.cancel] == cancel


@pytest.mark.parametrize(
    ("name", "error", "code"),
    [
        ("error-signature.json", AuthError, "100005"),
        ("error-word-code.json", RejectedError, "not_sufficient_funds"),
    ],
)
def test_error_samples(name: str, error: type[ExchangeError], code: str) -> None:
    with pytest.raises(error) as caught:
        data(name)
    assert caught.value.code == code
    assert name in str(caught.value)


# Variants beyond the samples.


@pytest.mark.parametrize("code", [0, "0", " 0"])
def test_success_code_as_int_or_string(code: Any) -> None:
    assert parse_envelope(body({"code": code, "msg": None, "data": [1]}), "x", CLASSIFY) == [1]


@pytest.mark.parametrize(
    ("code", "error"),
    [(100005, AuthError), (13, TransientError), ("110041", RateLimited), ("wrong_word", ExchangeError)],
)
def test_error_code_as_int_word_or_string(code: Any, error: type[ExchangeError]) -> None:
    with pytest.raises(error) as caught:
        parse_envelope(body({"code": code, "msg": None, "data": None, "success": False}), "ep", CLASSIFY)
    assert type(caught.value) is error
    assert caught.value.code == str(code)


def test_message_falls_back_to_the_message_key() -> None:
    with pytest.raises(RejectedError, match="no money"):
        parse_envelope(body({"code": "19", "msg": None, "message": "no money"}), "ep", CLASSIFY)


def test_orderlist_instead_of_resultlist_and_string_numbers() -> None:
    row = {
        "id": "77",
        "side": "buy",
        "price": 1.5,
        "volume": "2",
        "status": "1",
        "created_at": "1572833000123",
        "extra": {},
    }
    count, orders = parse_orders_page(body({"count": "1", "orderList": [row]}))
    assert count == 1
    assert orders[0].id == "77" and orders[0].side is Side.BUY and orders[0].created_at == 1572833000123


def test_missing_deal_volume_is_derived_from_remain_volume() -> None:
    row = {"id": 1, "side": "SELL", "price": "3", "volume": "2", "remain_volume": "0.5", "status": 3}
    _, (order,) = parse_orders_page(body({"count": 1, "resultList": [row]}))
    assert order.deal_volume == D("1.5")


def test_unreadable_created_at_is_dropped_not_fatal() -> None:
    row = {"id": 1, "side": "SELL", "price": "3", "volume": "2", "status": 1, "created_at": "yesterday"}
    _, (order,) = parse_orders_page(body({"count": 1, "resultList": [row]}))
    assert order.created_at is None


def test_many_digits_stay_exact() -> None:
    text = '{"buy": 12345678901234567890.123456789012345678, "sell": "0.000000000000000000001", "last": 1}'
    ticker = parse_ticker(decode_json(text, "t"))
    assert ticker.bid == D("12345678901234567890.123456789012345678")
    assert ticker.ask == D("1E-21")
    assert ticker.last == D(1)


def test_empty_book_side_is_none() -> None:
    ticker = parse_ticker(body({"buy": None, "sell": "0", "last": ""}))
    assert (ticker.bid, ticker.ask, ticker.last, ticker.mid) == (None, None, None, None)


def test_per_order_scalar_ids_and_missing_order_id() -> None:
    answer = parse_batch_answer(
        body(
            {
                "mass_place": [{"code": 0, "msg": None, "order_id": 9}, {"code": "5", "msg": "precision"}],
                "mass_cancel": None,
            }
        )
    )
    assert answer == BatchAnswer(place=(ResultGroup("0", "", ("9",)), ResultGroup("5", "precision", ())), cancel=())


def test_null_data_is_not_an_empty_success() -> None:
    with pytest.raises(BadResponse, match="neither mass_place nor mass_cancel"):
        parse_batch_answer(None)


def test_order_info() -> None:
    info = {
        "order_info": {"id": 5, "side": "BUY", "price": "1.00", "volume": "1", "status": 4},
        "trade_list": [],
    }
    order = parse_order_info(body(info))
    assert order.status is OrderStatus.CANCELLED and not order.is_open


@pytest.mark.parametrize(
    ("parser", "payload", "field"),
    [
        (parse_ticker, {"buy": "abc", "sell": "1"}, "buy"),
        (parse_ticker, {"buy": True, "sell": "1"}, "buy"),
        (parse_depth, {"tick": {"asks": [["1"]], "bids": []}}, "asks[0]"),
        (parse_account, {"coin_list": [{"coin": "btc", "normal": "-1"}]}, "btc.normal"),
        (parse_account, {"coin_list": [{"coin": "btc", "normal": {"x": 1}}]}, "btc.normal"),
        (
            parse_orders_page,
            {"count": 1, "resultList": [{"id": 1, "side": "BUY", "status": 1, "volume": "1", "price": "x"}]},
            "price",
        ),
        (parse_orders_page, {"count": 1, "resultList": [{"id": 1, "side": "UP", "price": "1"}]}, "side"),
        (
            parse_orders_page,
            {
                "count": 1,
                "resultList": [{"id": 1, "side": "BUY", "status": 1, "volume": "1", "price": "NaN"}],
            },
            "price",
        ),
        (parse_orders_page, {"count": 1, "resultList": [{"id": 1, "side": "BUY", "status": 9}]}, "status"),
        (parse_orders_page, {"count": "many", "resultList": []}, "count"),
        (
            parse_symbols,
            [{"symbol": "x", "price_precision": "2.5", "amount_precision": 1}],
            "price_precision",
        ),
        (parse_batch_answer, {"mass_place": [{"code": "0", "order_id": [1.5]}]}, "order_id"),
        (parse_batch_answer, {"mass_place": "nope"}, "mass_place"),
    ],
)
def test_bad_fields_raise_bad_response_naming_the_field(parser: Any, payload: Any, field: str) -> None:
    with pytest.raises(BadResponse) as caught:
        parser(body(payload) if not isinstance(payload, list) else decode_json(json.dumps(payload), "t"))
    assert field in str(caught.value)


@pytest.mark.parametrize("text", ["<html>502</html>", "", '{"code": NaN}', "[1, 2"])
def test_non_json_is_bad_response(text: str) -> None:
    with pytest.raises(BadResponse, match="not JSON"):
        decode_json(text, "get_ticker")


@pytest.mark.parametrize("payload", [[], None, "x", {"msg": "no code"}])
def test_envelope_without_code_is_bad_response(payload: Any) -> None:
    with pytest.raises(BadResponse, match="ep"):
        parse_envelope(payload, "ep", CLASSIFY)
