"""Fills of a job's own orders, learnt by comparing what the last pass saw with what the book shows now.

Pure: the runner hands in the orders it watched (``Seen``: last seen cumulative ``deal_volume`` per order), the job's
open orders, and what ``order_info`` said about the watched orders that left the book; it gets back the new fills and
what to watch next. A fill is keyed by order id and the cumulative deal volume it brings the order to, so learning
the same fill twice (a pass repeated, a crash between learning and recording) stores it once.

An order row whose filled volume exceeds its volume is an exchange error for that order: it is reported
(``Learnt.refused``) and nothing is learnt from it, so the ledger never holds more fill than an order had volume
(a fill many times its order would fake headroom under ``limits.max_loss``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from rebalancer.models import ZERO, Order, Side, format_decimal


@dataclass(frozen=True, slots=True)
class Seen:
    """A watched order: its side, price and ladder level (if known), the deal volume last seen and its volume
    (as placed or first seen; None when not known), past which no fill is learnt."""

    order_id: str
    side: Side
    price: Decimal
    deal_volume: Decimal = ZERO
    level: str | None = None
    volume: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Fill:
    """``volume`` of order ``order_id`` filled at ``price``, bringing its cumulative deal volume to ``deal_volume``."""

    order_id: str
    side: Side
    price: Decimal
    volume: Decimal
    deal_volume: Decimal
    at: datetime
    level: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        """JSON-ready form (decimals as text, time as ISO 8601 UTC), for ``history --json``."""
        return {
            "order_id": self.order_id,
            "side": self.side.value,
            "price": format_decimal(self.price),
            "volume": format_decimal(self.volume),
            "deal_volume": format_decimal(self.deal_volume),
            "level": self.level,
            "at": self.at.astimezone(UTC).isoformat(timespec="seconds"),
        }


@dataclass(frozen=True, slots=True)
class Learnt:
    """The new fills, the orders to keep watching (with their deal volume now), and the ids no longer watched."""

    fills: tuple[Fill, ...]
    watch: tuple[Seen, ...]
    forget: tuple[str, ...]
    previous: Mapping[str, Seen] = field(default_factory=dict)  # what was watched before
    refused: tuple[str, ...] = ()  # one line per order row not learnt from (an exchange error)


def learn_fills(
    watched: Mapping[str, Seen],
    open_orders: Sequence[Order],
    left_book: Mapping[str, Order | None],
    now: datetime,
    unfilled: frozenset[str] = frozenset(),
) -> Learnt:
    """Compare ``watched`` with the job's ``open_orders`` and ``left_book`` (``order_info`` of watched orders no
    longer open; None when it could not be read, so the order stays watched and is asked about again).

    A watched order in ``unfilled`` left the book and the market stream proves it did not fill since it was last
    seen (``core.witness``): it is forgotten with the deal volume last seen, no fill learnt.

    An open order not watched yet is watched from its current deal volume: fills before the job saw it are not its.
    """
    fills: list[Fill] = []
    watch: list[Seen] = []
    forget: list[str] = []
    refused: list[str] = []
    open_ids = set()
    for order in open_orders:
        open_ids.add(order.id)
        seen = watched.get(order.id)
        if overfills(order, seen):
            refused.append(overfilled(order, seen))
            if seen is not None:
                watch.append(seen)
            continue
        if seen is None:
            watch.append(Seen(order.id, order.side, order.price, order.deal_volume, volume=order.volume))
            continue
        fill = _fill(seen, order.deal_volume, now)
        if fill is not None:
            fills.append(fill)
        watch.append(_advanced(seen, order))
    for order_id, seen in watched.items():
        if order_id in open_ids:
            continue
        if order_id in unfilled:
            forget.append(order_id)
            continue
        info = left_book.get(order_id)
        if info is not None and overfills(info, seen):
            refused.append(overfilled(info, seen))
            info = None
        if info is None:
            watch.append(seen)
            continue
        fill = _fill(seen, info.deal_volume, now)
        if fill is not None:
            fills.append(fill)
        if info.is_open:  # listed as open again soon (a lagging list): keep watching it
            watch.append(_advanced(seen, info))
        else:
            forget.append(order_id)
    return Learnt(tuple(fills), tuple(watch), tuple(forget), dict(watched), tuple(refused))


def _advanced(seen: Seen, order: Order) -> Seen:
    deal = max(seen.deal_volume, order.deal_volume)
    volume = order.volume if seen.volume is None else seen.volume
    return Seen(seen.order_id, seen.side, seen.price, deal, seen.level, volume)


def overfills(order: Order, seen: Seen | None) -> bool:
    """True when the row claims more filled than its own volume or than the order's volume as first seen."""
    return order.deal_volume > order.volume or (
        seen is not None and seen.volume is not None and order.deal_volume > seen.volume
    )


def overfilled(order: Order, seen: Seen | None = None) -> str:
    """The report of an order row that claims more filled than the order's volume."""
    volume = order.volume if seen is None or seen.volume is None else min(order.volume, seen.volume)
    return (
        f"exchange error: order {order.id} reports {format_decimal(order.deal_volume)} filled of its volume "
        f"{format_decimal(volume)}; no fill is learnt from it"
    )


def _fill(seen: Seen, deal_volume: Decimal, now: datetime) -> Fill | None:
    if deal_volume <= seen.deal_volume:
        return None
    return Fill(seen.order_id, seen.side, seen.price, deal_volume - seen.deal_volume, deal_volume, now, seen.level)


def filled_by_side(fills: Sequence[Fill]) -> dict[str, Decimal]:
    """Filled volume per side (``BUY``/``SELL``), sides without fills left out."""
    totals: dict[str, Decimal] = {}
    for fill in fills:
        totals[fill.side.value] = totals.get(fill.side.value, ZERO) + fill.volume
    return totals
