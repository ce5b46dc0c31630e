"""Price ceiling and floor: never a buy at or above ``limits.price_ceiling``, never a sell at or below
``limits.price_floor``. Targets beyond them are dropped; standing orders beyond them are cancelled (reason
``price_limit``) even where they would otherwise be kept. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from rebalancer.job import Limits
from rebalancer.models import Order, Side, format_decimal


def breaches(limits: Limits, side: Side, price: Decimal) -> bool:
    """True when a ``side`` order at ``price`` would break the ceiling (buys) or the floor (sells)."""
    if side is Side.BUY:
        return limits.price_ceiling is not None and price >= limits.price_ceiling
    return limits.price_floor is not None and price <= limits.price_floor


def why(limits: Limits, side: Side) -> str:
    """The words for a breach by a ``side`` order: ``at or above the price ceiling 31000``."""
    if side is Side.BUY:
        return f"at or above the price ceiling {_shown(limits.price_ceiling)}"
    return f"at or below the price floor {_shown(limits.price_floor)}"


def _shown(limit: Decimal | None) -> str:
    return "(none)" if limit is None else format_decimal(limit)


def split_orders(limits: Limits, orders: Sequence[Order]) -> tuple[list[Order], list[Order]]:
    """(orders within the limits, open orders beyond them). Orders pending cancellation stay with the first."""
    within: list[Order] = []
    beyond: list[Order] = []
    for order in orders:
        (beyond if order.is_open and breaches(limits, order.side, order.price) else within).append(order)
    return within, beyond
