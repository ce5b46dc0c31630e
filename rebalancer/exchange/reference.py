"""The reference price from another venue: an /open/api deployment's public ticker, or any JSON endpoint.

One ``ReferenceBoard`` per process is shared by every job: a source is read at most once per ``ttl`` (a daemon
tick), whichever jobs ask, and concurrent askers wait for the one read in flight. A read that fails falls back
to the last good quote while it is younger than the job's ``max_age``; past that the job's placements pause
(``rebalancer.core.guards``), with the reason this module gives. Prices are exact Decimals, multiplied by the
source's ``factor``; a JSON endpoint's prices are found with JSON pointers (RFC 6901).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests

from rebalancer.defaults import MAX_ANSWER_BYTES, REFERENCE_TIMEOUT_SECONDS, REFERENCE_TTL_SECONDS
from rebalancer.errors import ExchangeError
from rebalancer.exchange.deadline import DeadlineAdapter, deadline
from rebalancer.exchange.parse import decode_json, parse_ticker
from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.transport import Transport
from rebalancer.job import ReferenceSource
from rebalancer.models import Ticker, format_decimal
from rebalancer.numbers import NumberOutOfBounds, bounded_decimal

_CHUNK = 64 * 1024


class ReferenceUnavailable(Exception):
    """The other venue gave no usable quote; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Quote:
    """A quote of the other venue (factor not applied) and when it was true, in ms since the epoch."""

    ticker: Ticker
    at_ms: int


@dataclass(slots=True)
class _Entry:
    lock: threading.Lock = field(default_factory=threading.Lock)
    read_at: float = -1e18  # monotonic time of the last read attempt
    good: Quote | None = None
    error: str | None = None


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901); ``KeyError`` naming the pointer when nothing is there."""
    if pointer == "":
        return document
    node = document
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and _is_index(part) and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(pointer)
    return node


def _is_index(part: str) -> bool:
    """An array index as RFC 6901 writes it: ASCII digits without a leading zero (``str.isdigit`` also takes
    ``²`` and ``٣``), short enough to be an index."""
    return part.isascii() and part.isdigit() and len(part) <= 9 and (part == "0" or part[0] != "0")


def _price(value: Any, pointer: str) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ReferenceUnavailable(f"the value at {pointer} is not a price")
    try:
        number = bounded_decimal(value)
    except NumberOutOfBounds as error:
        raise ReferenceUnavailable(f"the value at {pointer} is out of bounds: {error}") from None
    except ArithmeticError:
        raise ReferenceUnavailable(f"the value at {pointer} is not a number: {str(value)[:40]!r}") from None
    if not number.is_finite() or number < 0:
        raise ReferenceUnavailable(f"the value at {pointer} is not a price: {str(value)[:40]!r}")
    return number or None


def _host(url: str) -> str:
    """Where a source is, as messages show it: host and port only (never credentials, path or query)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "the reference source"
    if not host:
        return "the reference source"
    host = f"[{host}]" if ":" in host else host
    return host if port is None else f"{host}:{port}"


class ReferenceBoard:
    """Quotes of other venues, read at most once per ``ttl`` seconds per source and shared by every job."""

    def __init__(
        self,
        *,
        ttl: float = REFERENCE_TTL_SECONDS,
        timeout: float = REFERENCE_TIMEOUT_SECONDS,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self._ttl = ttl
        self._timeout = timeout
        self._wall_ms = wall_ms
        self._entries: dict[tuple[object, ...], _Entry] = {}
        self._lock = threading.Lock()

    def quote(self, source: ReferenceSource, symbol: str, *, sandbox_url: str | None = None) -> Ticker:
        """The other venue's quote for a job, ``factor`` applied; ``ReferenceUnavailable`` says why there is none."""
        url = sandbox_url if source.url == "sandbox" else source.url
        if url is None:
            raise ReferenceUnavailable("reference source 'sandbox' needs a job on the embedded sandbox")
        wanted = source.symbol or symbol
        key = (url, wanted, source.bid_pointer, source.ask_pointer, source.last_pointer)
        with self._lock:
            entry = self._entries.setdefault(key, _Entry())
        with entry.lock:
            if time.monotonic() - entry.read_at >= self._ttl:
                entry.read_at = time.monotonic()
                try:
                    entry.good, entry.error = self._read(source, url, wanted), None
                except ReferenceUnavailable as problem:
                    entry.error = str(problem)
            good, error = entry.good, entry.error
        where = f"{_host(url)}" + ("" if source.is_json else f" {wanted}")
        if good is None:
            raise ReferenceUnavailable(f"the reference from {where} is unavailable: {error}")
        age_ms = self._wall_ms() - good.at_ms
        if age_ms > source.max_age_seconds * 1000:
            age = format_decimal((Decimal(age_ms) / 1000).quantize(Decimal("0.1")))
            because = f" ({error})" if error else ""
            limit = format_decimal(source.max_age_seconds)
            message = f"the reference from {where} is {age}s old, older than max_age {limit}s"
            raise ReferenceUnavailable(message + because)
        return _scaled(good.ticker, source.factor)

    def _read(self, source: ReferenceSource, url: str, symbol: str) -> Quote:
        fetched = self._wall_ms()
        if source.is_json:
            return Quote(self._read_json(source, url), fetched)
        profile = ExchangeProfile(read_timeout=self._timeout, read_retries=0)
        transport = Transport(url, "", "", profile, insecure=source.insecure)
        try:
            ticker = parse_ticker(transport.read("get_ticker", {"symbol": symbol}, signed=False))
        except ExchangeError as error:
            raise ReferenceUnavailable(str(error).splitlines()[0]) from None
        finally:
            transport.close()
        # A stamp ahead of the receiving clock proves nothing (it would never age): the quote is as old as its
        # receipt at least.
        at = min(ticker.time, fetched) if ticker.time is not None and ticker.time > 0 else fetched
        return Quote(ticker, at)

    def _read_json(self, source: ReferenceSource, url: str) -> Ticker:
        with requests.Session() as session:
            for scheme in ("http://", "https://"):
                session.mount(scheme, DeadlineAdapter())
            try:
                with deadline(self._timeout):
                    response = session.get(url, timeout=self._timeout, stream=True, allow_redirects=False)
                    if response.status_code != 200:
                        raise ReferenceUnavailable(f"HTTP {response.status_code}")
                    body = bytearray()
                    for chunk in response.iter_content(_CHUNK):
                        body += chunk
                        if len(body) > MAX_ANSWER_BYTES:
                            raise ReferenceUnavailable("the answer is too large")
            except requests.RequestException as error:
                raise ReferenceUnavailable(f"cannot read it: {type(error).__name__}") from None
        try:
            document = decode_json(body.decode("utf-8", errors="replace"), _host(url))
        except ExchangeError as error:
            raise ReferenceUnavailable(str(error).splitlines()[0]) from None
        prices: dict[str, Decimal | None] = {}
        for name, pointer in (("bid", source.bid_pointer), ("ask", source.ask_pointer), ("last", source.last_pointer)):
            if pointer is None:
                prices[name] = None
                continue
            try:
                prices[name] = _price(resolve_pointer(document, pointer), pointer)
            except KeyError:
                raise ReferenceUnavailable(f"nothing at {pointer} in the answer") from None
        return Ticker(prices["bid"], prices["ask"], prices["last"])


def _scaled(ticker: Ticker, factor: Decimal) -> Ticker:
    if factor == 1:
        return ticker

    def scale(value: Decimal | None) -> Decimal | None:
        return None if value is None else value * factor

    return Ticker(scale(ticker.bid), scale(ticker.ask), scale(ticker.last), ticker.time)


SHARED = ReferenceBoard()
"""The process's board: every pass of every job reads other venues through it."""
