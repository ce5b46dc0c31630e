"""The values a replay's market is made of: books and prints, each at a time in milliseconds, and the symbol's rules.

A recording and a generated walk both yield these, in time order; the driver never sees where they came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.models import ZERO, SymbolRules

MAX_SPAN_HOURS = 24 * 366
"""The longest market a replay runs over (a walk's ``hours``, a recording's span): a year, leap day included."""
MAX_SPAN_MS = MAX_SPAN_HOURS * 3_600_000
LATEST_MS = 221_845_392_000_000
"""9000-01-01T00:00:00Z in epoch ms: no moment of a market may be this late (the timer's dates end with year 9999)."""

Level = tuple[Decimal, Decimal]
"""One price level: (price, volume)."""


@dataclass(frozen=True, slots=True)
class Book:
    """The market's order book at ``t_ms``: ``bids`` best (highest) first, ``asks`` best (lowest) first."""

    t_ms: int
    bids: tuple[Level, ...]
    asks: tuple[Level, ...]

    @property
    def best_bid(self) -> Decimal | None:
        """The highest bid, None when no one bids."""
        return self.bids[0][0] if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        """The lowest ask, None when no one offers."""
        return self.asks[0][0] if self.asks else None

    def depth_at(self, price: Decimal, buy: bool) -> Decimal:
        """The volume resting at exactly ``price`` on the bid side (``buy``) or the ask side; zero if none."""
        for level_price, volume in self.bids if buy else self.asks:
            if level_price == price:
                return volume
        return ZERO


@dataclass(frozen=True, slots=True)
class Print:
    """One trade the market printed: ``volume`` at ``price`` (the taker's ``side``, ``buy`` or ``sell``)."""

    t_ms: int
    trade_id: str
    price: Decimal
    volume: Decimal
    side: str


Event = Book | Print


@dataclass(frozen=True, slots=True)
class Market:
    """A market to replay: its rules (None: ask the job's exchange), a name for output, and its events in time order."""

    name: str
    rules: SymbolRules | None
    events: Iterator[Event]
