"""``--market walk:seed=N,hours=H,vol=X``: a market generated with the sandbox's own walking model.

Each second the mid takes the sandbox's seeded step (``rebalancer.sandbox.market.MarketState.step``, drawn from the
generator the sandbox engine seeds with the same seed) and the book is the sandbox's synthetic depth around it; then
zero to two trades print, each at the synthetic best bid (a taker selling) or best ask (a taker buying), with a
seeded volume of one to two hundred minimum volumes. ``vol`` is the sandbox's ``volatility``: the largest one-second
move as a fraction of the mid (``0.0003``, or as a percent ``0.03%``). The walk starts at 2026-01-01 00:00:00 UTC so
that the same parameters always give the same market.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from rebalancer.errors import ConfigError
from rebalancer.replay.market import MAX_SPAN_HOURS, Book, Event, Market, Print
from rebalancer.replay.numbers import BadNumber, market_decimal
from rebalancer.sandbox.market import DEFAULT_SYMBOLS, MarketState, SymbolSpec

WALK_START_MS = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1000)
MAX_HOURS = MAX_SPAN_HOURS
DEFAULT_SEED = 7
DEFAULT_HOURS = Decimal(1)
TRADE_LOTS = 200
"""A generated trade is 1 to this many minimum volumes."""


@dataclass(frozen=True, slots=True)
class WalkSpec:
    """The walk's parameters: seed, length in hours and the one-second volatility (None: the sandbox's)."""

    seed: int = DEFAULT_SEED
    hours: Decimal = DEFAULT_HOURS
    vol: Decimal | None = None

    def __str__(self) -> str:
        vol = "" if self.vol is None else f",vol={self.vol}"
        return f"walk:seed={self.seed},hours={self.hours}{vol}"


def parse_walk(text: str) -> WalkSpec:
    """``walk`` or ``walk:seed=N,hours=H,vol=X`` (any subset, any order); ``ConfigError`` saying what is wrong."""
    if text == "walk":
        return WalkSpec()
    if not text.startswith("walk:"):
        raise ConfigError(f"--market {text!r}: expected a recording file or walk[:seed=N,hours=H,vol=X]")
    values: dict[str, str] = {}
    for part in text[len("walk:") :].split(","):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in ("seed", "hours", "vol") or not value:
            raise ConfigError(f"--market {text!r}: {part!r} is not seed=N, hours=H or vol=X")
        if key in values:
            raise ConfigError(f"--market {text!r}: {key} given twice")
        values[key] = value
    spec = WalkSpec()
    if "seed" in values:
        if not values["seed"].isdigit() or len(values["seed"]) > 18:
            raise ConfigError(f"--market {text!r}: seed must be a whole number, not {values['seed']!r}")
        spec = dataclasses.replace(spec, seed=int(values["seed"]))
    if "hours" in values:
        hours = _number(text, "hours", values["hours"])
        if hours > MAX_HOURS:
            raise ConfigError(f"--market {text!r}: hours must be at most {MAX_HOURS}")
        spec = dataclasses.replace(spec, hours=hours)
    if "vol" in values:
        raw = values["vol"]
        vol = _number(text, "vol", raw[:-1] if raw.endswith("%") else raw)
        vol = vol / 100 if raw.endswith("%") else vol
        if vol >= Decimal("0.1"):
            raise ConfigError(f"--market {text!r}: vol is a one-second move as a fraction of the mid; under 0.1")
        spec = dataclasses.replace(spec, vol=vol)
    return spec


def _number(text: str, key: str, raw: str) -> Decimal:
    try:
        return market_decimal(raw, key, positive=True)
    except BadNumber as exc:
        raise ConfigError(f"--market {text!r}: {exc}") from None


def walk_market(spec: WalkSpec, symbol: str) -> Market:
    """The generated market of ``symbol`` (one of the sandbox's symbols) for ``spec``."""
    specs = {s.symbol: s for s in DEFAULT_SYMBOLS}
    if symbol not in specs:
        raise ConfigError(f"the walk generates the sandbox's symbols ({', '.join(sorted(specs))}), not {symbol!r}")
    symbol_spec = specs[symbol]
    if spec.vol is not None:
        symbol_spec = dataclasses.replace(symbol_spec, volatility=spec.vol)
    return Market(str(spec), symbol_spec.rules, _events(spec, symbol_spec))


def _events(spec: WalkSpec, symbol_spec: SymbolSpec) -> Iterator[Event]:
    state = MarketState.start(symbol_spec)
    walk_rng = random.Random(f"walk:{spec.seed}")
    trade_rng = random.Random(f"trades:{spec.seed}")
    lot = symbol_spec.rules.lot
    min_lots = max(1, int(symbol_spec.min_volume / lot))
    seconds = int(spec.hours * 3600)
    trade_id = 0
    for second in range(seconds + 1):
        t = WALK_START_MS + second * 1000
        if second:
            state.step(walk_rng)
        bids, asks = state.synthetic_depth(spec.seed)
        yield Book(t, tuple(bids), tuple(asks))
        for _ in range(trade_rng.randint(0, 2)):
            taker_buys = trade_rng.random() < 0.5
            volume = trade_rng.randint(min_lots, min_lots * TRADE_LOTS) * lot
            trade_id += 1
            price = asks[0][0] if taker_buys else bids[0][0]
            yield Print(t, str(trade_id), price, volume, "buy" if taker_buys else "sell")
