"""Order lifecycle rules on top of the diff: ``refresh.max_age`` replaces stale orders, ``after_fill.delay`` keeps a
level that just filled empty for a while.

Pure: the runner hands in ``now`` and, per ladder level, when the level's order last filled (from the fills ledger);
these functions rewrite the diff and say why. Refresh replaces at most one order per side per pass, the oldest, and
never one of a level that waits after a fill, so the ladder never empties for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from rebalancer.core.diff import Diff
from rebalancer.models import Order, Side, Target
from rebalancer.vocab import CancelReason


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """What the lifecycle rules need: the time of the pass, the job's settings, and each level's last fill."""

    now: datetime
    max_age: timedelta | None = None
    fill_delay: timedelta | None = None
    last_fill: Mapping[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Wait:
    """A level not placed again before ``until``, because its order filled at ``filled_at``."""

    level: str
    until: datetime
    filled_at: datetime

    def sentence(self) -> str:
        """``buy[0] waits until 10:42:05 UTC after a fill``: the plan's line for it."""
        return f"{self.level} waits until {self.until.astimezone(UTC):%H:%M:%S} UTC after a fill"

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form, for the plan's ``after_fill`` list."""
        return {
            "level": self.level,
            "until": self.until.astimezone(UTC).isoformat(timespec="seconds"),
            "filled_at": self.filled_at.astimezone(UTC).isoformat(timespec="seconds"),
        }


def waiting_levels(life: Lifecycle) -> dict[str, Wait]:
    """Levels whose last fill is more recent than the delay, with when they may be placed again."""
    if life.fill_delay is None:
        return {}
    waits = {}
    for level, filled_at in life.last_fill.items():
        until = filled_at + life.fill_delay
        if until > life.now:
            waits[level] = Wait(level, until, filled_at)
    return waits


def apply_lifecycle(result: Diff, life: Lifecycle) -> tuple[Diff, tuple[Wait, ...]]:
    """The diff with stale orders replaced (``refresh``) and placements of waiting levels held back (``after_fill``).

    Returns the new diff and the waits that held a placement back, in level order.
    """
    waits = waiting_levels(life)
    if life.max_age is not None:
        result = _refresh(result, life.now - life.max_age, frozenset(waits))
    held = tuple(waits[t.level] for t in sorted(result.place, key=lambda t: t.level) if t.level in waits)
    if held:
        result = replace(result, place=tuple(t for t in result.place if t.level not in waits))
    return result, held


def _refresh(result: Diff, born_before: datetime, waiting: frozenset[str]) -> Diff:
    """Per side, the oldest kept order created before ``born_before`` is cancelled (``max_age``) and re-placed."""
    limit_ms = int(born_before.timestamp() * 1000)
    stale: dict[Side, tuple[Order, Target]] = {}
    for order, target in result.keep:
        if order.created_at is None or order.created_at > limit_ms or target.level in waiting:
            continue
        best = stale.get(order.side)
        if best is None or (order.created_at, _id(order)) < (best[0].created_at or 0, _id(best[0])):
            stale[order.side] = (order, target)
    if not stale:
        return result
    chosen = {order.id for order, _ in stale.values()}
    return replace(
        result,
        keep=tuple(pair for pair in result.keep if pair[0].id not in chosen),
        cancel=result.cancel + tuple((order, CancelReason.MAX_AGE) for order, _ in stale.values()),
        place=result.place + tuple(target for _, target in stale.values()),
    )


def _id(order: Order) -> tuple[int, str]:
    return (int(order.id), "") if order.id.isdigit() else (0, order.id)
