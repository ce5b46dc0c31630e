"""Market data shared per deployment: one symbol list for every client, one ticker read per tick for every job.

The first tests drive ``DeploymentData`` with counting callables and a stepped clock; the last ones talk HTTP to the
sandbox, which counts the requests each path received.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from typing import Any

import pytest

from rebalancer.errors import ConfigError, RequestError, TransientError
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.marketdata import MISSING_SYMBOL_RETRY, SYMBOLS_TTL, DeploymentData
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.models import SymbolRules, Ticker

RULES = {"btcusdt": SymbolRules("btcusdt", "btc", "usdt", 2, 4)}
TICK = Ticker(Decimal(1), Decimal(2), Decimal("1.5"))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counting:
    """A read that counts its calls and answers ``value`` (or raises it)."""

    def __init__(self, value: Any) -> None:
        self.value, self.calls = value, 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


def test_the_symbol_list_is_read_once_per_ttl_and_a_missing_symbol_rarely() -> None:
    clock, read = Clock(), Counting(RULES)
    data = DeploymentData("https://x.example", clock=clock)
    assert data.rules("BTCUSDT", read) == RULES["btcusdt"] and data.rules("btcusdt", read) is RULES["btcusdt"]
    assert read.calls == 1
    with pytest.raises(ConfigError, match="'ethusdt' is not listed"):
        data.rules("ethusdt", read)
    assert read.calls == 1, "a symbol missing from a fresh list is not looked up again at once"
    clock.now += MISSING_SYMBOL_RETRY
    with pytest.raises(ConfigError):
        data.rules("ethusdt", read)
    assert read.calls == 2
    clock.now += SYMBOLS_TTL
    data.rules("btcusdt", read)
    assert read.calls == 3


def test_tickers_come_from_one_all_ticker_read_per_tick() -> None:
    clock, one, every = Clock(), Counting(TICK), Counting({"BTCUSDT": TICK, "ethusdt": TICK})
    data = DeploymentData("https://x.example", clock=clock)
    assert data.ticker("btcusdt", 1.0, one, every) is TICK
    assert data.ticker("ETHUSDT", 1.0, one, every) is TICK
    clock.now += 1.0
    data.ticker("btcusdt", 1.0, one, every)
    assert (every.calls, one.calls) == (1, 0)
    clock.now += 0.5
    data.ticker("btcusdt", 1.0, one, every)
    assert every.calls == 2
    data.ticker("xrpusdt", 1.0, one, every)  # not in the table: its own ticker
    assert (every.calls, one.calls) == (3, 1)
    assert data.ticker("btcusdt", 0.0, one, every) is TICK and one.calls == 2, "max_age 0 always reads its own"


def test_a_deployment_without_all_tickers_is_detected_once_and_shares_per_symbol_reads() -> None:
    clock, one, every = Clock(), Counting(TICK), Counting(RequestError("HTTP 404 without an envelope"))
    data = DeploymentData("https://x.example", clock=clock)
    for _ in range(3):
        data.ticker("btcusdt", 1.0, one, every)
    clock.now += 2
    data.ticker("btcusdt", 1.0, one, every)
    assert data.serves_all_tickers is False
    assert (every.calls, one.calls) == (1, 2)


def test_a_transient_failure_is_not_taken_for_a_missing_endpoint() -> None:
    one, every = Counting(TICK), Counting(TransientError("HTTP 502"))
    data = DeploymentData("https://x.example", clock=Clock())
    with pytest.raises(TransientError):
        data.ticker("btcusdt", 1.0, one, every)
    assert data.serves_all_tickers is None and one.calls == 0


def test_jobs_asking_at_once_wait_for_one_read() -> None:
    release, started = threading.Event(), threading.Event()
    calls = []

    def slow_all() -> dict[str, Ticker]:
        calls.append(1)
        started.set()
        release.wait(5)
        return {"btcusdt": TICK}

    data = DeploymentData("https://x.example")
    results: list[Ticker] = []
    threads = [threading.Thread(target=lambda: results.append(data.ticker("btcusdt", 5.0, Counting(TICK), slow_all)))]
    threads[0].start()
    assert started.wait(5)
    threads += [
        threading.Thread(target=lambda: results.append(data.ticker("btcusdt", 5.0, Counting(TICK), slow_all)))
        for _ in range(5)
    ]
    for thread in threads[1:]:
        thread.start()
    release.set()
    for thread in threads:
        thread.join(5)
    assert len(results) == 6 and len(calls) == 1


def _client(sandbox: Any, data: DeploymentData, max_age: float) -> OpenApiClient:
    limiter = KeyLimiter(RateLimit(10_000, 1.0), RateLimit(10_000, 1.0))
    return OpenApiClient(
        sandbox.url,
        sandbox.api_key,
        sandbox.secret_key,
        ExchangeProfile(),
        limiter=limiter,
        market=data,
        ticker_max_age=max_age,
    )


def test_clients_of_one_deployment_share_the_symbol_list_and_one_all_ticker_read(sandbox: Any) -> None:
    data = DeploymentData(sandbox.url)
    with _client(sandbox, data, 60.0) as one, _client(sandbox, data, 60.0) as two:
        one.rules("btcusdt"), two.rules("ethusdt")
        fresh = one.symbol_ticker("ethusdt")
        assert two.ticker("ethusdt") == fresh and one.ticker("btcusdt").mid is not None
    counts = sandbox.server.app.request_counts()
    assert counts["/open/api/common/symbols"] == 1
    assert counts["/open/api/get_allticker"] == 1
    assert counts["/open/api/get_ticker"] == 1  # the fresh read above, nothing more


def test_where_all_tickers_are_not_served_each_symbol_is_read_once_per_tick(sandbox: Any) -> None:
    sandbox.faults.unserved = {"/open/api/get_allticker"}
    data = DeploymentData(sandbox.url)
    with _client(sandbox, data, 60.0) as one, _client(sandbox, data, 60.0) as two:
        for client in (one, two, one):
            assert client.ticker("btcusdt").mid is not None
        two.ticker("ethusdt")
    assert data.serves_all_tickers is False
    assert sandbox.server.app.request_counts()["/open/api/get_ticker"] == 2


def test_an_all_ticker_answer_skips_rows_it_cannot_read_and_dates_rows_without_a_time() -> None:
    from rebalancer.exchange.parse import parse_all_tickers

    answer = {
        "date": 1700000000000,
        "ticker": [
            {"symbol": "BTCUSDT", "buy": "30000.1", "sell": "30000.2", "last": "30000.1"},
            {"symbol": "ethusdt", "buy": "not a price", "sell": "1", "last": "1"},
            {"buy": "1", "sell": "2", "last": "1"},
            "junk",
        ],
    }
    table = parse_all_tickers(answer)
    assert list(table) == ["btcusdt"]
    assert table["btcusdt"].bid == Decimal("30000.1") and table["btcusdt"].time == 1700000000000
    assert list(parse_all_tickers([{"symbol": "x", "buy": "1", "sell": "2", "last": "1", "time": 5}])) == ["x"]


class _CountedRows(dict[str, Any]):
    """Rows that count how often each is read."""

    def __init__(self, rows: dict[str, Any]) -> None:
        super().__init__(rows)
        self.reads: list[str] = []

    def __getitem__(self, symbol: str) -> Any:
        self.reads.append(symbol)
        return super().__getitem__(symbol)


def test_a_ticker_table_reads_a_row_only_when_its_symbol_is_asked_for_and_only_once() -> None:
    from rebalancer.exchange.parse import TickerTable

    good = {"buy": "1.1", "sell": "1.2", "last": "1.1", "time": 5}
    rows = _CountedRows({"a": good, "b": good, "bad": {**good, "buy": "NaN"}})
    table = TickerTable(rows, "get_allticker")
    assert table["a"].bid == Decimal("1.1") and table["a"].bid == Decimal("1.1")
    assert "bad" not in table and "bad" not in table and table.get("missing") is None
    assert rows.reads == ["a", "bad", "missing"], "b never read; a and the bad row read once each"
    assert sorted(table) == ["a", "b"] and len(table) == 2


def test_a_symbol_whose_all_ticker_row_is_unreadable_reads_its_own_and_the_others_share_the_table() -> None:
    from rebalancer.exchange.parse import parse_all_tickers

    answer = {
        "ticker": [
            {"symbol": "BTCUSDT", "buy": "30000.1", "sell": "30000.2", "last": "30000.1", "time": 1},
            {"symbol": "ETHUSDT", "buy": "-1e999999", "sell": "1", "last": "1", "time": 1},
        ]
    }
    clock, one = Clock(), Counting(TICK)
    every = Counting(parse_all_tickers(answer))
    data = DeploymentData("https://x.example", clock=clock)
    assert data.ticker("btcusdt", 1.0, one, every).bid == Decimal("30000.1")
    assert data.ticker("ethusdt", 1.0, one, every) is TICK, "its own get_ticker (after the table is read again)"
    assert data.ticker("btcusdt", 1.0, one, every).bid == Decimal("30000.1")
    assert data.ticker("ethusdt", 1.0, one, every) is TICK
    assert (every.calls, one.calls) == (2, 1)
    clock.now += 1.5
    data.ticker("btcusdt", 1.0, one, every)
    assert every.calls == 3, "the table ages like any ticker"
