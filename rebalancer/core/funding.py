"""Can the balances pay for the placements? Trim the farthest ones until they can.

Runs after the diff, because the budget of a side includes what the planned cancels release: budget = the
available balance of the coin the side spends (quote for buys, base for sells) + the remaining value of the
cancelled open orders of that side. Pure, like the rest of the core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.core.dropped import Dropped, Notes, distance_key, side_then_distance
from rebalancer.models import ZERO, FundingNeed, MarketSnapshot, Order, Side, SymbolRules, Target
from rebalancer.vocab import DropReason


@dataclass(frozen=True, slots=True)
class Funding:
    """The placements the balances can pay for, and those trimmed (farthest first) because they could not."""

    placements: tuple[Target, ...]
    dropped: tuple[Dropped, ...] = ()
    warnings: tuple[str, ...] = ()


def cost(target: Target) -> Decimal:
    """What a placement locks: quote (price × volume) for a buy, base (volume) for a sell."""
    return target.price * target.volume if target.side is Side.BUY else target.volume


def released(order: Order) -> Decimal:
    """What cancelling an open order frees, in the coin ``cost`` uses for its side (0 unless status 0/1/3)."""
    if not order.is_open:
        return ZERO
    return order.price * order.remaining if order.side is Side.BUY else order.remaining


def needs_balances(placements: Sequence[Target], cancelled: Sequence[Order]) -> bool:
    """True when some side's placements cost more than its cancels release: only then do the balances matter.

    Otherwise every placement fits its budget whatever the balance (it is never negative), so a pass need not read it.
    """
    for side in (Side.BUY, Side.SELL):
        total = sum((cost(t) for t in placements if t.side is side), ZERO)
        if total > sum((released(o) for o in cancelled if o.side is side), ZERO):
            return True
    return False


def funding_need(placements: Sequence[Target], cancelled: Sequence[Order], rules: SymbolRules) -> FundingNeed:
    """Per coin, what the placements lock and the least available balance that pays for all of them.

    ``fund`` keeps every placement of a side exactly when available + released ≥ locked, so the shortfall of the
    side's coin is locked − released (listed only when positive). Buys spend the quote coin, sells the base coin.
    """
    shortfall: dict[str, Decimal] = {}
    locks: dict[str, Decimal] = {}
    for side, coin in ((Side.BUY, rules.quote.lower()), (Side.SELL, rules.base.lower())):
        locked = sum((cost(t) for t in placements if t.side is side), ZERO)
        if locked > 0:
            locks[coin] = locked
        short = locked - sum((released(o) for o in cancelled if o.side is side), ZERO)
        if short > 0:
            shortfall[coin] = short
    return FundingNeed(shortfall, locks)


def fund(
    placements: Sequence[Target], cancelled: Sequence[Order], snapshot: MarketSnapshot, reference: Decimal
) -> Funding:
    """Trim the placements, farthest from the reference first, until each side fits its budget.

    Budget of a side = the available balance of the coin it spends (quote for buys, base for sells) plus what
    the planned cancels of that side release. Since the cancels run before the placements, a placement that
    passes here is never refused for balance if the snapshot was true. ``snapshot.balances`` may be None (not read)
    only when ``needs_balances`` is False.
    """
    if snapshot.balances is None:
        if needs_balances(placements, cancelled):
            raise ValueError("the placements need the balances, which were not read")
        return Funding(tuple(sorted(placements, key=side_then_distance(reference))))
    rules = snapshot.rules
    coin = {Side.BUY: rules.quote, Side.SELL: rules.base}
    kept: list[Target] = []
    notes = Notes()
    for side in (Side.BUY, Side.SELL):
        mine = sorted((t for t in placements if t.side is side), key=lambda t: distance_key(t, reference))
        freed = sum((released(o) for o in cancelled if o.side is side), ZERO)
        budget = snapshot.balances.available(coin[side]) + freed
        total = sum((cost(t) for t in mine), ZERO)
        while mine and total > budget:
            t = mine.pop()
            total -= cost(t)
            notes.drop_target(
                t,
                DropReason.INSUFFICIENT_BALANCE,
                f"{t.level}: not placed, {coin[side].upper()} balance too low "
                f"(available {snapshot.balances.available(coin[side]):f} plus released by cancels)",
            )
        kept.extend(mine)
    key = side_then_distance(reference)
    return Funding(tuple(sorted(kept, key=key)), tuple(notes.dropped), tuple(notes.warnings))
