"""Frame parsing properties: a frame built from a message parses back to that message, however its numbers are
spelled (JSON numbers or strings, trailing zeros, exponents) and whether it comes gzipped or as text; and no byte
string makes ``decode``/``parse_message`` fail other than with ``FrameError``."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.models import Side
from rebalancer.stream.frames import (
    Depth,
    FrameError,
    Message,
    Ping,
    SubAck,
    TickerTick,
    Trade,
    Trades,
    decode,
    parse_message,
)
from tests.depth import examples

BOUND = 1 << 20

symbols = st.from_regex(r"[a-z0-9]{2,12}", fullmatch=True)
times = st.integers(min_value=0, max_value=4_102_444_800_000)
positive = st.decimals(min_value=Decimal("1e-12"), max_value=Decimal("1e12"), places=None, allow_nan=False).filter(
    lambda d: d > 0 and len(str(d)) <= 40
)
volumes = st.one_of(st.just(Decimal(0)), positive)


@st.composite
def spelled(draw: st.DrawFn, value: Decimal) -> str:
    """One JSON spelling of ``value``: a number or a string, plain or scientific, maybe with trailing zeros."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    zeros = draw(st.integers(min_value=0, max_value=4))
    padded = Decimal((sign, digits + (0,) * zeros, exponent - zeros))
    text = draw(st.sampled_from([format(value, "f"), format(padded, "f"), str(value), f"{value:E}"]))
    return f'"{text}"' if draw(st.booleans()) else text


def level_text(draw: st.DrawFn, level: tuple[Decimal, Decimal]) -> str:
    return f"[{draw(spelled(level[0]))},{draw(spelled(level[1]))}]"


@st.composite
def depth_frames(draw: st.DrawFn) -> tuple[str, Message]:
    symbol, ts = draw(symbols), draw(times)
    levels = st.lists(st.tuples(positive, volumes), max_size=6).map(tuple)
    bids, asks = draw(levels), draw(levels)
    key = draw(st.sampled_from(["buys", "bids"]))
    text = (
        f'{{"channel":"market_{symbol}_depth_step0","ts":{ts},"tick":{{'
        f'"{key}":[{",".join(level_text(draw, lv) for lv in bids)}],'
        f'"asks":[{",".join(level_text(draw, lv) for lv in asks)}]}}}}'
    )
    return text, Depth(symbol, ts, bids, asks)


@st.composite
def trade_frames(draw: st.DrawFn) -> tuple[str, Message]:
    symbol, ts = draw(symbols), draw(times)
    trades = draw(
        st.lists(
            st.builds(
                Trade,
                id=st.integers(min_value=0, max_value=10**18).map(str),
                side=st.sampled_from(list(Side)),
                price=positive,
                volume=positive,
                ts_ms=times,
            ),
            max_size=5,
        )
    )
    entries = []
    for trade in trades:
        ident = trade.id if draw(st.booleans()) else f'"{trade.id}"'
        side = trade.side.value.lower() if draw(st.booleans()) else trade.side.value
        entries.append(
            f'{{"id":{ident},"side":"{side}","price":{draw(spelled(trade.price))},'
            f'"vol":{draw(spelled(trade.volume))},"amount":"1","ts":{trade.ts_ms},"ds":"x"}}'
        )
    text = (
        f'{{"channel":"market_{symbol}_trade_ticker","ts":{ts},'
        f'"tick":{{"id":1,"ts":{ts},"data":[{",".join(entries)}]}}}}'
    )
    return text, Trades(symbol, ts, tuple(trades))


@st.composite
def ticker_frames(draw: st.DrawFn) -> tuple[str, Message]:
    symbol, ts, last, delisted = draw(symbols), draw(times), draw(positive), draw(st.booleans())
    frame = "1" if delisted else draw(st.sampled_from(["0", "", "2"]))
    text = (
        f'{{"channel":"market_{symbol}_ticker","ts":{ts},'
        f'"tick":{{"close":{draw(spelled(last))},"vol":5,"lower_frame":"{frame}"}}}}'
    )
    return text, TickerTick(symbol, ts, last, delisted)


@st.composite
def control_frames(draw: st.DrawFn) -> tuple[str, Message]:
    ts = draw(times)
    if draw(st.booleans()):
        return json.dumps({"ping": ts}), Ping(ts)
    symbol = draw(symbols)
    name = f"market_{symbol}_depth_step0"
    text = json.dumps({"event_rep": "subed", "channel": name, "cb_id": "c", "ts": ts, "status": "ok"})
    return text, SubAck(name, "ok")


frames = st.one_of(depth_frames(), trade_frames(), ticker_frames(), control_frames())


@settings(max_examples=examples(300))
@given(frames, st.booleans())
def test_built_frames_parse_to_what_was_built(frame: tuple[str, Message], binary: bool) -> None:
    text, message = frame
    raw: bytes | str = gzip.compress(text.encode()) if binary else text
    parsed = parse_message(decode(raw, max_bytes=BOUND))
    assert parsed == message


@settings(max_examples=examples(300))
@given(st.binary(max_size=300) | st.binary(max_size=60).map(gzip.compress))
def test_any_bytes_parse_or_raise_frame_error(raw: bytes) -> None:
    try:
        parse_message(decode(raw, max_bytes=BOUND))
    except FrameError as exc:
        assert "\n" not in str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=examples(300))
@given(
    st.sampled_from(["market_btcusdt_depth_step0", "market_btcusdt_trade_ticker", "market_btcusdt_ticker", "x"]),
    st.dictionaries(st.sampled_from(["buys", "bids", "asks", "data", "close", "ts", "lower_frame"]), json_values),
    json_values,
)
def test_hostile_ticks_parse_or_raise_frame_error(name: str, tick: dict[str, Any], ts: Any) -> None:
    text = json.dumps({"channel": name, "ts": ts, "tick": tick})
    try:
        parse_message(decode(text, max_bytes=BOUND))
    except FrameError as exc:
        assert "\n" not in str(exc)
