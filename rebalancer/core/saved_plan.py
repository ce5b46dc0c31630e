"""A saved plan (``plan --out``) checked against the job's guards as they stand when it is applied.

The fingerprint tells whether a saved plan was edited or made from another book; this module is the second
line: whatever a plan file says, ``apply --plan`` sends only placements the job itself could have planned now.
Each placement must sit on the symbol's tick and lot, inside the band, off the other side of the book when
``post_only``, and within the job's tolerance of the target its level has now; placements and kept orders
together stay within ``max_orders``; nothing is placed while the market-data guard pauses placements.

Pure: the job, the saved plan, the plan computed now and the snapshot in; ``UnsafePlanError`` out.
"""

from __future__ import annotations

from decimal import Decimal

from rebalancer.core import ladder
from rebalancer.core.plan import Action, Plan
from rebalancer.errors import UnsafePlanError
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Side, Target
from rebalancer.vocab import ActionKind

_SHOWN = 3


def check_saved_plan(job: Job, saved: Plan, fresh: Plan, snapshot: MarketSnapshot) -> None:
    """Raise ``UnsafePlanError`` naming what in ``saved`` the job's guards refuse now; return when nothing is."""
    places = [a for a in saved.actions if a.action is ActionKind.PLACE]
    problems: list[str] = []
    if places and fresh.paused is not None:
        problems.append(f"placements are paused now ({fresh.paused})")
    else:
        targets = {t.level: t for t in ladder.build(job, snapshot).targets} if places else {}
        seen: set[str] = set()
        for action in places:
            level = action.level or "?"
            if level in seen:
                problems.append(f"{level} is placed twice")
                continue
            seen.add(level)
            problem = _placement_problem(job, action, targets.get(level), fresh.reference_price, snapshot)
            if problem:
                problems.append(f"{level} {_show(saved, action)}: {problem}")
    standing = len(places) + sum(1 for a in saved.actions if a.action is ActionKind.KEEP)
    if job.limits.max_orders is not None and standing > job.limits.max_orders:
        problems.append(f"{standing} orders would stand, more than max_orders {job.limits.max_orders}")
    if problems:
        more = f"; and {len(problems) - _SHOWN} more" if len(problems) > _SHOWN else ""
        raise UnsafePlanError(f"saved plan refused by the job's guards: {'; '.join(problems[:_SHOWN])}{more}")


def _placement_problem(
    job: Job, action: Action, target: Target | None, reference: Decimal, snapshot: MarketSnapshot
) -> str | None:
    """Why one saved placement may not be sent now, or None."""
    rules, ticker, limits = snapshot.rules, snapshot.ticker, job.limits
    if rules.round_price(action.price, action.side) != action.price:
        return f"the price is not on the symbol's tick {rules.tick:f}"
    if rules.round_volume(action.volume) != action.volume:
        return f"the volume is not on the symbol's lot {rules.lot:f}"
    if limits.band is not None and reference > 0 and abs(action.price - reference) > limits.band.of(reference):
        return f"farther than the band {limits.band} from the reference {reference:f}"
    if limits.post_only:
        if action.side is Side.BUY and ticker.ask is not None and action.price >= ticker.ask:
            return f"would take the best ask {ticker.ask:f} (post_only)"
        if action.side is Side.SELL and ticker.bid is not None and action.price <= ticker.bid:
            return f"would take the best bid {ticker.bid:f} (post_only)"
    if target is None or target.side is not action.side:
        return "not a level of the job's ladder now"
    tolerance = job.tolerance
    if abs(action.price - target.price) > tolerance.price.of(target.price):
        return f"the price is not within tolerance {tolerance.price} of its target {target.price:f}"
    if abs(action.volume - target.volume) > tolerance.size.of(target.volume):
        return f"the volume is not within tolerance {tolerance.size} of its target {target.volume:f}"
    return None


def _show(plan: Plan, action: Action) -> str:
    return f"{action.side.value} {plan.format_price(action.price)} × {plan.format_volume(action.volume)}"
