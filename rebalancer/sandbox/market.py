"""The simulated market of one symbol: its rules, a seeded random-walk mid price, the spread and synthetic
depth.

Everything here is Decimal and deterministic: the walk is driven by a ``random.Random`` the engine owns, the
mid is always a whole number of ticks, and the synthetic depth of a given tick is derived from (seed, symbol,
tick) alone, so reading the book never consumes randomness and a seed plus a sequence of steps always yields
the same market.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rebalancer.models import SymbolRules, format_decimal, quantize

DEPTH_LEVELS = 20
"""Synthetic price levels on each side of the book."""


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    """How one simulated symbol trades and moves.

    ``spread`` is the synthetic best ask minus best bid as a fraction of the mid; ``volatility`` is the
    largest move of one one-second tick as a fraction of the mid (moves are uniform in whole ticks within that
    range). ``drift`` is added to every tick's move as a fraction of the mid (0: a driftless walk; the churn
    benchmark's trending regime sets it).
    """

    symbol: str
    base: str
    quote: str
    price_precision: int
    amount_precision: int
    min_volume: Decimal
    start_price: Decimal
    spread: Decimal = Decimal("0.0002")
    volatility: Decimal = Decimal("0.0003")
    drift: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.start_price <= 0 or self.min_volume <= 0:
            raise ValueError(f"{self.symbol}: start price and minimum volume must be positive")
        if self.spread < 0 or self.volatility < 0:
            raise ValueError(f"{self.symbol}: spread and volatility must not be negative")

    @property
    def rules(self) -> SymbolRules:
        """The trading rules clients see through common/symbols (coins upper-case, as the docs show)."""
        return SymbolRules(
            symbol=self.symbol,
            base=self.base.upper(),
            quote=self.quote.upper(),
            price_precision=self.price_precision,
            amount_precision=self.amount_precision,
            min_volume=self.min_volume,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (Decimals as strings); ``drift`` only when set, so driftless worlds save as before."""
        d = {
            "symbol": self.symbol,
            "base": self.base,
            "quote": self.quote,
            "price_precision": self.price_precision,
            "amount_precision": self.amount_precision,
            "min_volume": str(self.min_volume),
            "start_price": str(self.start_price),
            "spread": str(self.spread),
            "volatility": str(self.volatility),
        }
        if self.drift:
            d["drift"] = str(self.drift)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SymbolSpec:
        """Inverse of ``to_dict``."""
        return cls(
            symbol=str(d["symbol"]),
            base=str(d["base"]).lower(),
            quote=str(d["quote"]).lower(),
            price_precision=int(d["price_precision"]),
            amount_precision=int(d["amount_precision"]),
            min_volume=Decimal(str(d["min_volume"])),
            start_price=Decimal(str(d["start_price"])),
            spread=Decimal(str(d.get("spread", "0.0002"))),
            volatility=Decimal(str(d.get("volatility", "0.0003"))),
            drift=Decimal(str(d.get("drift", "0"))),
        )


DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    SymbolSpec("btcusdt", "btc", "usdt", 2, 4, Decimal("0.0001"), Decimal("30000")),
    SymbolSpec("ethusdt", "eth", "usdt", 2, 4, Decimal("0.001"), Decimal("2000")),
)


@dataclass(slots=True)
class MarketState:
    """The moving part of one symbol's market: mid price and the day's statistics, all rounded to the tick."""

    spec: SymbolSpec
    mid: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal = Decimal(0)
    last: Decimal | None = None
    tick_count: int = field(default=0)

    @classmethod
    def start(cls, spec: SymbolSpec) -> MarketState:
        """A market standing at the symbol's start price."""
        price = quantize(spec.start_price, spec.price_precision, up=False)
        return cls(spec=spec, mid=price, open=price, high=price, low=price)

    @property
    def tick(self) -> Decimal:
        """The price increment."""
        return Decimal(1).scaleb(-self.spec.price_precision)

    def step(self, rng: random.Random) -> None:
        """Move the mid a uniform whole number of ticks within the volatility band, plus the drift (rounded
        down to the tick with the rest), never below one tick."""
        reach = max(1, int(self.mid * self.spec.volatility / self.tick))
        moved = self.mid + rng.randint(-reach, reach) * self.tick + self.mid * self.spec.drift
        self.set_mid(max(moved, self.tick))
        self.tick_count += 1

    def set_mid(self, price: Decimal) -> None:
        """Put the mid at ``price`` (rounded down to the tick) and update the day's high and low."""
        self.mid = max(quantize(price, self.spec.price_precision, up=False), self.tick)
        self.high = max(self.high, self.mid)
        self.low = min(self.low, self.mid)

    def synthetic_bid(self) -> Decimal:
        """The crowd's best bid: half a spread below the mid, rounded down, at least one tick below."""
        half = self.mid * self.spec.spread / 2
        bid = quantize(self.mid - half, self.spec.price_precision, up=False)
        return max(min(bid, self.mid - self.tick), self.tick)

    def synthetic_ask(self) -> Decimal:
        """The crowd's best ask: half a spread above the mid, rounded up, at least one tick above."""
        half = self.mid * self.spec.spread / 2
        ask = quantize(self.mid + half, self.spec.price_precision, up=True)
        return max(ask, self.mid + self.tick)

    def synthetic_depth(self, seed: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The crowd's (bids, asks), best first, as (price, volume) pairs; identical within one tick."""
        rng = random.Random(f"{seed}:{self.spec.symbol}:{self.tick_count}:{self.mid}")
        lot = Decimal(1).scaleb(-self.spec.amount_precision)
        min_lots = max(1, int(self.spec.min_volume / lot))
        gap = max(self.tick, quantize(self.mid * self.spec.spread / 4, self.spec.price_precision, up=True))
        bids: list[tuple[Decimal, Decimal]] = []
        asks: list[tuple[Decimal, Decimal]] = []
        bid, ask = self.synthetic_bid(), self.synthetic_ask()
        for level in range(DEPTH_LEVELS):
            price = bid - gap * level
            if price > 0:
                bids.append((price, rng.randint(min_lots, min_lots * 500) * lot))
            asks.append((ask + gap * level, rng.randint(min_lots, min_lots * 500) * lot))
        return bids, asks

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form of the moving state (the spec is stored beside it)."""
        return {
            "mid": str(self.mid),
            "open": str(self.open),
            "high": str(self.high),
            "low": str(self.low),
            "volume": str(self.volume),
            "last": None if self.last is None else str(self.last),
            "tick_count": self.tick_count,
        }

    @classmethod
    def from_dict(cls, spec: SymbolSpec, d: dict[str, Any]) -> MarketState:
        """Inverse of ``to_dict``."""
        return cls(
            spec=spec,
            mid=Decimal(d["mid"]),
            open=Decimal(d["open"]),
            high=Decimal(d["high"]),
            low=Decimal(d["low"]),
            volume=Decimal(d["volume"]),
            last=None if d.get("last") is None else Decimal(d["last"]),
            tick_count=int(d["tick_count"]),
        )


def fill_share(rng: random.Random, remaining: Decimal, amount_precision: int) -> Decimal:
    """How much of a crossed order fills on one tick: a seeded quarter, half, three quarters or all of it.

    The share is rounded down to the lot; a share that rounds to nothing fills the whole remainder, so a
    crossed order always makes progress.
    """
    quarters = rng.randint(1, 4)
    part = quantize(remaining * quarters / 4, amount_precision, up=False)
    return remaining if part <= 0 else part


def fmt_amount(value: Decimal) -> str:
    """An amount as the API shows it: at least eight decimal places, never an exponent, never rounded."""
    exponent = value.as_tuple().exponent
    places = max(8, -exponent if isinstance(exponent, int) else 0)
    return format_decimal(value, places)
