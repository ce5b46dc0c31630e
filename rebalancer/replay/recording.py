"""A recording of the market stream → the replay's events.

The file is gzip JSON lines (``rebalancer record``): optionally first ``{"t": ms, "rules": {"<sym>": {"tick": ...,
"lot": ...}}}``, then ``{"t": <receive time, ms>, "frame": <stream message>}`` per frame. Of the frames, the
symbol's ``market_<sym>_depth_step0`` pushes become books and its ``market_<sym>_trade_ticker`` pushes become prints;
every other frame (pings, acknowledgements, other channels and symbols) is skipped. Events take the line's receive
time ``t``: a line whose ``t`` is earlier than the line before it is taken at the earlier line's time (the replay's
clock never goes back) and counted in ``Recording.backwards``. A line more than ``MAX_SPAN_HOURS`` (a year) after
the first frame line, or not before ``MAX_TIME_MS`` (9000-01-01), is refused like a broken line: the timer would
otherwise run a pass every period of the gap. A trade whose id was already seen (a resubscribe
repeats recent trades) is skipped.

Anything else wrong stops the replay with one line naming the file and line: not gzip, cut short, a line longer
than ``MAX_LINE_BYTES``, not JSON, not an object, no integer ``t``, a rules line not first, a frame of the symbol
whose numbers are not sane prices and volumes (``rebalancer.replay.numbers``).
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from operator import itemgetter
from pathlib import Path
from typing import Any, NoReturn

from rebalancer.errors import ConfigError
from rebalancer.models import SymbolRules
from rebalancer.replay.market import LATEST_MS, MAX_SPAN_HOURS, MAX_SPAN_MS, Book, Event, Level, Print
from rebalancer.replay.numbers import LARGEST, BadNumber, market_decimal
from rebalancer.stream import frames

MAX_LINE_BYTES = 16 * 1024 * 1024
"""A longer line is refused: a full-depth frame of a busy market is well under 1 MiB."""
MAX_TIME_MS = LATEST_MS
_PRICE = itemgetter(0)
_VOLUME = itemgetter(1)
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
    _stream: gzip.GzipFile | None = field(default=None, repr=False)
    _first: Any = field(default=None, repr=False)
    _line: int = 0

    def events(self) -> Iterator[Event]:
        """The books and prints of the symbol, in time order; ``RecordingError`` at the first broken line."""
        seen_trades: set[str] = set()
        last_t = -1
        first_t: int | None = None
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
            if first_t is None:
                first_t = t
            elif t - first_t > MAX_SPAN_MS:
                self._fail(
                    f'"t" is {(t - first_t) // 3_600_000}h after the first line\'s; a replay spans at most '
                    f"{MAX_SPAN_HOURS}h (split the recording)"
                )
            if t < last_t:
                self.backwards += 1
                t = last_t
            last_t = t
            raw = record.get("frame")
            if not isinstance(raw, dict):
                self._fail("no frame object")
            try:
                message = frames.parse_message(raw)
            except frames.FrameError as exc:
                self._fail(str(exc))
            if isinstance(message, frames.Depth) and message.symbol == self.symbol:
                yield self._book(t, message)
            elif isinstance(message, frames.Trades) and message.symbol == self.symbol:
                yield from self._prints(t, message, seen_trades)

    def close(self) -> None:
        """Close the file."""
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    def _next_record(self) -> dict[str, Any] | None:
        """The next line's JSON object (blank lines skipped), None at the end of the file."""
        assert self._stream is not None
        while True:
            try:
                raw = self._stream.readline(MAX_LINE_BYTES + 1)
            except (OSError, EOFError, zlib.error) as exc:
                raise RecordingError(f"{self.path}: line {self._line + 1}: {_gzip_problem(exc)}") from None
            if not raw:
                return None
            self._line += 1
            if len(raw) > MAX_LINE_BYTES:
                self._fail(f"longer than {MAX_LINE_BYTES // (1024 * 1024)} MiB")
            if raw.strip():
                break
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            self._fail("not UTF-8 text (garbage in the recording)")
        try:
            return frames.loads(text)
        except frames.FrameError as exc:
            self._fail(f"garbage in the recording: {exc}")

    def _time(self, record: Mapping[str, Any]) -> int:
        t = record.get("t")
        if isinstance(t, bool) or not isinstance(t, int) or t < 0:
            self._fail('no receive time "t" in milliseconds')
        if t >= MAX_TIME_MS:
            self._fail(f'receive time "t" {str(t)[:40]} ms is not before 9000-01-01')
        return t

    def _book(self, t: int, depth: frames.Depth) -> Book:
        return Book(t, self._sane(depth.bids, "depth bids", best_high=True), self._sane(depth.asks, "depth asks"))

    def _sane(self, levels: tuple[Level, ...], what: str, *, best_high: bool = False) -> tuple[Level, ...]:
        """The levels with volume, best first (a stable sort: as received when they are in order); a price or
        volume of ``LARGEST`` or more stops the replay (the stream parser has already refused what is not a finite,
        positive price or a volume of zero or more)."""
        if not levels:
            return ()
        if min(map(_VOLUME, levels)) <= 0:
            levels = tuple(level for level in levels if level[1] > 0)
            if not levels:
                return ()
        if max(map(_PRICE, levels)) >= LARGEST or max(map(_VOLUME, levels)) >= LARGEST:
            self._fail(f"{what}: a price or volume of {LARGEST:.0e} or more is absurd")
        return tuple(sorted(levels, key=_PRICE, reverse=best_high))

    def _prints(self, t: int, trades: frames.Trades, seen: set[str]) -> Iterator[Print]:
        prints: list[Print] = []
        for index, trade in enumerate(trades.trades):
            try:
                market_decimal(trade.price, f"trade data[{index}] price", positive=True)
                market_decimal(trade.volume, f"trade data[{index}] vol", positive=True)
            except BadNumber as exc:
                self._fail(str(exc))
            if trade.id in seen:
                continue
            seen.add(trade.id)
            prints.append(Print(t, trade.id, trade.price, trade.volume, trade.side.value.lower()))
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
        stream = gzip.GzipFile(file, "rb")
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
