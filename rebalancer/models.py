"""Frozen market and order values shared by every layer.

Every price, volume and balance is a ``Decimal``; values check themselves at construction so that an invalid one
never travels further than the parser that made it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

ZERO = Decimal(0)


class Side(enum.StrEnum):
    """Order side, spelled as the exchange spells it."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def sign(self) -> int:
        """+1 for buys, -1 for sells: the direction in which a price is *less* aggressive is ``-sign``."""
        return 1 if self is Side.BUY else -1


class OrderStatus(enum.IntEnum):
    """Order status codes of the /open/api template."""

    INITIAL = 0
    NEW = 1
    FILLED = 2
    PARTIALLY_FILLED = 3
    CANCELLED = 4
    CANCEL_PENDING = 5
    ABNORMAL = 6

    @property
    def is_open(self) -> bool:
        """True for the statuses that still rest on (or are about to reach) the book."""
        return self in (OrderStatus.INITIAL, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED)


def format_decimal(value: Decimal, places: int | None = None) -> str:
    """Render a Decimal without exponent, optionally padded to exactly ``places`` decimal places.

    Formatting never rounds: a value with more places than asked is a bug upstream (rounding belongs to the
    ladder, which knows which way is safe), so it raises ``ValueError`` instead of silently moving a price.
    """
    if places is not None:
        padded = value.quantize(Decimal(1).scaleb(-places))
        if padded != value:
            raise ValueError(f"{value} has more than {places} decimal places")
        value = padded
    text = format(value, "f")
    return "0" if text == "-0" else text


def quantize(value: Decimal, places: int, *, up: bool) -> Decimal:
    """Round ``value`` to ``places`` decimal places, toward +infinity when ``up`` else toward -infinity."""
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_CEILING if up else ROUND_FLOOR)


@dataclass(frozen=True, slots=True)
class Order:
    """An order as the exchange reports it. ``id`` is kept as the exchange's decimal text."""

    id: str
    side: Side
    price: Decimal
    volume: Decimal
    deal_volume: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW
    created_at: int | None = None

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("order id is empty")
        if self.price < 0 or self.volume < 0 or self.deal_volume < 0:
            raise ValueError(f"order {self.id}: negative price or volume")

    @property
    def remaining(self) -> Decimal:
        """Volume still resting on the book."""
        return max(self.volume - self.deal_volume, ZERO)

    @property
    def is_open(self) -> bool:
        """Whether the order still rests on the book (status 0, 1 or 3)."""
        return self.status.is_open


@dataclass(frozen=True, slots=True)
class Target:
    """One order the job wants standing: ``level`` names where it comes from, e.g. ``buy[2]`` or ``orders[0]``."""

    level: str
    side: Side
    price: Decimal
    volume: Decimal

    def __post_init__(self) -> None:
        if self.price <= 0 or self.volume <= 0:
            raise ValueError(f"target {self.level}: price and volume must be positive")


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Trading rules of one symbol: coins, decimal places and the minimum volume (if the exchange says one)."""

    symbol: str
    base: str
    quote: str
    price_precision: int
    amount_precision: int
    min_volume: Decimal | None = None

    def __post_init__(self) -> None:
        if self.price_precision < 0 or self.amount_precision < 0:
            raise ValueError(f"{self.symbol}: negative precision")

    @property
    def tick(self) -> Decimal:
        """The smallest price increment."""
        return Decimal(1).scaleb(-self.price_precision)

    @property
    def lot(self) -> Decimal:
        """The smallest volume increment."""
        return Decimal(1).scaleb(-self.amount_precision)

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """Round a price to the tick so that it never becomes more aggressive: buys down, sells up."""
        return quantize(price, self.price_precision, up=side is Side.SELL)

    def round_volume(self, volume: Decimal) -> Decimal:
        """Round a volume down to the lot."""
        return quantize(volume, self.amount_precision, up=False)

    def format_price(self, price: Decimal) -> str:
        """The price as the exchange wants it in a request: fixed places, no exponent."""
        return format_decimal(price, self.price_precision)

    def format_volume(self, volume: Decimal) -> str:
        """The volume as the exchange wants it in a request: fixed places, no exponent."""
        return format_decimal(volume, self.amount_precision)


class PriceSource(enum.StrEnum):
    """Where a pass's market prices came from: a ticker read over REST, or the market stream."""

    REST = "rest"
    STREAM = "stream"


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid, best ask and last trade price. A side of an empty book is ``None``; ``source`` says where the
    prices came from."""

    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    time: int | None = None
    source: PriceSource = PriceSource.REST

    @property
    def mid(self) -> Decimal | None:
        """Mid price of the best bid and ask, or None when either is missing."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    @property
    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask: the quote cannot be trusted."""
        return self.bid is not None and self.ask is not None and self.bid >= self.ask


@dataclass(frozen=True, slots=True)
class Balance:
    """One coin of the account: what is free to use and what open orders hold."""

    available: Decimal
    locked: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Balances:
    """Balances by lower-case coin name; a missing coin is an empty balance."""

    coins: Mapping[str, Balance] = field(default_factory=dict)

    def available(self, coin: str) -> Decimal:
        """Free amount of ``coin`` (any case)."""
        balance = self.coins.get(coin.lower())
        return balance.available if balance else ZERO

    def total(self, coin: str) -> Decimal:
        """Free plus locked amount of ``coin`` (any case): what the account holds of it."""
        balance = self.coins.get(coin.lower())
        return balance.available + balance.locked if balance else ZERO


@dataclass(frozen=True, slots=True)
class FundingNeed:
    """What a pass's placements ask of the account, per lower-case coin.

    ``shortfall``: the least available balance with which every placement passes the funding check (what they lock
    beyond what the planned cancels of their side release); only coins with a positive shortfall are listed.
    ``locks``: what the placements lock in all, whatever the cancels release.
    """

    shortfall: Mapping[str, Decimal] = field(default_factory=dict)
    locks: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """Everything one pass reads from the exchange before it plans. ``balances`` is None when the pass did not need
    them (it places nothing the cancels do not pay for: see ``rebalancer.core.funding.needs_balances``).

    A job whose reference comes from another venue gets that venue's quote (its ``factor`` applied) as
    ``reference_quote``, or, when it could not be had, ``reference_problem`` saying why.
    """

    rules: SymbolRules
    ticker: Ticker
    balances: Balances | None
    open_orders: tuple[Order, ...]
    reference_quote: Ticker | None = None
    reference_problem: str | None = None


@dataclass(frozen=True, slots=True)
class ResultGroup:
    """One entry of a mass_replaceV2 answer: a result code and the order ids it speaks of (possibly none)."""

    code: str
    message: str
    order_ids: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True for the success code."""
        return self.code == "0"


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One mass_replaceV2 request exactly as sent, minus what carries or derives from credentials.

    ``mass_cancel`` and ``mass_place`` are the JSON texts of the request (None when the list was empty).
    """

    symbol: str
    mass_cancel: str | None = None
    mass_place: str | None = None

    def params(self) -> dict[str, str]:
        """The request parameters, without ``api_key``, ``time`` and ``sign``."""
        params = {"symbol": self.symbol}
        if self.mass_cancel is not None:
            params["mass_cancel"] = self.mass_cancel
        if self.mass_place is not None:
            params["mass_place"] = self.mass_place
        return params


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """The parsed answer of one mass_replaceV2 call, as filed by the exchange (which may file under the wrong key).

    It is a hint, not the truth: the executor confirms it by reading the open orders back. ``request`` is the
    request it answers, as the exchange client sent it (None for an answer that was never asked for).
    """

    place: tuple[ResultGroup, ...] = ()
    cancel: tuple[ResultGroup, ...] = ()
    request: BatchRequest | None = None
