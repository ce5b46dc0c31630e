"""Reading the book back after a write, and deciding from it what became of each order a plan sent.

The open-order list read after the batches decides what their answers left open: a placement is confirmed when a
new order with its side, price and volume stands on the book (or the answer's id is found filled), a cancel when its
id is gone. What the read-back cannot settle for a batch whose answer was lost stays ``unknown`` (its write may still
land), never ``rejected``. ``rebalancer.engine.executor`` sends; this module judges.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.core.plan import Action, Batch, Plan
from rebalancer.defaults import READ_BACK_ATTEMPTS, READ_BACK_BACKOFF_SECONDS, READ_BACK_PAUSE_CAP_SECONDS
from rebalancer.errors import ExchangeError, OutcomeUnknown, RateLimited, TransientError
from rebalancer.exchange import Exchange
from rebalancer.models import BatchAnswer, Order, OrderStatus, ResultGroup, Side, Target
from rebalancer.vocab import ActionKind, OutcomeStatus

log = logging.getLogger(__name__)

LATE = "answer lost and not on the book yet: the write may still land"


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of one cancel or placement. ``status``: placed, cancelled, rejected or unknown."""

    action: ActionKind
    side: Side
    price: Decimal
    volume: Decimal
    status: OutcomeStatus
    order_id: str | None = None
    level: str | None = None
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "action", ActionKind(self.action))
        object.__setattr__(self, "status", OutcomeStatus(self.status))


def read_back(exchange: Exchange, symbol: str, *, sleep: Callable[[float], None] = time.sleep) -> tuple[Order, ...]:
    """Read the open orders, retrying transient failures a bounded number of times with growing pauses."""
    delay = READ_BACK_BACKOFF_SECONDS
    for attempt in range(READ_BACK_ATTEMPTS):
        try:
            return exchange.open_orders(symbol)
        except (TransientError, OutcomeUnknown) as exc:
            if attempt == READ_BACK_ATTEMPTS - 1:
                raise
            pause = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after else delay
            sleep(min(pause, READ_BACK_PAUSE_CAP_SECONDS))
            delay *= 2
    raise AssertionError("unreachable")


def confirm(
    exchange: Exchange,
    symbol: str,
    plan: Plan,
    sent: Sequence[Batch],
    answers: Sequence[BatchAnswer],
    failures: dict[ActionKind, list[ResultGroup]],
    book_before: Sequence[Order],
    book_after: Sequence[Order],
    *,
    lost: Batch | None = None,
) -> tuple[OrderOutcome, ...]:
    """Decide every sent order's outcome from the book read back, using the answers only to explain failures.

    ``lost`` is the batch whose answer never came: its cancels still open and placements not seen are ``unknown``.
    """
    open_after = {o.id: o for o in book_after if o.status is not OrderStatus.CANCEL_PENDING}
    before_ids = {o.id for o in book_before}
    cancels = cancel_actions(plan)
    outcomes: list[OrderOutcome] = []

    cancel_failure = _failure_by_id(failures[ActionKind.CANCEL])
    for batch in sent:
        for order_id in batch.cancel_ids:
            cancel = cancels[order_id]
            side, price, volume = cancel.side, cancel.price, cancel.volume
            if order_id in open_after and batch is lost:
                outcomes.append(
                    OrderOutcome(ActionKind.CANCEL, side, price, volume, OutcomeStatus.UNKNOWN, order_id, message=LATE)
                )
            elif order_id in open_after:
                group = cancel_failure.get(order_id) or _first(failures[ActionKind.CANCEL])
                outcomes.append(
                    OrderOutcome(
                        ActionKind.CANCEL,
                        side,
                        price,
                        volume,
                        OutcomeStatus.REJECTED,
                        order_id,
                        code=group.code if group else None,
                        message=group.message if group else "still on the book",
                    )
                )
            else:
                outcomes.append(OrderOutcome(ActionKind.CANCEL, side, price, volume, OutcomeStatus.CANCELLED, order_id))

    answered_ids = [oid for a in answers for g in a.place if g.ok for oid in g.order_ids]
    answered = set(answered_ids)
    new_orders: dict[tuple[Side, Decimal, Decimal], list[Order]] = defaultdict(list)
    # Ids the exchange answered for come first: another order of the same shape may be someone else's.
    for order in sorted(book_after, key=lambda o: (o.id not in answered, _id_key(o.id))):
        if order.id not in before_ids:
            new_orders[(order.side, order.price, order.volume)].append(order)
    unseen_ids = [oid for oid in answered_ids if oid not in open_after and oid not in before_ids]
    gone, unsettled = _closed_orders(exchange, symbol, unseen_ids)
    place_failures = failures[ActionKind.PLACE]
    for batch in sent:
        for target in batch.place:
            key = (target.side, target.price, target.volume)
            found = new_orders.get(key) or gone.get(key)
            if found:
                outcomes.append(placed_outcome(target, found.pop(0).id))
            elif batch is lost or unsettled:
                unsettled = max(0, unsettled - 1)
                message = LATE if batch is lost else "answered as placed, but neither on the book nor found"
                outcomes.append(place_outcome(target, OutcomeStatus.UNKNOWN, message=message))
            else:
                group = _first(place_failures)
                code, message = (group.code, group.message) if group else (None, "not on the book after the batch")
                outcomes.append(place_outcome(target, OutcomeStatus.REJECTED, code=code, message=message))
    return tuple(outcomes)


def _closed_orders(
    exchange: Exchange, symbol: str, order_ids: Sequence[str], limit: int = 50
) -> tuple[dict[tuple[Side, Decimal, Decimal], list[Order]], int]:
    """Look up answered ids that are no longer open, and how many of them could not be settled.

    An order that traded (filled at once, or partly before a cancel) really stood: it counts as placed. One that
    was closed without trading (cancelled at once, abnormal) never stood. One that cannot be looked up is unsettled.
    """
    found: dict[tuple[Side, Decimal, Decimal], list[Order]] = defaultdict(list)
    unsettled = max(0, len(order_ids) - limit)
    for order_id in order_ids[:limit]:
        try:
            order = exchange.order_info(symbol, order_id)
        except ExchangeError:
            unsettled += 1
            continue
        if order.status is OrderStatus.FILLED or order.deal_volume > 0:
            found[(order.side, order.price, order.volume)].append(order)
        elif order.is_open:
            unsettled += 1
    return found, unsettled


def failure_groups(answer: BatchAnswer, batch: Batch) -> Iterable[tuple[ActionKind, ResultGroup]]:
    """Failed groups of an answer, refiled under the action they really speak of (ids tell cancels apart)."""
    cancel_ids = set(batch.cancel_ids)
    for kind, groups in ((ActionKind.PLACE, answer.place), (ActionKind.CANCEL, answer.cancel)):
        for group in groups:
            if group.ok:
                continue
            speaks_of_cancels = bool(group.order_ids) and all(oid in cancel_ids for oid in group.order_ids)
            if speaks_of_cancels or (kind is ActionKind.PLACE and _is_cancel_code(group.code) and not group.order_ids):
                yield ActionKind.CANCEL, group
            else:
                yield kind, group


def _is_cancel_code(code: str) -> bool:
    return code in {"8", "22"}


def _failure_by_id(groups: Iterable[ResultGroup]) -> dict[str, ResultGroup]:
    return {oid: g for g in groups for oid in g.order_ids}


def _first(groups: Sequence[ResultGroup]) -> ResultGroup | None:
    return groups[0] if groups else None


def placed_outcome(target: Target, order_id: str) -> OrderOutcome:
    """A placement the exchange holds, as order ``order_id``."""
    return place_outcome(target, OutcomeStatus.PLACED, order_id)


def place_outcome(
    target: Target,
    status: OutcomeStatus,
    order_id: str | None = None,
    *,
    code: str | None = None,
    message: str | None = None,
) -> OrderOutcome:
    """How the placement of ``target`` ended: ``status``, with the exchange's id, code and message when known."""
    return OrderOutcome(
        ActionKind.PLACE,
        target.side,
        target.price,
        target.volume,
        status,
        order_id,
        level=target.level,
        code=code,
        message=message,
    )


def all_unknown(plan: Plan, sent: Sequence[Batch], reason: str) -> tuple[OrderOutcome, ...]:
    cancels = cancel_actions(plan)
    outcomes = [
        OrderOutcome(
            ActionKind.CANCEL,
            cancels[oid].side,
            cancels[oid].price,
            cancels[oid].volume,
            OutcomeStatus.UNKNOWN,
            oid,
            message=reason,
        )
        for b in sent
        for oid in b.cancel_ids
    ]
    outcomes += [
        OrderOutcome(ActionKind.PLACE, t.side, t.price, t.volume, OutcomeStatus.UNKNOWN, level=t.level, message=reason)
        for b in sent
        for t in b.place
    ]
    return tuple(outcomes)


def cancel_actions(plan: Plan) -> dict[str, Action]:
    return {a.order_id: a for a in plan.actions if a.action is ActionKind.CANCEL and a.order_id}


def _id_key(order_id: str) -> tuple[int, str]:
    return (int(order_id), "") if order_id.isdigit() else (0, order_id)
