"""The replay's books of account: fills, fees, inventory and PnL, all exact decimals.

PnL is the trading result of the job's fills, in quote units: ``total`` = the cash the fills moved (sells received
less buys paid) + the net base they bought × the mark − fees. The mark is the last mid of the market's book.
``realised`` pairs sells with earlier buys (and buys with earlier sells) first in, first out; ``unrealised`` is the
open remainder marked at the mark; so ``total`` = realised + unrealised − fees, and every figure is a sum of
products: exact, with no division. ``max_drawdown`` is the largest fall of ``total`` from its running peak, taken at
every fill and every new mid. Inventory is the account's whole base balance (available and locked).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from rebalancer.models import ZERO, Side

Point = tuple[int, Decimal, Decimal, Decimal]
"""One sample of the curves: (time ms, mark, base inventory, PnL total)."""


@dataclass(slots=True)
class Lot:
    """An open position lot: ``volume`` bought (long) or sold (short) at ``price``."""

    price: Decimal
    volume: Decimal


@dataclass(slots=True)
class FillRecord:
    """One fill as the page draws it."""

    t_ms: int
    side: Side
    price: Decimal
    volume: Decimal


@dataclass(slots=True)
class Ledger:
    """Running figures of one replay. With ``keep_detail`` it also keeps every fill and the curves, a point at most
    every ``sample_ms``."""

    base_start: Decimal
    sample_ms: int = 1000
    base: Decimal = ZERO
    base_min: Decimal = ZERO
    base_max: Decimal = ZERO
    cash: Decimal = ZERO
    position: Decimal = ZERO
    fees: Decimal = ZERO
    realised: Decimal = ZERO
    mark: Decimal | None = None
    peak: Decimal = ZERO
    max_drawdown: Decimal = ZERO
    buy_volume: Decimal = ZERO
    sell_volume: Decimal = ZERO
    lots: deque[Lot] = field(default_factory=deque)
    long: bool = True
    curve: list[Point] = field(default_factory=list)
    fills: list[FillRecord] = field(default_factory=list)
    keep_detail: bool = False
    _last_sample: int = -(2**62)

    def __post_init__(self) -> None:
        self.base = self.base_min = self.base_max = self.base_start

    @property
    def total(self) -> Decimal:
        """Cash moved + net base × mark − fees (no mark yet: the cash alone)."""
        marked = self.position * self.mark if self.mark is not None else ZERO
        return self.cash + marked - self.fees

    @property
    def unrealised(self) -> Decimal:
        """The open lots marked at the mark (zero without one)."""
        return self.total + self.fees - self.realised if self.mark is not None else ZERO

    def fill(self, t_ms: int, side: Side, price: Decimal, volume: Decimal, fee: Decimal) -> None:
        """Book one fill of the job's order at its own price, with its fee in quote units."""
        signed = volume if side is Side.BUY else -volume
        self.cash -= signed * price
        self.position += signed
        self.fees += fee
        self.base += signed
        self.base_min, self.base_max = min(self.base_min, self.base), max(self.base_max, self.base)
        if side is Side.BUY:
            self.buy_volume += volume
        else:
            self.sell_volume += volume
        self._match(side is Side.BUY, price, volume)
        if self.keep_detail:
            self.fills.append(FillRecord(t_ms, side, price, volume))
        self._watch(t_ms)

    def mid(self, t_ms: int, mid: Decimal) -> None:
        """A new mid of the market: the mark from now on."""
        if mid != self.mark:
            self.mark = mid
            self._watch(t_ms)

    def _match(self, buying: bool, price: Decimal, volume: Decimal) -> None:
        """First in, first out: a fill against open lots of the other direction realises; the rest opens a lot."""
        left = volume
        while left > 0 and self.lots and self.long != buying:
            lot = self.lots[0]
            taken = min(lot.volume, left)
            gain = (price - lot.price) * taken
            self.realised += gain if self.long else -gain
            lot.volume -= taken
            left -= taken
            if lot.volume == 0:
                self.lots.popleft()
        if left > 0:
            if not self.lots:
                self.long = buying
            self.lots.append(Lot(price, left))

    def _watch(self, t_ms: int) -> None:
        total = self.total
        if total > self.peak:
            self.peak = total
        self.max_drawdown = max(self.max_drawdown, self.peak - total)
        if self.keep_detail and t_ms - self._last_sample >= self.sample_ms and self.mark is not None:
            self._last_sample = t_ms
            self.curve.append((t_ms, self.mark, self.base, total))

    def finish(self, t_ms: int) -> None:
        """The curves' last point, at the end of the replay."""
        if self.keep_detail and self.mark is not None and (not self.curve or self.curve[-1][0] < t_ms):
            self.curve.append((t_ms, self.mark, self.base, self.total))
