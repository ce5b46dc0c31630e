"""Pure parsing of the public market stream's frames: bytes or text in, one typed message out.

``decode`` turns one websocket frame into a JSON object: a binary frame is gunzipped within a bound on both its
compressed and its decompressed size (a gzip bomb stops at the bound), a text frame is read as it is, and every
JSON number becomes an exact ``Decimal`` (or an ``int``) within the bounds of ``rebalancer.numbers``, the one reader
of outside numbers: what it refuses, a frame refuses. ``parse_message`` turns
that object into one of the frozen messages below. Anything malformed raises ``FrameError`` with one line saying
what; callers count such frames and go on.

What is data and not an error: a depth whose levels are out of order or whose best bid is at or above its best
ask is returned as received (``Depth.ordered`` and ``Depth.crossed`` say so), because judging a book belongs to the
guards, not the parser. A depth level of volume zero is kept as received too. What is an error: a price that is
zero or negative, a negative volume, a trade of zero volume, a number that is not a number, a side that is not
``buy``/``sell``, a known channel whose ``tick`` lacks what it must hold.

Speed without loosening: a depth's levels have a fast path that checks a whole side's bounds at once with C-level
calls (its least and greatest price and volume) when every level is a plain pair of exact decimals or of numeric
strings, and hands anything else to the careful path, number by number, which accepts or refuses in its own words.
The fast path accepts only what the careful one accepts, and returns the same values
(``tests/stream/test_frames_fast.py``).
"""

from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from decimal import Context, Decimal, Rounded
from functools import reduce
from itertools import pairwise
from operator import methodcaller
from typing import Any, NoReturn

from rebalancer.errors import RebalancerError
from rebalancer.models import Side
from rebalancer.numbers import MAX_EXPONENT, MAX_NUMBER_CHARS, NumberOutOfBounds, bounded_decimal

DEPTH = "depth_step0"
TRADES = "trade_ticker"
TICKER = "ticker"

_SYMBOL = re.compile(r"[a-z0-9]{1,40}")
_KIND = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")
_CHANNEL = re.compile(r"market_([a-z0-9]{1,40})_([a-z0-9]+(?:_[a-z0-9]+)*)")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_GZIP_MAGIC = b"\x1f\x8b"

_PLAIN_DIGITS = MAX_EXPONENT + 1
"""A number of at most this many characters and no exponent is within the bounds (at most 60 places either side)."""
_PLAIN_NUMBERS = re.compile(r"(?:[+-]?(?:\d+\.?\d*|\.\d+),)+")
"""Numeric strings joined by ``,`` (each followed by one), none with an exponent or blank."""
_SMALLEST = Decimal(1).scaleb(-MAX_EXPONENT)
_TOO_LARGE = Decimal(1).scaleb(MAX_EXPONENT + 1)
"""A positive number is within the exponent bound exactly when ``_SMALLEST`` ≤ it < ``_TOO_LARGE``."""
_MS_BOUND = 10 ** (MAX_EXPONENT + 1)
_FINITE = methodcaller("is_finite")
_EXACT = Context(prec=MAX_NUMBER_CHARS, traps=[Rounded])
"""Sums positive decimals exactly or raises: an exact sum's last place is its addends' finest, and no addend has
more digits than the sum (see ``_plain_levels``)."""


class FrameError(RebalancerError):
    """A stream frame that cannot be understood (its message is one line saying what): count it, ignore it."""


class FrameTooLarge(FrameError):
    """A frame over the size bound, compressed or decompressed (a huge frame or a gzip bomb)."""


def _fail(what: str) -> NoReturn:
    raise FrameError(what)


@dataclass(frozen=True, slots=True)
class Ping:
    """A server heartbeat ``{"ping": ts}``; the answer is ``{"pong": ts}`` with the same value."""

    ts: int


@dataclass(frozen=True, slots=True)
class SubAck:
    """The acknowledgement of a subscription (``event_rep: subed``): ``status`` is ``ok`` when it took."""

    channel: str
    status: str


@dataclass(frozen=True, slots=True)
class Depth:
    """A depth snapshot of ``symbol``: ``(price, volume)`` levels as received (the exchange sends best first)."""

    symbol: str
    ts_ms: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]

    @property
    def ordered(self) -> bool:
        """Whether bids strictly fall and asks strictly rise, as a well-formed book's levels do."""
        bids = [p for p, _ in self.bids]
        asks = [p for p, _ in self.asks]
        return all(a > b for a, b in pairwise(bids)) and all(a < b for a, b in pairwise(asks))

    @property
    def crossed(self) -> bool:
        """Whether the best bid is at or above the best ask (a book no one can trade against honestly)."""
        if not self.bids or not self.asks:
            return False
        return max(p for p, _ in self.bids) >= min(p for p, _ in self.asks)


@dataclass(frozen=True, slots=True)
class Trade:
    """One printed trade: the taker's ``side``, its price and volume, its time in ms."""

    id: str
    side: Side
    price: Decimal
    volume: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Trades:
    """The trades of one ``trade_ticker`` push, in the order received."""

    symbol: str
    ts_ms: int
    trades: tuple[Trade, ...]


@dataclass(frozen=True, slots=True)
class TickerTick:
    """A 24 h ticker push: the last price and whether the symbol is delisted (``lower_frame`` 1)."""

    symbol: str
    ts_ms: int
    last: Decimal
    delisted: bool


@dataclass(frozen=True, slots=True)
class Other:
    """A well-formed message of no channel the client follows (an unknown channel, a ``rep``, an unsub ack)."""

    channel: str


Message = Ping | SubAck | Depth | Trades | TickerTick | Other


def channel(symbol: str, kind: str) -> str:
    """The channel name of ``symbol``'s ``kind`` (``depth_step0``, ``trade_ticker``, ...): lower case, as subscribed."""
    sym = symbol.lower()
    if not _SYMBOL.fullmatch(sym):
        raise ValueError(f"symbol {symbol!r} is not letters and digits")
    if not _KIND.fullmatch(kind):
        raise ValueError(f"channel kind {kind!r} is not lower-case words joined by _")
    return f"market_{sym}_{kind}"


def symbol_of(name: str) -> str:
    """The symbol of a ``market_<sym>_<kind>`` channel; ``FrameError`` for anything else."""
    return _split(name)[0]


def kind_of(name: str) -> str:
    """The kind of a ``market_<sym>_<kind>`` channel (``depth_step0``, ``trade_ticker``, ...)."""
    return _split(name)[1]


def _split(name: str) -> tuple[str, str]:
    match = _CHANNEL.fullmatch(name) if isinstance(name, str) else None
    if match is None:
        _fail(f"channel {str(name)[:60]!r} is not market_<symbol>_<kind>")
    return match.group(1), match.group(2)


def decompress(raw: bytes | str, *, max_bytes: int) -> str:
    """The JSON text of one frame: a binary frame gunzipped, a text frame as is; ``FrameError`` when the frame or
    its decompressed text exceeds ``max_bytes``, or when binary is not one whole gzip stream of UTF-8 text."""
    if isinstance(raw, str):
        if len(raw) > max_bytes or len(raw.encode("utf-8", "surrogatepass")) > max_bytes:
            raise FrameTooLarge(f"text frame longer than {max_bytes} bytes")
        return raw
    if len(raw) > max_bytes:
        raise FrameTooLarge(f"frame of {len(raw)} bytes exceeds the bound of {max_bytes}")
    if not raw.startswith(_GZIP_MAGIC):
        _fail(f"binary frame is not gzip (starts {raw[:8].hex()})")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(raw, max_bytes + 1)
    except zlib.error as exc:
        _fail(f"binary frame is not valid gzip: {exc}")
    if len(data) > max_bytes or inflater.unconsumed_tail:
        raise FrameTooLarge(f"frame decompresses to more than {max_bytes} bytes")
    if not inflater.eof:
        _fail("binary frame is a truncated gzip stream")
    if inflater.unused_data:
        _fail("binary frame has bytes after its gzip stream")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        _fail("frame is not UTF-8 text")


def decode(raw: bytes | str, *, max_bytes: int) -> dict[str, Any]:
    """One frame as a JSON object, numbers exact (``int`` or ``Decimal``); ``FrameError`` on anything else."""
    return loads(decompress(raw, max_bytes=max_bytes))


def loads(text: str) -> dict[str, Any]:
    """Parse a frame's JSON text into an object with bounded exact numbers; ``FrameError`` on anything else."""
    try:
        obj = _DECODER.decode(text)
    except FrameError:
        raise
    except (ValueError, RecursionError):
        _fail(f"frame is not JSON: {text[:60]!r}")
    if not isinstance(obj, dict):
        _fail(f"frame is a JSON {type(obj).__name__}, not an object")
    return obj


def _check_length(text: str) -> None:
    if len(text) > MAX_NUMBER_CHARS:
        _fail(f"number of {len(text)} characters (more than {MAX_NUMBER_CHARS})")


def _bounded(value: str | int | Decimal, what: str) -> Decimal:
    """``value`` read by ``rebalancer.numbers.bounded_decimal``; its refusal as a ``FrameError`` naming ``what``."""
    try:
        return bounded_decimal(value)
    except NumberOutOfBounds as exc:
        _fail(f"{what} is out of range: {exc}")


def _float(text: str) -> Decimal:
    if len(text) <= MAX_EXPONENT and "e" not in text and "E" not in text:
        return Decimal(text)  # at most 60 places either side: within the bounds (the usual case, one call per number)
    _check_length(text)
    return _bounded(text, "number")


def _int(text: str) -> int:
    _check_length(text)
    return int(text)


def _constant(name: str) -> NoReturn:
    _fail(f"non-finite number {name}")


_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_constant)
"""Built once: ``json.loads`` with hooks builds a decoder (and its scanner) per call."""


def number(value: object, what: str) -> Decimal:
    """``value`` (a JSON number or a numeric string) as an exact ``Decimal`` within the bounds of
    ``rebalancer.numbers``; ``FrameError`` naming ``what``."""
    if type(value) is Decimal and value.is_finite() and _SMALLEST <= abs(value) < _TOO_LARGE:
        _, digits, exponent = value.as_tuple()
        if isinstance(exponent, int) and exponent >= -MAX_EXPONENT and len(digits) <= MAX_NUMBER_CHARS:
            return value  # the common case at once: what ``_careful_number`` accepts as it is
    return _careful_number(value, what)


def _careful_number(value: object, what: str) -> Decimal:
    """``number``, every check spelled out."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        _fail(f"{what} is not a number: {str(value)[:40]!r}")
    if isinstance(value, str):
        text = value.strip()
        _check_length(text)
        if not _NUMBER.fullmatch(text):
            _fail(f"{what} is not a number: {value[:40]!r}")
        value = text
    result = _bounded(value, what)
    if not result.is_finite():
        _fail(f"{what} is not a finite number: {value!r}")
    return result


def _positive(value: object, what: str) -> Decimal:
    result = number(value, what)
    if result <= 0:
        _fail(f"{what} {result} is not positive")
    return result


def _ms(value: object, what: str) -> int:
    if type(value) is int and 0 <= value < _MS_BOUND:
        return value  # the common case at once: what the checks below accept as it is
    result = number(value, what)
    if result != result.to_integral_value() or result < 0:
        _fail(f"{what} {result} is not a time in milliseconds")
    return int(result)


def _tick(obj: dict[str, Any], name: str) -> dict[str, Any]:
    tick = obj.get("tick")
    if not isinstance(tick, dict):
        _fail(f"{name}: tick is not an object")
    return tick


def _ts(obj: dict[str, Any], tick: dict[str, Any], name: str) -> int:
    value = obj.get("ts", tick.get("ts"))
    if value is None:
        _fail(f"{name}: no ts")
    return _ms(value, f"{name}: ts")


def parse_message(obj: dict[str, Any]) -> Message:
    """The typed message of one decoded frame; ``FrameError`` when a known kind of message is malformed."""
    if not isinstance(obj, dict):
        _fail("message is not an object")
    if "ping" in obj:
        return Ping(_ms(obj["ping"], "ping"))
    if "event_rep" in obj:
        name = obj.get("channel")
        if not isinstance(name, str):
            _fail("event_rep without a channel")
        if obj["event_rep"] == "subed":
            return SubAck(name, str(obj.get("status", "")))
        return Other(name)
    name = obj.get("channel")
    if not isinstance(name, str):
        _fail(f"message has no channel (keys {sorted(obj)[:5]})")
    if not name.startswith("market_"):
        return Other(name)
    symbol, kind = _split(name)
    if kind.startswith("depth_step"):
        return _depth(obj, name, symbol)
    if kind == TRADES:
        return _trades(obj, name, symbol)
    if kind == TICKER:
        tick = _tick(obj, name)
        delisted = str(tick.get("lower_frame", "0")).strip() == "1"
        return TickerTick(symbol, _ts(obj, tick, name), _positive(tick.get("close"), f"{name}: close"), delisted)
    return Other(name)


def _levels(value: object, what: str) -> tuple[tuple[Decimal, Decimal], ...]:
    if value is None:
        return ()
    fast = _plain_levels(value)
    return fast if fast is not None else _careful_levels(value, what)


def _careful_levels(value: object, what: str) -> tuple[tuple[Decimal, Decimal], ...]:
    """``_levels`` number by number, refusing the first that is wrong in words naming it."""
    if not isinstance(value, list):
        _fail(f"{what} is not a list")
    levels = []
    for i, level in enumerate(value):
        if not isinstance(level, list) or len(level) < 2:
            _fail(f"{what}[{i}] is not [price, volume]")
        price = _positive(level[0], f"{what}[{i}] price")
        volume = number(level[1], f"{what}[{i}] volume")
        if volume < 0:
            _fail(f"{what}[{i}] volume {volume} is negative")
        levels.append((price, volume))
    return tuple(levels)


def _plain_levels(value: object) -> tuple[tuple[Decimal, Decimal], ...] | None:
    """The levels of ``value`` when every one is a ``[price, volume]`` pair of exact decimals (or all numeric
    strings without an exponent) that the careful reading accepts as they are; None sends the caller to the careful
    reading. One pass of C-level calls per book: the bounds hold for every number when they hold for the least and
    the greatest."""
    if type(value) is not list or not value or set(map(type, value)) != {list} or set(map(len, value)) != {2}:
        return None
    prices, volumes = zip(*value, strict=True)
    kinds = set(map(type, prices)) | set(map(type, volumes))
    if kinds == {str}:
        numbers = prices + volumes
        if max(map(len, numbers)) > _PLAIN_DIGITS or not _PLAIN_NUMBERS.fullmatch(",".join(numbers) + ","):
            return None
        prices, volumes = tuple(map(Decimal, prices)), tuple(map(Decimal, volumes))
    elif kinds != {Decimal} or not (all(map(_FINITE, prices)) and all(map(_FINITE, volumes))):
        return None
    if min(prices) < _SMALLEST or max(prices) >= _TOO_LARGE or min(volumes) < _SMALLEST or max(volumes) >= _TOO_LARGE:
        return None  # out of bounds, or a volume of zero (kept, by the careful reading)
    if kinds == {Decimal}:
        # The magnitudes are in bounds; so are the last places and digit counts when the positive numbers sum
        # exactly within MAX_NUMBER_CHARS digits with no place finer than 1e-60 (else the careful path decides).
        try:
            finest = reduce(_EXACT.add, prices + volumes).as_tuple().exponent
        except Rounded:
            return None
        if not isinstance(finest, int) or finest < -MAX_EXPONENT:
            return None
    return tuple(zip(prices, volumes, strict=True))


def _depth(obj: dict[str, Any], name: str, symbol: str) -> Depth:
    tick = _tick(obj, name)
    side = "buys" if "buys" in tick else "bids"
    bids = _levels(tick.get(side), f"{name}: {side}")
    asks = _levels(tick.get("asks"), f"{name}: asks")
    return Depth(symbol, _ts(obj, tick, name), bids, asks)


def _trades(obj: dict[str, Any], name: str, symbol: str) -> Trades:
    tick = _tick(obj, name)
    ts_ms = _ts(obj, tick, name)
    data = tick.get("data")
    if not isinstance(data, list):
        _fail(f"{name}: tick.data is not a list")
    trades = []
    for i, entry in enumerate(data):
        what = f"{name}: data[{i}]"
        if not isinstance(entry, dict):
            _fail(f"{what} is not an object")
        side = entry.get("side")
        if not isinstance(side, str) or side.lower() not in ("buy", "sell"):
            _fail(f"{what}: side {str(side)[:20]!r} is not buy or sell")
        ident = entry.get("id")
        if isinstance(ident, bool) or not isinstance(ident, int | str | Decimal) or str(ident) == "":
            _fail(f"{what}: id is missing")
        if len(str(ident)) > MAX_NUMBER_CHARS:
            _fail(f"{what}: id longer than {MAX_NUMBER_CHARS} characters")
        price = _positive(entry.get("price"), f"{what} price")
        volume = _positive(entry.get("vol"), f"{what} vol")
        at = _ms(entry["ts"], f"{what} ts") if entry.get("ts") is not None else ts_ms
        trades.append(Trade(str(ident), Side(side.upper()), price, volume, at))
    return Trades(symbol, ts_ms, tuple(trades))
