"""Inventory skew: lean the ladder against the inventory the account holds.

The base share is the base coin's value at the reference over the symbol's whole value (base at the reference plus
quote, available and locked). ``d = (share - target) / range``, clamped to [-1, 1]: buy sizes are multiplied by
``1 - d`` and sell sizes by ``1 + d``. Above the target the ladder buys less and sells more, so the inventory drifts
back; at ``target + range`` buys stop and sells double; below the target the mirror. Pure: values in, values out.

Why it never makes the funding check worse: the side that grows spends the coin the account holds more of than it
aims at, and the side that shrinks spends the scarce one; funding still trims whatever the balances cannot pay.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from rebalancer.job import Inventory
from rebalancer.models import ZERO, Balances, Side, SymbolRules, format_decimal

_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_SHOWN = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Skew:
    """The inventory reading of one pass and the size factors it gives each side.

    ``base_share`` is a percentage, None when the account holds neither coin (then both factors are 1).
    """

    base_share: Decimal | None
    target: Decimal
    range: Decimal
    buy_factor: Decimal
    sell_factor: Decimal

    def factor(self, side: Side) -> Decimal:
        """The size factor of ``side``."""
        return self.buy_factor if side is Side.BUY else self.sell_factor

    def describe(self) -> str:
        """``inventory: base 62% (target 50% ±20%) → buy ×0.40, sell ×1.60``: the plan's line."""
        aim = f"(target {format_decimal(self.target)}% ±{format_decimal(self.range)}%)"
        if self.base_share is None:
            return f"inventory: no balance of either coin {aim} → sizes unchanged"
        share = _share(self.base_share)
        return f"inventory: base {share}% {aim} → buy ×{_shown(self.buy_factor)}, sell ×{_shown(self.sell_factor)}"

    def to_json_dict(self) -> dict[str, str | None]:
        """The plan JSON ``inventory`` object: the same figures as the line, as strings."""
        return {
            "base_share": None if self.base_share is None else f"{_share(self.base_share)}%",
            "target": f"{format_decimal(self.target)}%",
            "range": f"{format_decimal(self.range)}%",
            "buy_factor": _shown(self.buy_factor),
            "sell_factor": _shown(self.sell_factor),
        }


def _share(share: Decimal) -> str:
    return format_decimal(share.quantize(_SHOWN).normalize())


def _shown(factor: Decimal) -> str:
    return format_decimal(factor.quantize(_SHOWN))


def base_share(balances: Balances, rules: SymbolRules, reference: Decimal) -> Decimal | None:
    """The base coin's share (percent) of the symbol's value at ``reference``; None when both coins are empty."""
    base = balances.total(rules.base) * reference
    value = base + balances.total(rules.quote)
    if value <= ZERO:
        return None
    return base * _HUNDRED / value


def inventory_skew(inventory: Inventory, balances: Balances, rules: SymbolRules, reference: Decimal) -> Skew:
    """The size factors for the account's inventory (see the module docstring)."""
    share = base_share(balances, rules, reference)
    if share is None:
        return Skew(None, inventory.target_base, inventory.range, _ONE, _ONE)
    lean = max(-_ONE, min(_ONE, (share - inventory.target_base) / inventory.range))
    return Skew(share, inventory.target_base, inventory.range, _ONE - lean, _ONE + lean)
