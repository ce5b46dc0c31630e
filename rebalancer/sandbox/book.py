"""The mutable records of the simulated exchange: accounts with their coin balances, orders and fills.

They are plain mutable dataclasses owned by the ``Engine`` and only touched under its lock; each knows how to
turn itself into a JSON-safe dict and back (Decimals as strings) so the whole world can be saved and loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rebalancer.models import Balance, Balances, Order, OrderStatus, Side

ZERO = Decimal(0)


class Reject(Exception):
    """The exchange refuses one request or one order: ``code`` is the template's error code as text."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{msg} (code {code})")
        self.code = code
        self.msg = msg


@dataclass(slots=True)
class CoinBalance:
    """One coin of one account: free to use, and held by open orders."""

    available: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass(slots=True)
class Account:
    """An API account. The secret is kept out of ``repr`` so it never reaches a log line."""

    api_key: str
    secret_key: str = field(repr=False)
    coins: dict[str, CoinBalance] = field(default_factory=dict)

    def coin(self, name: str) -> CoinBalance:
        """The balance of ``name`` (lower-cased), created empty on first use."""
        return self.coins.setdefault(name.lower(), CoinBalance())

    def lock(self, coin: str, amount: Decimal) -> None:
        """Move ``amount`` from available to locked, or refuse with code 19 if there is not enough."""
        balance = self.coin(coin)
        if balance.available < amount:
            raise Reject("19", f"insufficient available {coin} balance")
        balance.available -= amount
        balance.locked += amount

    def release(self, coin: str, amount: Decimal) -> None:
        """Move ``amount`` from locked back to available."""
        balance = self.coin(coin)
        balance.locked -= amount
        balance.available += amount

    def snapshot(self) -> Balances:
        """The balances as the shared frozen value."""
        return Balances({name: Balance(b.available, b.locked) for name, b in sorted(self.coins.items())})

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, secret included: the saved world must be able to authenticate the account again."""
        return {
            "api_key": self.api_key,
            "secret_key": self.secret_key,
            "coins": {name: [str(b.available), str(b.locked)] for name, b in sorted(self.coins.items())},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Account:
        """Inverse of ``to_dict``."""
        coins = {name: CoinBalance(Decimal(a), Decimal(lk)) for name, (a, lk) in d["coins"].items()}
        return cls(api_key=d["api_key"], secret_key=d["secret_key"], coins=coins)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of an order against the simulated market: at the order's own price when the market came to
    it (the order was the maker), at the crowd's level when the order was marketable on arrival (``taker``)."""

    trade_id: int
    order_id: int
    symbol: str
    side: Side
    price: Decimal
    volume: Decimal
    time: int
    taker: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {
            "trade_id": self.trade_id,
            "order_id": self.order_id,
            "symbol": self.symbol,
            "side": self.side.value,
            "price": str(self.price),
            "volume": str(self.volume),
            "time": self.time,
            "taker": self.taker,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Fill:
        """Inverse of ``to_dict``."""
        return cls(
            trade_id=int(d["trade_id"]),
            order_id=int(d["order_id"]),
            symbol=d["symbol"],
            side=Side(d["side"]),
            price=Decimal(d["price"]),
            volume=Decimal(d["volume"]),
            time=int(d["time"]),
            taker=d.get("taker") is True,  # absent from worlds saved before it was kept: a maker's fill
        )


@dataclass(slots=True)
class SimOrder:
    """A limit order of one account on one symbol, with its fills."""

    id: int
    api_key: str
    symbol: str
    side: Side
    price: Decimal
    volume: Decimal
    created_at: int
    deal_volume: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW
    fills: list[Fill] = field(default_factory=list)

    @property
    def remaining(self) -> Decimal:
        """Volume still resting on the book."""
        return self.volume - self.deal_volume

    @property
    def is_open(self) -> bool:
        """Whether the order still rests on the book."""
        return self.status.is_open

    def copy(self) -> SimOrder:
        """A detached copy, safe to read outside the engine's lock."""
        return SimOrder(
            self.id,
            self.api_key,
            self.symbol,
            self.side,
            self.price,
            self.volume,
            self.created_at,
            self.deal_volume,
            self.status,
            list(self.fills),
        )

    def to_model(self) -> Order:
        """The order as the shared frozen value."""
        return Order(
            id=str(self.id),
            side=self.side,
            price=self.price,
            volume=self.volume,
            deal_volume=self.deal_volume,
            status=self.status,
            created_at=self.created_at,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form, fills included."""
        return {
            "id": self.id,
            "api_key": self.api_key,
            "symbol": self.symbol,
            "side": self.side.value,
            "price": str(self.price),
            "volume": str(self.volume),
            "created_at": self.created_at,
            "deal_volume": str(self.deal_volume),
            "status": int(self.status),
            "fills": [f.to_dict() for f in self.fills],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SimOrder:
        """Inverse of ``to_dict``."""
        return cls(
            id=int(d["id"]),
            api_key=d["api_key"],
            symbol=d["symbol"],
            side=Side(d["side"]),
            price=Decimal(d["price"]),
            volume=Decimal(d["volume"]),
            created_at=int(d["created_at"]),
            deal_volume=Decimal(d["deal_volume"]),
            status=OrderStatus(int(d["status"])),
            fills=[Fill.from_dict(f) for f in d["fills"]],
        )
