"""A recording of the market stream → the replay's events.

The file is gzip JSON lines (``rebalancer record``): optionally first ``{"t": ms, "rules": {"<sym>": {"tick": ...,
"lot": ...}}}``, then ``{"t": <receive time, ms>, "frame": <stream message>}`` per frame. Of the frames, the
symbol's ``market_<sym>_depth_step0`` pushes become books and its ``market_<sym>_trade_ticker`` pushes become prints;
every other frame (pings, acknowledgements, other channels and symbols) is skipped. Events take the line's receive
time ``t``: a line whose ``t`` is earlier than the line before it is taken at the earlier line's time (the replay's
clock never goes back) and counted in ``Recording.backwards``. A trade whose id was already seen (a resubscribe
repeats recent trades) is skipped.

Anything else wrong stops the replay with one line naming the file and line: not gzip, cut short, a line longer
than ``MAX_LINE_BYTES``, not JSON, not an object, no integer ``t``, a rules line not first, a frame of the symbol
whose numbers are not sane prices and volumes (``rebalancer.replay.numbers``).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NoReturn

from rebalancer.errors import ConfigError
from rebalancer.models import SymbolRules
from rebalancer.replay.market import Book, Event, Level, Print
from rebalancer.replay.numbers import BadNumber, market_decimal

MAX_LINE_BYTES = 16 * 1024 * 1024
"""A longer line is refused: a full-depth frame of a busy market is well under 1 MiB."""
MAX_TIME_MS = 2**53
QUOTE_COINS = ("usdt", "usdc", "busd", "tusd", "usd", "eur", "btc", "eth")
"""Quote coins tried, in this order, to split a symbol without base and quote in its rules line."""


class RecordingError(ConfigError):
    """The recording cannot be read: the message names the file and line."""


@dataclass
class Recording:
    """An open recording of ``symbol``: its rules line (if any) and its events, read lazily in file order."""

    path: Path
    symbol: str
    rules: SymbolRules | None = None
    backwards: int = 0
    _stream: IO[bytes] | None = field(default=None, repr=False)
    _first: Any = field(default=None, repr=False)
    _line: int = 0

    def events(self) -> Iterator[Event]:
        """The books and prints of the symbol, in time order; ``RecordingError`` at the first broken line."""
        depth = f"market_{self.symbol}_depth_step0"
        trades = f"market_{self.symbol}_trade_ticker"
        seen_trades: set[str] = set()
        last_t = -1
        pending = self._first
        self._first = None
        while True:
            if pending is not None:
                record, pending = pending, None
            else:
                record = self._next_record()
                if record is None:
                    return
            if "rules" in record:
                self._fail("a rules line may only be the first line")
            t = self._time(record)
            if t < last_t:
                self.backwards += 1
                t = last_t
            last_t = t
            frame = record.get("frame")
            if not isinstance(frame, dict):
                self._fail("no frame object")
            channel = frame.get("channel")
            if channel == depth:
                yield self._book(t, frame)
            elif channel == trades:
                yield from self._prints(t, frame, seen_trades)

    def close(self) -> None:
        """Close the file."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _next_record(self) -> dict[str, Any] | None:
        assert self._stream is not None
        try:
            raw = self._stream.readline(MAX_LINE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as exc:
            raise RecordingError(f"{self.path}: line {self._line + 1}: {_gzip_problem(exc)}") from None
        if not raw:
            return None
        self._line += 1
        if len(raw) > MAX_LINE_BYTES:
            self._fail(f"longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
        if not raw.strip():
            return self._next_record()
        try:
            record = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            self._fail("not a JSON line (garbage in the recording)")
        if not isinstance(record, dict):
            self._fail("not a JSON object")
        return record

    def _time(self, record: Mapping[str, Any]) -> int:
        t = record.get("t")
        if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < MAX_TIME_MS:
            self._fail('no receive time "t" in milliseconds')
        return t

    def _book(self, t: int, frame: Mapping[str, Any]) -> Book:
        tick = frame.get("tick")
        if not isinstance(tick, dict):
            self._fail("depth frame without a tick object")
        return Book(t, self._levels(tick.get("buys"), "buys"), self._levels(tick.get("asks"), "asks"))

    def _levels(self, raw: object, side: str) -> tuple[Level, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self._fail(f"depth {side} is not a list")
        levels: list[Level] = []
        for index, entry in enumerate(raw):
            if not isinstance(entry, list) or len(entry) < 2:
                self._fail(f"depth {side}[{index}] is not a [price, volume] pair")
            try:
                price = market_decimal(entry[0], f"depth {side}[{index}] price", positive=True)
                volume = market_decimal(entry[1], f"depth {side}[{index}] volume", positive=False)
            except BadNumber as exc:
                self._fail(str(exc))
            if volume > 0:
                levels.append((price, volume))
        levels.sort(key=lambda level: -level[0] if side == "buys" else level[0])
        return tuple(levels)

    def _prints(self, t: int, frame: Mapping[str, Any], seen: set[str]) -> Iterator[Print]:
        tick = frame.get("tick")
        data = tick.get("data") if isinstance(tick, dict) else None
        if not isinstance(data, list):
            self._fail("trade frame without a tick.data list")
        prints: list[Print] = []
        for index, trade in enumerate(data):
            if not isinstance(trade, dict):
                self._fail(f"trade data[{index}] is not an object")
            trade_id = trade.get("id")
            if isinstance(trade_id, bool) or not isinstance(trade_id, str | int):
                self._fail(f"trade data[{index}] has no id")
            try:
                price = market_decimal(trade.get("price"), f"trade data[{index}] price", positive=True)
                volume = market_decimal(trade.get("vol"), f"trade data[{index}] vol", positive=True)
            except BadNumber as exc:
                self._fail(str(exc))
            key = str(trade_id)
            if key in seen:
                continue
            seen.add(key)
            side = trade.get("side")
            prints.append(Print(t, key, price, volume, side if side in ("buy", "sell") else ""))
        return iter(prints)

    def _fail(self, why: str) -> NoReturn:
        raise RecordingError(f"{self.path}: line {self._line}: {why}")


def open_recording(path: str | Path, symbol: str, coins: tuple[str, str] | None = None) -> Recording:
    """Open a recording of ``symbol`` and read its rules line, if it has one, into ``rules``.

    ``coins`` (base, quote) name the coins when the rules line does not; otherwise they come from the symbol's
    name (``QUOTE_COINS``).
    """
    file = Path(path)
    try:
        stream: IO[bytes] = gzip.open(file, "rb")
    except OSError as exc:
        raise RecordingError(f"{file}: cannot open: {exc.strerror or exc}") from None
    recording = Recording(file, symbol, _stream=stream)
    try:
        first = recording._next_record()
    except BaseException:
        recording.close()
        raise
    if first is not None and "rules" in first:
        recording._time(first)
        recording.rules = _rules(recording, first["rules"], coins)
    else:
        recording._first = first
    return recording


def _rules(recording: Recording, raw: object, coins: tuple[str, str] | None) -> SymbolRules | None:
    """The symbol's rules from the rules line (None when the line does not list the symbol)."""
    symbol = recording.symbol
    entry = raw.get(symbol) if isinstance(raw, dict) else None
    if not isinstance(raw, dict):
        recording._fail("rules is not an object")
    if entry is None:
        return None
    if not isinstance(entry, dict):
        recording._fail(f"rules of {symbol} is not an object")
    try:
        tick = market_decimal(entry.get("tick"), f"rules {symbol} tick", positive=True)
        lot = market_decimal(entry.get("lot"), f"rules {symbol} lot", positive=True)
    except BadNumber as exc:
        recording._fail(str(exc))
    if tick != Decimal(1).scaleb(tick.adjusted()) or lot != Decimal(1).scaleb(lot.adjusted()) or tick > 1 or lot > 1:
        recording._fail(f"rules of {symbol}: tick and lot must be 1, 0.1, 0.01, ...")
    base, quote = entry.get("base"), entry.get("quote")
    if not (isinstance(base, str) and isinstance(quote, str) and base and quote):
        base, quote = coins or split_symbol(symbol)
    return SymbolRules(symbol, base.upper(), quote.upper(), -tick.adjusted(), -lot.adjusted(), lot)


def split_symbol(symbol: str) -> tuple[str, str]:
    """(base, quote) of a symbol such as ``btcusdt``, by its quote coin's suffix; ``ConfigError`` when unknown."""
    for quote in QUOTE_COINS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ConfigError(f"cannot tell the base and quote coins of {symbol!r}: give them in the recording's rules line")


def _gzip_problem(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "the file ends in the middle of a gzip stream (cut short)"
    if isinstance(exc, gzip.BadGzipFile):
        return "not a gzip file (a recording is .jsonl.gz)"
    return f"cannot decompress: {exc}"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
