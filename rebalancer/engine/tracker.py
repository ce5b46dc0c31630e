"""The order tracker: which orders a job owns, what a lost batch may still place, and which orders are watched for
fills. Values in, values out: it decides, ``rebalancer.state`` writes what it decided in the pass's next write.

Before planning, ``track`` settles the open in-flight records (batches sent whose answer never confirmed them)
against the book: open orders that match a record's placements and were created after it are adopted. After a send,
``after_send`` says which in-flight record closes, which orders are now owned and which no longer are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from rebalancer.core.diff import fits
from rebalancer.core.fills import Fill, Learnt, Seen
from rebalancer.core.plan import Plan, plan_fingerprint
from rebalancer.defaults import CLOCK_SLACK_MS, IN_FLIGHT_GRACE, LATE_WRITE_WINDOW
from rebalancer.engine.executor import Execution, OrderOutcome
from rebalancer.job import Job, Ownership
from rebalancer.models import MarketSnapshot, Order
from rebalancer.state.outcome import OwnershipChange
from rebalancer.state.passio import PassInputs
from rebalancer.vocab import ActionKind, OutcomeStatus


@dataclass(frozen=True, slots=True)
class Tracked:
    """What the tracker found before planning.

    ``owned``: the ids the job may touch (None: every order of the symbol, for ``ownership: symbol``);
    ``pending``: placements of a batch whose answer was lost and that may still land; ``ownership``: the
    settlement to record (in-flight records closed, ids adopted, ids gone from the book forgotten).
    """

    owned: frozenset[str] | None
    pending: tuple[Order, ...]
    ownership: OwnershipChange


@dataclass(frozen=True, slots=True)
class AfterSend:
    """What a send changed: the in-flight record to close (tracking ``placed``), ids to forget, a late mark."""

    close: int | None = None
    placed: tuple[str, ...] = ()
    untrack: tuple[str, ...] = ()
    late: tuple[int, datetime] | None = None


def track(job: Job, snapshot: MarketSnapshot, inputs: PassInputs, now: datetime) -> Tracked:
    """Settle the open in-flight records against the book and say which orders the job owns.

    A record closes when all its placements are found or ``IN_FLIGHT_GRACE`` has passed, since a write whose answer
    was lost may land late; until then, while it is marked late, its unseen placements are *pending*, so the pass
    does not place their levels a second time. Tracked ids no longer open are forgotten.
    """
    tracking = job.ownership is Ownership.TRACKED
    claimed: set[str] = set()
    pending: list[Order] = []
    closes: list[tuple[int, tuple[str, ...]]] = []
    adopted_open: list[str] = []
    by_id = sorted(snapshot.open_orders, key=lambda o: id_key(o.id))
    for in_flight in inputs.in_flight:
        wanted = [(p.side, p.price, p.volume) for p in in_flight.placements]
        since_ms = int(in_flight.created_at.timestamp() * 1000) - CLOCK_SLACK_MS
        adopted = []
        for order in by_id:
            key = (order.side, order.price, order.volume)
            fresh = order.created_at is None or order.created_at >= since_ms
            if order.id not in inputs.tracked and order.id not in claimed and key in wanted and fresh:
                wanted.remove(key)
                claimed.add(order.id)
                adopted.append(order.id)
        expired = now - in_flight.created_at > IN_FLIGHT_GRACE
        if in_flight.late_until is not None and now < in_flight.late_until:
            pending += [Order(f"in-flight-{in_flight.id}", side, price, volume) for side, price, volume in wanted]
        if not wanted or expired:
            closes.append((in_flight.id, tuple(adopted) if tracking else ()))
        elif adopted and tracking:
            adopted_open += adopted
    if job.ownership is Ownership.SYMBOL:
        owned = None
        gone: list[str] = []
    else:
        mine = set(inputs.tracked) | claimed
        open_ids = {o.id for o in snapshot.open_orders}
        gone = sorted(mine - open_ids, key=id_key)
        owned = frozenset(mine & open_ids)
    change = OwnershipChange(closes=tuple(closes), track=tuple(adopted_open), untrack=tuple(gone))
    return Tracked(owned=owned, pending=tuple(pending), ownership=change)


def awaited_levels(job: Job, plan: Plan, pending: Sequence[Order]) -> dict[str, str]:
    """Levels the plan would place that an unseen placement of a lost batch already stands for (within tolerance)."""
    awaited: dict[str, str] = {}
    unused = list(pending)
    for target in plan.placements:
        match = next((o for o in unused if fits(o, target, job.tolerance)), None)
        if match is not None:
            unused.remove(match)
            awaited[target.level] = "while a batch whose answer was lost may still place it"
    return awaited


def without_awaited(plan: Plan, awaited: dict[str, str], orders: Sequence[Order]) -> Plan:
    """The plan minus the placements of awaited levels (its cancels stay: the late order replaces them).

    ``orders`` are the open orders the plan was made from: the fingerprint is recomputed for the new actions.
    """
    if not awaited:
        return plan
    actions = tuple(a for a in plan.actions if not (a.action is ActionKind.PLACE and a.level in awaited))
    notes = tuple(f"{level} not placed again {why}" for level, why in sorted(awaited.items()))
    fingerprint = plan_fingerprint(plan.job_hash, orders, actions)
    return dataclasses.replace(plan, actions=actions, warnings=plan.warnings + notes, fingerprint=fingerprint)


def after_send(job: Job, in_flight: int | None, execution: Execution, now: datetime) -> AfterSend:
    """What the send changed in ownership. Only a confirmed execution closes its in-flight record and forgets the
    cancelled ids; an unconfirmed one leaves the record open for the next pass to settle (marked late when a write
    timed out and may still land)."""
    late = (in_flight, now + LATE_WRITE_WINDOW) if in_flight is not None and execution.may_land_late else None
    if not execution.confirmed:
        return AfterSend(late=late)
    tracking = job.ownership is Ownership.TRACKED
    placed = tuple(o.order_id for o in execution.outcomes if o.status is OutcomeStatus.PLACED and o.order_id)
    cancelled = tuple(o.order_id for o in execution.outcomes if o.status is OutcomeStatus.CANCELLED and o.order_id)
    return AfterSend(
        close=in_flight,
        placed=placed if tracking and in_flight is not None else (),
        untrack=cancelled if tracking else (),
        late=late,
    )


@dataclass(frozen=True, slots=True)
class WatchChange:
    """The fills ledger's changes of a pass: fills learnt, watched rows new or changed since the last pass (to
    write), ids no longer watched. Rows the pass left as they were are not in it: the store keeps them."""

    fills: tuple[Fill, ...] = ()
    watch: tuple[Seen, ...] = ()
    forget: tuple[str, ...] = ()


def watch_change(learnt: Learnt, plan: Plan, placed: Sequence[OrderOutcome] = ()) -> WatchChange:
    """The fills learnt and what changed in the watch list: each order with its level when the plan knows it, plus
    the orders just placed, keeping only rows that differ from ``learnt.previous`` (what the store holds), so a
    pass writes the rows it changed rather than the whole list, and a quiet pass writes no fills statement."""
    levels = {a.order_id: a.level for a in plan.actions if a.order_id and a.level}
    watch = [dataclasses.replace(s, level=s.level or levels.get(s.order_id)) for s in learnt.watch]
    fresh = {o.order_id: seen_placed(o) for o in placed if o.status is OutcomeStatus.PLACED and o.order_id}
    rows = [s for s in watch if s.order_id not in fresh] + list(fresh.values())
    changed = tuple(s for s in rows if learnt.previous.get(s.order_id) != s)
    return WatchChange(fills=learnt.fills, watch=changed, forget=learnt.forget)


def seen_placed(outcome: OrderOutcome) -> Seen:
    """A placed order as the fills ledger watches it, from its deal volume zero."""
    assert outcome.order_id is not None
    return Seen(outcome.order_id, outcome.side, outcome.price, level=outcome.level, volume=outcome.volume)


def id_key(order_id: str) -> tuple[int, str]:
    """Sort key of order ids: numeric ids in number order (a text id sorts by its text, before them)."""
    return (int(order_id), "") if order_id.isdigit() else (0, order_id)
