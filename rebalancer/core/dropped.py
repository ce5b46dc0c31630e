"""A target the plan will not stand, and why: ``Dropped`` records and the ``Notes`` that collect them with their
warnings while the ladder, the guards and funding run; and the order targets are ranked in (nearest the reference
first), which decides which ones a cap or a short balance drops. Pure values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.models import Side, Target
from rebalancer.vocab import DropReason


@dataclass(frozen=True, slots=True)
class Dropped:
    """A target the job asked for that the plan will not stand, and why (``reason``: a ``DropReason``)."""

    level: str
    side: Side
    price: Decimal | None
    volume: Decimal | None
    reason: DropReason


class Notes:
    """Collects warnings and dropped targets in the order they happen."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.dropped: list[Dropped] = []

    def drop(
        self, level: str, side: Side, price: Decimal | None, volume: Decimal | None, reason: DropReason, message: str
    ) -> None:
        """Record one dropped target and the warning that tells the user about it."""
        self.dropped.append(Dropped(level, side, price, volume, reason))
        self.warnings.append(message)

    def drop_target(self, target: Target, reason: DropReason, message: str) -> None:
        """Record that a built target is dropped, and why."""
        self.drop(target.level, target.side, target.price, target.volume, reason, message)


def level_key(level: str) -> tuple[int, int]:
    """Sort key of a level name: ladder levels (``buy[3]``) before fixed ``orders[0]``, then by index."""
    name, _, rest = level.partition("[")
    digits = rest[:-1]
    return (1 if name == "orders" else 0, int(digits) if digits.isdigit() else 0)


def distance_key(target: Target, reference: Decimal) -> tuple[Decimal, int, tuple[int, int]]:
    """Total order of targets by distance from the reference, then side (BUY first), then level name."""
    return (abs(target.price - reference), 0 if target.side is Side.BUY else 1, level_key(target.level))


def side_then_distance(ref: Decimal) -> Callable[[Target], tuple[object, ...]]:
    """Sort key: side (BUY first), then distance from ``ref``, then level."""
    buy = Side.BUY
    return lambda t: (t.side is not buy, abs(t.price - ref), t.side is not buy, level_key(t.level))
