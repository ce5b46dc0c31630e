"""Frame parsing tables: what the stream sends per MARKET_STREAM.md, its variants, and hostile frames."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

import pytest

from rebalancer.models import Side
from rebalancer.stream.frames import (
    Depth,
    FrameError,
    Other,
    Ping,
    SubAck,
    TickerTick,
    Trade,
    Trades,
    channel,
    decode,
    decompress,
    kind_of,
    parse_message,
    symbol_of,
)

D = Decimal
BOUND = 64 * 1024


def gz(text: str) -> bytes:
    return gzip.compress(text.encode())


def parse(text: str) -> Any:
    return parse_message(decode(gz(text), max_bytes=BOUND))


# --- decode: binary and text frames, bounds --------------------------------------------------------------------


def test_binary_gzip_frame_decodes_with_exact_numbers() -> None:
    obj = decode(gz('{"channel":"x","ts":1700000000000,"p":0.1000,"q":"2.50"}'), max_bytes=BOUND)
    assert obj == {"channel": "x", "ts": 1700000000000, "p": D("0.1000"), "q": "2.50"}
    assert str(obj["p"]) == "0.1000"  # trailing zeros kept: the exact text, not a float


def test_text_frame_decodes() -> None:
    assert decode('{"ping": 5}', max_bytes=BOUND) == {"ping": 5}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"not gzip at all", "not gzip"),
        (b"\x1f\x8b\x09\x00" + bytes(6) + b"garbage", "not valid gzip"),
        (b"\x1f\x8b\x08\x00garbage", "truncated"),
        (gz('{"a":1}')[:-6], "truncated"),
        (gz('{"a":1}') + b"xx", "after its gzip"),
        (gz("{not json"), "not JSON"),
        (gz("[1,2]"), "not an object"),
        (gz('"text"'), "not an object"),
        (gzip.compress(b"\xff\xfe{}"), "not UTF-8"),
        ("{bad", "not JSON"),
        ('{"p": NaN}', "non-finite"),
        ('{"p": Infinity}', "non-finite"),
        ('{"p": 1' + "0" * 100 + "}", "characters"),
        ('{"p": 1.' + "5" * 1_000_000 + "}", "longer than"),
        ('{"p": 1e999999999}', "out of range"),
        ('{"p": 1e-99}', "out of range"),
        ("[" * 60000 + "]" * 60000, "not JSON"),
    ],
)
def test_garbage_frames_raise_one_line(raw: bytes | str, says: str) -> None:
    with pytest.raises(FrameError, match=says) as caught:
        decode(raw, max_bytes=200_000 if isinstance(raw, str) and len(raw) > BOUND else BOUND)
    assert "\n" not in str(caught.value)


def test_million_digit_number_within_the_bound_is_refused() -> None:
    with pytest.raises(FrameError, match="characters"):
        decode('{"p": ' + "9" * 1_000_000 + "}", max_bytes=2_000_000)


def test_oversized_compressed_frame_is_refused() -> None:
    raw = gz('{"pad": "' + "x" * 100 + '"}')
    with pytest.raises(FrameError, match="exceeds the bound"):
        decode(raw, max_bytes=len(raw) - 1)


def test_oversized_text_frame_is_refused() -> None:
    with pytest.raises(FrameError, match="longer than 10 bytes"):
        decode('{"a": "0123456789"}', max_bytes=10)
    with pytest.raises(FrameError, match="longer than"):
        decode('{"a":"ééééé"}', max_bytes=14)  # 13 characters, 18 bytes


def test_gzip_bomb_stops_at_the_bound() -> None:
    bomb = gzip.compress(b'{"a":"' + b"0" * 50_000_000 + b'"}')
    assert len(bomb) < 100_000  # small on the wire
    with pytest.raises(FrameError, match="decompresses to more than 1000000 bytes"):
        decompress(bomb, max_bytes=1_000_000)


def test_decompressed_exactly_at_the_bound_is_accepted() -> None:
    text = '{"a":"' + "0" * 94 + '"}'
    assert len(text) == 102
    assert decompress(gz(text), max_bytes=102) == text
    with pytest.raises(FrameError):
        decompress(gz(text), max_bytes=101)


# --- channels --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "kind", "name"),
    [
        ("btcusdt", "depth_step0", "market_btcusdt_depth_step0"),
        ("BTCUSDT", "trade_ticker", "market_btcusdt_trade_ticker"),
        ("eth2usdt", "ticker", "market_eth2usdt_ticker"),
        ("btcusdt", "kline_1min", "market_btcusdt_kline_1min"),
    ],
)
def test_channel_names(symbol: str, kind: str, name: str) -> None:
    assert channel(symbol, kind) == name
    assert symbol_of(name) == symbol.lower()
    assert kind_of(name) == kind


@pytest.mark.parametrize(("symbol", "kind"), [("btc/usdt", "ticker"), ("", "ticker"), ("btcusdt", "Depth"), ("a", "")])
def test_bad_channel_parts_are_refused(symbol: str, kind: str) -> None:
    with pytest.raises(ValueError):
        channel(symbol, kind)


@pytest.mark.parametrize("name", ["market_", "btcusdt_ticker", "market_BTC_ticker", "market_btcusdt", "review", ""])
def test_symbol_of_a_foreign_channel_raises(name: str) -> None:
    with pytest.raises(FrameError, match="not market_<symbol>_<kind>"):
        symbol_of(name)


# --- messages: the documented shapes ---------------------------------------------------------------------------


def test_ping() -> None:
    assert parse('{"ping": 1700000000123}') == Ping(1700000000123)
    assert parse('{"ping": "1700000000123"}') == Ping(1700000000123)


def test_sub_ack() -> None:
    text = '{"event_rep":"subed","channel":"market_btcusdt_depth_step0","cb_id":"1","ts":5,"status":"ok"}'
    assert parse(text) == SubAck("market_btcusdt_depth_step0", "ok")


def test_req_answer_and_unknown_channels_are_other() -> None:
    assert parse('{"event_rep":"rep","channel":"market_btcusdt_trade_ticker","data":[]}') == Other(
        "market_btcusdt_trade_ticker"
    )
    assert parse('{"channel":"market_btcusdt_kline_1min","ts":1,"tick":{"open":1}}') == Other(
        "market_btcusdt_kline_1min"
    )
    assert parse('{"channel":"review","ts":1,"tick":{}}') == Other("review")


def test_depth_buys_with_numbers_and_strings() -> None:
    text = (
        '{"channel":"market_btcusdt_depth_step0","ts":1700000000000,'
        '"tick":{"asks":[[30001.50,"0.2000"],["30002",1]],"buys":[["30000.00",0.5],[29999.9,2.000]]}}'
    )
    assert parse(text) == Depth(
        "btcusdt",
        1700000000000,
        bids=((D("30000.00"), D("0.5")), (D("29999.9"), D("2.000"))),
        asks=((D("30001.50"), D("0.2000")), (D("30002"), D("1"))),
    )


def test_depth_accepts_bids_and_empty_sides() -> None:
    depth = parse('{"channel":"market_btcusdt_depth_step0","ts":1,"tick":{"bids":[[1,2]],"asks":null}}')
    assert depth == Depth("btcusdt", 1, ((D(1), D(2)),), ())
    assert not depth.crossed and depth.ordered


def test_depth_ts_from_tick_when_the_message_has_none() -> None:
    depth = parse('{"channel":"market_btcusdt_depth_step0","tick":{"ts":42,"buys":[],"asks":[]}}')
    assert depth == Depth("btcusdt", 42, (), ())


@pytest.mark.parametrize(
    ("bids", "asks", "ordered", "crossed"),
    [
        ([[10, 1], [9, 1]], [[11, 1], [12, 1]], True, False),
        ([[9, 1], [10, 1]], [[11, 1]], False, False),
        ([[10, 1]], [[12, 1], [11, 1]], False, False),
        ([[10, 1]], [[10, 1]], True, True),
        ([[11, 1]], [[10, 1]], True, True),
        ([[10, 1], [10, 1]], [[11, 1]], False, False),
        ([[9, 1], [12, 1]], [[11, 1]], False, True),
    ],
)
def test_unsorted_and_crossed_depth_is_data(bids: Any, asks: Any, ordered: bool, crossed: bool) -> None:
    obj = {"channel": "market_btcusdt_depth_step0", "ts": 1, "tick": {"buys": bids, "asks": asks}}
    depth = parse(json.dumps(obj))
    assert isinstance(depth, Depth)
    assert (depth.ordered, depth.crossed) == (ordered, crossed)


def test_zero_volume_level_is_kept_as_data() -> None:
    depth = parse('{"channel":"market_btcusdt_depth_step0","ts":1,"tick":{"buys":[[1,0]],"asks":[]}}')
    assert depth == Depth("btcusdt", 1, ((D(1), D(0)),), ())


def test_trades() -> None:
    text = (
        '{"channel":"market_ethusdt_trade_ticker","ts":1700000000500,"tick":{"id":12,"ts":1700000000400,'
        '"data":[{"id":11,"side":"buy","price":"2000.10","vol":0.5,"amount":"1000.05","ts":1700000000300,"ds":"x"},'
        '{"id":"12","side":"SELL","price":1999,"vol":"1.0"}]}}'
    )
    assert parse(text) == Trades(
        "ethusdt",
        1700000000500,
        (
            Trade("11", Side.BUY, D("2000.10"), D("0.5"), 1700000000300),
            Trade("12", Side.SELL, D("1999"), D("1.0"), 1700000000500),
        ),
    )


def test_ticker() -> None:
    text = '{"channel":"market_btcusdt_ticker","ts":9,"tick":{"close":"30000.10","vol":1,"lower_frame":"0"}}'
    assert parse(text) == TickerTick("btcusdt", 9, D("30000.10"), False)
    text = '{"channel":"market_btcusdt_ticker","ts":9,"tick":{"close":1,"lower_frame":1}}'
    assert parse(text) == TickerTick("btcusdt", 9, D(1), True)


# --- messages: malformed known channels ------------------------------------------------------------------------

DEPTH = "market_btcusdt_depth_step0"
TRADE = "market_btcusdt_trade_ticker"


def _trade(**over: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": 1, "side": "buy", "price": "1", "vol": "1", "ts": 1}
    entry.update(over)
    return {"channel": TRADE, "ts": 1, "tick": {"data": [entry]}}


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ({"ping": "soon"}, "ping is not a number"),
        ({"ping": -1}, "not a time"),
        ({"ping": 1.5}, "not a time"),
        ({"event_rep": "subed"}, "without a channel"),
        ({"ts": 1, "tick": {}}, "no channel"),
        ({"channel": 5}, "no channel"),
        ({"channel": "market_BTC_depth_step0", "ts": 1, "tick": {}}, "not market_"),
        ({"channel": DEPTH, "ts": 1}, "tick is not an object"),
        ({"channel": DEPTH, "ts": 1, "tick": []}, "tick is not an object"),
        ({"channel": DEPTH, "tick": {"buys": []}}, "no ts"),
        ({"channel": DEPTH, "ts": "yesterday", "tick": {}}, "ts is not a number"),
        ({"channel": DEPTH, "ts": 1, "tick": {"buys": {"1": 2}}}, "buys is not a list"),
        ({"channel": DEPTH, "ts": 1, "tick": {"buys": [[1]]}}, r"buys\[0\] is not \[price, volume\]"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [5]}}, "is not"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [[0, 1]]}}, "price 0 is not positive"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [[-1, 1]]}}, "price -1 is not positive"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [["1x", 1]]}}, "price is not a number"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [[True, 1]]}}, "not a number"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [[None, 1]]}}, "not a number"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [["NaN", 1]]}}, "not a number"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [["Infinity", 1]]}}, "not a number"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [["1_000", 1]]}}, "not a number"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [["1e99", 1]]}}, "out of range"),
        ({"channel": DEPTH, "ts": 1, "tick": {"asks": [["9" * 101, 1]]}}, "characters"),
        ({"channel": DEPTH, "ts": 1, "tick": {"buys": [[1, -2]]}}, "volume -2 is negative"),
        ({"channel": TRADE, "ts": 1, "tick": {}}, "data is not a list"),
        ({"channel": TRADE, "ts": 1, "tick": {"data": [7]}}, r"data\[0\] is not an object"),
        (_trade(side="hold"), "side 'hold' is not buy or sell"),
        (_trade(side=None), "is not buy or sell"),
        (_trade(id=None), "id is missing"),
        (_trade(id=""), "id is missing"),
        (_trade(id="7" * 101), "id longer than"),
        (_trade(price=0), "price 0 is not positive"),
        (_trade(vol=0), "vol 0 is not positive"),
        (_trade(vol="-1"), "vol -1 is not positive"),
        (_trade(ts="x"), "ts is not a number"),
        ({"channel": "market_btcusdt_ticker", "ts": 1, "tick": {"close": 0}}, "close 0 is not positive"),
        ({"channel": "market_btcusdt_ticker", "ts": 1, "tick": {}}, "close is not a number"),
    ],
)
def test_malformed_known_messages_raise(obj: dict[str, Any], says: str) -> None:
    with pytest.raises(FrameError, match=says) as caught:
        parse(json.dumps(obj))
    assert "\n" not in str(caught.value)


def test_parse_message_refuses_a_non_object() -> None:
    with pytest.raises(FrameError, match="not an object"):
        parse_message([1])  # type: ignore[arg-type]
