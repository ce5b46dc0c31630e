"""Plan → mass_replaceV2 batches → per-order results, from the answers when they settle everything, else from
reading the book back.

An answer *settles* its batch when every group succeeded, every cancel id is named as cancelled and exactly one new
id is given per placement: then each order's outcome is known and no read-back is spent on it (the next pass's
snapshot sees the book anyway). Ids are paired with placements in the order answered; which id stands for which
level is only reported, never acted on (the diff pairs orders with levels by price).

Anything less is a hint (four documented shapes, ids in no promised order, failures filed under the wrong key), and
the open-order list read afterwards decides: a placement is confirmed when a new order with its side, price and
volume stands on the book (or the answer's id is found filled), a cancel when its id is gone. A batch whose answer
was lost is never re-sent: sending stops and the read-back decides. What the read-back cannot settle for that batch
stays ``unknown`` (its write may still land after the answer was given up), never ``rejected``.

Before the first batch the pre-trade gate (``rebalancer.core.gate``) judges the whole plan against the book the
pass read: if it refuses anything, nothing is sent (``UnsafePlanError``). Right before each batch the optional
``fence`` is called (``rebalancer.engine.lease``): when the pass's lease is no longer
current it raises, and nothing more is sent — the whole pass ends ``fenced``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rebalancer.core.gate import Checkpoint, refused_message
from rebalancer.core.plan import Batch, Plan
from rebalancer.defaults import BATCH_LIMIT
from rebalancer.engine.readback import (
    LATE,
    OrderOutcome,
    all_unknown,
    cancel_actions,
    confirm,
    failure_groups,
    placed_outcome,
    read_back,
)
from rebalancer.errors import (
    ExchangeError,
    OutcomeUnknown,
    RejectedError,
    StateError,
    UnsafePlanError,
)
from rebalancer.exchange import Exchange
from rebalancer.models import BatchAnswer, BatchRequest, Order, ResultGroup, SymbolRules
from rebalancer.vocab import ActionKind, OutcomeStatus

__all__ = ["LATE", "BatchHook", "Execution", "Fence", "OrderOutcome", "execute", "from_answers", "read_back"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Execution:
    """The result of sending a plan: per-order outcomes, whether they are all settled, and any batch-level error.

    ``confirmed`` is True when the book was read back and no outcome is left ``unknown``: only then may the caller
    treat the placements it did not see as gone for good.
    """

    outcomes: tuple[OrderOutcome, ...]
    confirmed: bool
    book_after: tuple[Order, ...] = ()
    error: str | None = None
    answers: tuple[BatchAnswer, ...] = field(default=())
    may_land_late: bool = False
    fenced: bool = False

    def count(self, status: OutcomeStatus, action: ActionKind | None = None) -> int:
        """How many outcomes have ``status`` (and ``action``, if given)."""
        return sum(1 for o in self.outcomes if o.status == status and (action is None or o.action == action))

    @property
    def rejected(self) -> tuple[OrderOutcome, ...]:
        """The outcomes the exchange refused."""
        return tuple(o for o in self.outcomes if o.status is OutcomeStatus.REJECTED)


Fence = Callable[[], None]
"""Raises (``LeaseLost``) when the pass may no longer write; called right before every batch."""

BatchHook = Callable[[int, "BatchRequest | None", "BatchAnswer | None", "str | None"], None]
"""Called after each batch with its index, the request as sent (None if it could not be built), the answer and
the error text."""


def execute(
    exchange: Exchange,
    rules: SymbolRules,
    plan: Plan,
    book_before: Sequence[Order],
    *,
    gate: Checkpoint,
    on_batch: BatchHook | None = None,
    sleep: Callable[[float], None] = time.sleep,
    batch_limit: int = BATCH_LIMIT,
    fence: Fence | None = None,
) -> Execution:
    """Send ``plan`` in batches (cancels first), then read the book back and confirm every order against it.

    ``gate`` judges the plan first: when it refuses any action, ``UnsafePlanError`` names each and nothing is sent.

    ``book_before`` is the open-order list the plan was computed from: orders not in it are the new ones.
    ``on_batch(index, request, answer, error)`` is called after each batch, for the state store. ``batch_limit``
    caps the cancels and the placements of one batch (the deployment's ``max_batch``). ``fence()`` is called right
    before each batch; if it raises ``StateError`` (``LeaseLost``) the batch is not sent: with nothing sent yet the
    error propagates, otherwise sending stops and what was sent is read back (``fenced`` is set).
    """
    refused = gate.refusals(plan.actions)
    if refused:
        for refusal in refused:
            log.error("pre-trade gate: %s", refusal.sentence())
        raise UnsafePlanError(refused_message(refused))
    answers: list[BatchAnswer] = []
    failures: dict[ActionKind, list[ResultGroup]] = {ActionKind.PLACE: [], ActionKind.CANCEL: []}
    sent: list[Batch] = []
    error: str | None = None
    lost: Batch | None = None
    may_land_late = False
    fenced = False
    for index, batch in enumerate(plan.batches(batch_limit)):
        try:
            if fence is not None:
                fence()
            answer = exchange.replace(rules, batch.cancel_ids, batch.place)
        except StateError as exc:
            # The fence refused (here, or in the client's last check before the request leaves): nothing of this
            # batch was sent. With nothing sent at all the error ends the pass; otherwise read back what was sent.
            if not sent:
                raise
            error, fenced = f"batch {index + 1} not sent: {exc}", True
            break
        except OutcomeUnknown as exc:
            sent.append(batch)
            lost, may_land_late = batch, exc.may_land_late
            error = f"answer lost, reading the book back: {exc}"
            _notify(on_batch, index, exc.request, None, str(exc))
            break
        except RejectedError as exc:
            sent.append(batch)
            group = ResultGroup(code=exc.code or "?", message=str(exc))
            failures[ActionKind.PLACE].append(group)
            failures[ActionKind.CANCEL].append(group)
            _notify(on_batch, index, exc.request, None, str(exc))
            continue
        except ExchangeError as exc:
            # Refused before it could apply (transient, rate limit, auth, clock, a bad request): nothing of this
            # batch happened. With nothing sent at all the pass simply failed; otherwise report what was sent.
            _notify(on_batch, index, exc.request, None, str(exc))
            if not sent:
                raise
            error = f"batch {index + 1} not sent: {exc}"
            break
        sent.append(batch)
        answers.append(answer)
        for kind, group in failure_groups(answer, batch):
            failures[kind].append(group)
        _notify(on_batch, index, answer.request, answer, None)

    if not sent:
        return Execution(outcomes=(), confirmed=False, error=error, answers=tuple(answers))
    if error is None:
        settled_outcomes = from_answers(plan, sent, answers, book_before)
        if settled_outcomes is not None:
            return Execution(outcomes=settled_outcomes, confirmed=True, answers=tuple(answers))
    try:
        book_after = read_back(exchange, rules.symbol, sleep=sleep)
    except ExchangeError as exc:
        reason = f"book could not be read back: {exc}"
        return Execution(
            outcomes=all_unknown(plan, sent, reason),
            confirmed=False,
            error=f"{error}; {reason}" if error else reason,
            answers=tuple(answers),
            may_land_late=may_land_late,
            fenced=fenced,
        )
    outcomes = confirm(exchange, rules.symbol, plan, sent, answers, failures, book_before, book_after, lost=lost)
    settled = not any(o.status is OutcomeStatus.UNKNOWN for o in outcomes)
    return Execution(
        outcomes=outcomes,
        confirmed=settled,
        book_after=book_after,
        error=error,
        answers=tuple(answers),
        may_land_late=may_land_late and not settled,
        fenced=fenced,
    )


def from_answers(
    plan: Plan, sent: Sequence[Batch], answers: Sequence[BatchAnswer], book_before: Sequence[Order]
) -> tuple[OrderOutcome, ...] | None:
    """Every sent order's outcome as the answers settle it, or None when one answer leaves anything open.

    Settled means (per batch): an answer came, no group failed, the cancelled ids are exactly the batch's cancels
    and the new ids are distinct, unknown before the pass and exactly as many as its placements.
    """
    if len(answers) != len(sent):
        return None
    before = {o.id for o in book_before}
    placed_ids: list[list[str]] = []
    for batch, answer in zip(sent, answers, strict=True):
        if not all(g.ok for g in (*answer.place, *answer.cancel)):
            return None
        cancels = set(batch.cancel_ids)
        named = [oid for g in (*answer.place, *answer.cancel) for oid in g.order_ids]
        new = [oid for g in answer.place for oid in g.order_ids if oid not in cancels]
        if {oid for oid in named if oid in cancels} != cancels or len(new) != len(batch.place):
            return None
        if len(set(new)) != len(new) or before.intersection(new):
            return None
        if any(oid not in cancels for g in answer.cancel for oid in g.order_ids):
            return None
        placed_ids.append(new)
    by_id = cancel_actions(plan)
    outcomes = [
        OrderOutcome(ActionKind.CANCEL, a.side, a.price, a.volume, OutcomeStatus.CANCELLED, oid)
        for batch in sent
        for oid in batch.cancel_ids
        for a in (by_id[oid],)
    ]
    outcomes += [
        placed_outcome(target, oid)
        for batch, ids in zip(sent, placed_ids, strict=True)
        for target, oid in zip(batch.place, ids, strict=True)
    ]
    return tuple(outcomes)


def _notify(
    hook: BatchHook | None, index: int, request: BatchRequest | None, answer: BatchAnswer | None, error: str | None
) -> None:
    # Recording must never stop a pass between sending a batch and reading the book back.
    if hook is None:
        return
    try:
        hook(index, request, answer, error)
    except Exception:
        log.exception("could not record batch %d", index + 1)
