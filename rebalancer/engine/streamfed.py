"""A job's exchange whose ticker comes from the market stream while the stream is fresh.

A pass of a job with ``exchange.stream`` reads its bid and ask from the streamed book and its last price from the
streamed trades (``Ticker.source`` is ``stream``), so that a pass woken by the stream sends no ticker request; it
reads the open orders, the balances and everything else over REST as always (this API family has no private
stream). When the stream is down, its book silent past the bound, or it lacks a price the job's reference needs,
the ticker is read over REST as before (``source`` ``rest``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rebalancer.exchange import Exchange
from rebalancer.job import Job, ReferenceKind
from rebalancer.models import Balances, BatchAnswer, FundingNeed, Order, SymbolRules, Target, Ticker

FreshTicker = Callable[[], "Ticker | None"]
"""The job's symbol as streamed now, or None when the stream is not fresh."""
Opener = Callable[[Job], contextlib.AbstractContextManager[Exchange]]


def stream_fed(opener: Opener, fresh: Callable[[str], Ticker | None]) -> Opener:
    """``opener`` with the exchange of each job that has a stream wrapped in ``StreamFed``, its ticker asked of
    ``fresh(job name)`` first."""

    @contextlib.contextmanager
    def open_fed(job: Job) -> Iterator[Exchange]:
        with opener(job) as exchange:
            yield exchange if job.exchange.stream is None else StreamFed(exchange, job, lambda: fresh(job.name))

    return open_fed


class StreamFed:
    """``exchange`` with ``ticker`` for the job's symbol taken from ``fresh`` when it answers (see the module doc)."""

    def __init__(self, exchange: Exchange, job: Job, fresh: FreshTicker) -> None:
        self.exchange = exchange
        self._symbol = job.symbol
        self._needs_last = job.reference.kind is ReferenceKind.LAST
        self._fresh = fresh

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exchange, name)  # what a client offers beside the protocol (base_url, ...)

    def ticker(self, symbol: str) -> Ticker:
        """The streamed ticker of the job's symbol when fresh and complete enough for the job, else a REST read."""
        if symbol == self._symbol:
            streamed = self._fresh()
            if streamed is not None and not (self._needs_last and streamed.last is None):
                return streamed
        return self.exchange.ticker(symbol)

    def rules(self, symbol: str) -> SymbolRules:
        """The exchange's ``rules``."""
        return self.exchange.rules(symbol)

    def balances(self, need: FundingNeed | None = None) -> Balances:
        """The exchange's ``balances``."""
        return self.exchange.balances(need)

    def forget_balances(self) -> None:
        """The exchange's ``forget_balances``."""
        self.exchange.forget_balances()

    def open_orders(self, symbol: str) -> tuple[Order, ...]:
        """The exchange's ``open_orders``: always over REST."""
        return self.exchange.open_orders(symbol)

    def order_info(self, symbol: str, order_id: str) -> Order:
        """The exchange's ``order_info``."""
        return self.exchange.order_info(symbol, order_id)

    def replace(self, rules: SymbolRules, cancel_ids: Sequence[str], place: Sequence[Target]) -> BatchAnswer:
        """The exchange's ``replace``."""
        return self.exchange.replace(rules, cancel_ids, place)

    def cancel_all(self, symbol: str) -> None:
        """The exchange's ``cancel_all``."""
        self.exchange.cancel_all(symbol)

    def close(self) -> None:
        """The exchange's ``close``."""
        self.exchange.close()
