"""Which resting orders one printed trade fills, under the replay's three fill models. Pure: values in, values out.

A print is a trade the market made at one price with one volume. Whatever its taker side, it can fill a resting buy
priced at or above it and a resting sell priced at or below it:

- ``touch``: an order fills when the print is at its price or through it;
- ``cross``: only when the print is strictly through its price (at its price is not enough);
- ``queue``: a print strictly through the price fills as under ``cross`` (the whole level was taken); a print *at*
  the price first eats the volume that stood there when the order joined (its ``ahead``), and only what is left
  of the print reaches the order.

Orders share one print in price-time order: the best price for the taker first (the highest buy, the lowest sell),
then the order that joined first. All fills of one print together never exceed its volume. At one price, the volume
a print ate from the queue was ahead of every order there that joined later too, so it comes off their ``ahead``
as well.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.models import ZERO, Side


class FillModel(enum.StrEnum):
    """How a print reaches a resting order: see the module docstring."""

    TOUCH = "touch"
    CROSS = "cross"
    QUEUE = "queue"


@dataclass(frozen=True, slots=True)
class Resting:
    """One resting order of the job as the fill models see it. ``joined``: a sequence number, lower joined first;
    ``ahead``: the volume still queued before it at its price (used by ``queue`` only)."""

    order_id: str
    side: Side
    price: Decimal
    remaining: Decimal
    joined: int
    ahead: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Matched:
    """What one print did: ``fills`` as (order id, volume) in the order they happened, and the new ``ahead`` of
    every order whose queue it shortened."""

    fills: tuple[tuple[str, Decimal], ...]
    ahead: tuple[tuple[str, Decimal], ...]


def reaches(model: FillModel, order: Resting, price: Decimal) -> bool:
    """True when a print at ``price`` can fill ``order`` under ``model`` (queue: at its price, or through it)."""
    if model is FillModel.CROSS:
        return price < order.price if order.side is Side.BUY else price > order.price
    return price <= order.price if order.side is Side.BUY else price >= order.price


def match_print(model: FillModel, price: Decimal, volume: Decimal, resting: Sequence[Resting]) -> Matched:
    """The fills a print of ``volume`` at ``price`` makes among ``resting`` orders under ``model``."""
    eligible = [o for o in resting if o.remaining > 0 and reaches(model, o, price)]
    eligible.sort(key=lambda o: (-o.price if o.side is Side.BUY else o.price, o.joined, o.order_id))
    left = volume
    fills: list[tuple[str, Decimal]] = []
    ahead: list[tuple[str, Decimal]] = []
    eaten: dict[tuple[Side, Decimal], Decimal] = {}
    for order in eligible:
        if left <= 0:
            break
        if model is FillModel.QUEUE and order.price == price:
            key = (order.side, order.price)
            before = eaten.get(key, ZERO)
            still = max(order.ahead - before, ZERO)
            take = min(still, left)
            left -= take
            eaten[key] = before + take
            if order.ahead > 0:
                ahead.append((order.order_id, max(order.ahead - eaten[key], ZERO)))
        filled = min(order.remaining, left)
        if filled > 0:
            fills.append((order.order_id, filled))
            left -= filled
    return Matched(tuple(fills), tuple(ahead))
