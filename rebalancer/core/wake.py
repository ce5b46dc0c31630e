"""When a job runs its next pass, and why. Pure: values in, values out.

A job wakes for four reasons (the words of logs, history, metrics and the pages):

- ``timer``: its ``schedule`` is due;
- ``reference``: the market moved so that the ladder computed from it would differ from the job's orders as they
  stood after its last pass (``ladder_moved``: the same ladder and diff a pass runs, no I/O);
- ``trade``: a trade printed at or through the price of one of its resting orders (``trade_reaches``: a possible
  fill);
- ``market``: its book crossed, emptied or went stale (``market_alarm``), so that the guards can act.

However many reasons come, two passes of one job are at least ``min_gap`` apart (``next_pass``). Today the daemon
and ``rebalancer replay`` wake on ``timer`` alone; the other signals are decided here so that a stream can raise
them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.core.plan import draft_plan
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Order, Side
from rebalancer.vocab import WakeReason


@dataclass(frozen=True, slots=True)
class Wake:
    """A pass to run at ``at_ms`` for ``reason``."""

    at_ms: int
    reason: WakeReason


def next_pass(now_ms: int, reasons: Iterable[WakeReason], last_pass_ms: int | None, min_gap_ms: int = 0) -> Wake | None:
    """The pass that ``reasons`` raised at ``now_ms`` call for: now, or once ``min_gap_ms`` has passed since the last
    pass if that is later; named by the first reason in ``WakeReason`` order. None without a reason."""
    raised = set(reasons)
    if not raised:
        return None
    reason = next(r for r in WakeReason if r in raised)
    earliest = now_ms if last_pass_ms is None else max(now_ms, last_pass_ms + max(min_gap_ms, 0))
    return Wake(earliest, reason)


def trade_reaches(price: Decimal, orders: Sequence[Order]) -> bool:
    """True when a trade at ``price`` is at or through one of the resting ``orders`` (a buy at or above the
    trade's price, a sell at or below it)."""
    return any(o.remaining > 0 and (price <= o.price if o.side is Side.BUY else price >= o.price) for o in orders)


def market_alarm(bid: Decimal | None, ask: Decimal | None, age_ms: int, stale_ms: int) -> bool:
    """True when the book is crossed (bid at or above ask), has an empty side, or is older than ``stale_ms``."""
    if bid is None or ask is None:
        return True
    return bid >= ask or age_ms > stale_ms


def ladder_moved(job: Job, snapshot: MarketSnapshot, owned_ids: frozenset[str] | None) -> bool:
    """True when the plan made from ``snapshot`` (the streamed market, the job's orders as of its last pass) would
    cancel or place anything: the ladder and the diff of a pass, before the funding check (which only trims)."""
    draft = draft_plan(job, snapshot, owned_ids)
    return bool(draft.result.place or draft.result.cancel)
