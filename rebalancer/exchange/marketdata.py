"""Market data shared by every client of one deployment: the symbol list and the tickers.

A daemon running many jobs on one deployment would otherwise fetch the symbol list (hundreds of KiB) once per client
and read one ticker per job per pass. Here, per base URL:

- the symbol list is fetched once and kept ``SYMBOLS_TTL`` seconds (a symbol it lacks is looked up again, at most
  every ``MISSING_SYMBOL_RETRY`` seconds, so a newly listed one is found);
- which of two paths of one endpoint the deployment serves (``first_served``: the v2 open-order list, or the old
  one of deployments that document no v2 paths) is found out once, the first time it is read;
- a ticker younger than the asker's ``max_age`` is shared. One ``get_allticker`` answers for every symbol of the
  deployment; where the deployment does not serve it (it answers with an error, a 404 or something unreadable, the
  first time it is asked) that is remembered and each symbol's ``get_ticker`` answer is shared instead. Callers
  asking for the same data at the same time wait for one read rather than each sending their own.

``max_age=0`` (the one-shot commands) always reads the symbol's own ticker: one small request, never stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from rebalancer.defaults import MISSING_SYMBOL_RETRY_SECONDS, SYMBOLS_TTL_SECONDS
from rebalancer.errors import (
    AuthError,
    ClockError,
    ConfigError,
    ExchangeError,
    OutcomeUnknown,
    TransientError,
    endpoint_label,
)
from rebalancer.exchange.parse import TickerTable
from rebalancer.models import SymbolRules, Ticker

log = logging.getLogger(__name__)

SYMBOLS_TTL = SYMBOLS_TTL_SECONDS
MISSING_SYMBOL_RETRY = MISSING_SYMBOL_RETRY_SECONDS

Clock = Callable[[], float]
T = TypeVar("T")
_NOT_SERVED = (TransientError, AuthError, ClockError, OutcomeUnknown)
"""Failures that say nothing about whether ``get_allticker`` is served: they are raised, not remembered."""


class UnlistedSymbol(ConfigError):
    """The deployment does not list the symbol; ``listed`` is every symbol it does (for suggestions)."""

    def __init__(self, symbol: str, base_url: str, listed: tuple[str, ...]) -> None:
        super().__init__(f"symbol {symbol!r} is not listed by {base_url}")
        self.listed = listed


class DeploymentData:
    """The shared symbol list and tickers of one deployment (thread-safe)."""

    def __init__(self, base_url: str, *, clock: Clock = time.monotonic) -> None:
        self.base_url = base_url
        self._clock = clock
        self._lock = threading.Lock()
        self._symbols: Mapping[str, SymbolRules] = {}
        self._symbols_at = float("-inf")
        self._symbols_read = threading.Lock()
        self._tickers: dict[str, tuple[float, Ticker]] = {}  # symbols read one by one
        self._table: tuple[float, Mapping[str, Ticker]] | None = None  # the latest read of every symbol
        self._ticker_reads: dict[str, threading.Lock] = {}
        self.serves_all_tickers: bool | None = None
        """None until tried; then whether ``get_allticker`` answered."""
        self._served: dict[tuple[str, ...], str] = {}

    def rules(self, symbol: str, read: Callable[[], Mapping[str, SymbolRules]]) -> SymbolRules:
        """Rules of ``symbol`` from the shared list, ``read`` (``common/symbols``) when stale or lacking it.

        An unlisted symbol is a ``ConfigError`` (the job names it).
        """
        key = symbol.lower()
        with self._lock:
            seen_at = self._symbols_at
            found = self._symbols.get(key)
        age = self._clock() - seen_at
        if found is not None and age < SYMBOLS_TTL:
            return found
        if found is None and age < MISSING_SYMBOL_RETRY:
            raise self._unlisted(symbol)
        with self._symbols_read:
            with self._lock:
                refreshed = self._symbols_at != seen_at  # by another caller while this one waited
            if not refreshed:
                self.store_symbols(read())
        with self._lock:
            found = self._symbols.get(key)
        if found is None:
            raise self._unlisted(symbol)
        return found

    def _unlisted(self, symbol: str) -> UnlistedSymbol:
        with self._lock:
            listed = tuple(sorted(self._symbols))
        return UnlistedSymbol(symbol, self.base_url, listed)

    def first_served(self, paths: tuple[str, ...], read: Callable[[str], T]) -> tuple[str, T]:
        """The path of ``paths`` this deployment serves and ``read(path)``; which one is learnt once.

        Until known, the first path is read; if it fails in a way that may mean "not served" (not a transient,
        authentication, clock or lost-answer failure, as for ``get_allticker``), the next is read, and the first
        that answers is remembered. If none answers, the first path's error is raised and nothing is learnt.
        """
        known = self._served.get(paths)
        if known is not None:
            return known, read(known)
        first_error: ExchangeError | None = None
        for path in paths:
            try:
                answer = read(path)
            except _NOT_SERVED:
                if first_error is None:
                    raise
                break
            except ExchangeError as error:
                first_error = first_error or error
                continue
            if path != paths[0]:
                log.info(
                    "%s does not serve %s (%s); using %s",
                    self.base_url,
                    endpoint_label(paths[0]),
                    first_error,
                    endpoint_label(path),
                )
            self._served[paths] = path
            return path, answer
        assert first_error is not None
        raise first_error

    def store_symbols(self, rules: Mapping[str, SymbolRules]) -> None:
        """Keep a freshly read symbol list."""
        with self._lock:
            self._symbols, self._symbols_at = dict(rules), self._clock()

    def ticker(
        self,
        symbol: str,
        max_age: float,
        read_one: Callable[[str], Ticker],
        read_all: Callable[[], Mapping[str, Ticker]],
    ) -> Ticker:
        """The ticker of ``symbol``, read at most ``max_age`` seconds ago (by whichever client read it)."""
        if max_age <= 0:
            return read_one(symbol)
        key = symbol.lower()
        cached = self._cached(key, max_age)
        if cached is not None:
            return cached
        # One read at a time per key: the all-ticker read for every symbol, else each symbol's own.
        with self._read_lock("*" if self.serves_all_tickers is not False else key):
            cached = self._cached(key, max_age)
            if cached is not None:
                return cached
            started = self._clock()
            if self.serves_all_tickers is not False:
                table = self._read_all(read_all)
                if table is not None:
                    with self._lock:
                        self._table = (started, table)
                    found = table.get(key)
                    if found is not None:
                        return found
            ticker = read_one(symbol)
            with self._lock:
                self._tickers[key] = (started, ticker)
            return ticker

    def _read_all(self, read_all: Callable[[], Mapping[str, Ticker]]) -> Mapping[str, Ticker] | None:
        """Every ticker by lower-case symbol, or None when the deployment does not serve them (remembered)."""
        try:
            table = read_all()
        except _NOT_SERVED:
            raise
        except ExchangeError as exc:
            self.serves_all_tickers = False
            log.info(
                "%s does not serve %s (%s); reading each symbol's ticker",
                self.base_url,
                endpoint_label("get_allticker"),
                exc,
            )
            return None
        self.serves_all_tickers = True
        if isinstance(table, TickerTable):
            return table  # its symbols are lower-case, and each row is read only when asked for
        return {name.lower(): t for name, t in table.items()}

    def _cached(self, key: str, max_age: float) -> Ticker | None:
        with self._lock:
            hit, table = self._tickers.get(key), self._table
        now = self._clock()
        if hit is not None and now - hit[0] <= max_age:
            return hit[1]
        if table is not None and now - table[0] <= max_age:
            return table[1].get(key)
        return None

    def _read_lock(self, key: str) -> threading.Lock:
        with self._lock:
            return self._ticker_reads.setdefault(key, threading.Lock())


_registry: dict[str, DeploymentData] = {}
_registry_lock = threading.Lock()


def shared_for(base_url: str) -> DeploymentData:
    """The market data shared by every client of ``base_url`` in this process."""
    key = base_url.rstrip("/")
    with _registry_lock:
        found = _registry.get(key)
        if found is None:
            found = _registry[key] = DeploymentData(key)
        return found


def forget(base_url: str | None = None) -> None:
    """Drop the shared data of ``base_url`` (of every deployment when None): the next read fetches afresh."""
    with _registry_lock:
        if base_url is None:
            _registry.clear()
        else:
            _registry.pop(base_url.rstrip("/"), None)
