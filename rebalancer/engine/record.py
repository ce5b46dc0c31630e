"""Record: a pass's outcome as one value (``PassOutcome``), which the store writes in one transaction.

Every applying pass ends in exactly one outcome: quiet (nothing to send), sent (whatever the answers said), fenced
or refused before sending, or failed before sending (with its error, so ``history`` shows every pass that ran).
"""

from __future__ import annotations

import logging
from datetime import datetime

from rebalancer.core.fills import Learnt
from rebalancer.core.plan import Plan
from rebalancer.engine.executor import Execution, OrderOutcome
from rebalancer.engine.send import Ahead, Sent
from rebalancer.engine.tracker import AfterSend, after_send, watch_change
from rebalancer.errors import LeaseLost, RebalancerError
from rebalancer.job import Job
from rebalancer.logs import redact
from rebalancer.models import format_decimal
from rebalancer.state.outcome import Origin, OwnershipChange, PassOutcome
from rebalancer.state.records import OrderResult
from rebalancer.state.store import StateStore
from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult

log = logging.getLogger(__name__)


def quiet_outcome(
    job: Job, mode: Mode, plan: Plan, ahead: Ahead, learnt: Learnt, duration_ms: int, now: datetime, origin: Origin
) -> PassOutcome:
    """A pass with nothing to send: its plan's summary, the ownership and fills ledger changes it learnt."""
    watch = watch_change(learnt, plan)
    return PassOutcome(
        job.name,
        mode,
        now,
        ahead.pass_id,
        PassResult.NO_CHANGES,
        plan.summary,
        warnings=plan.warnings,
        duration_ms=duration_ms,
        reference_price=reference_of(plan),
        fingerprint=plan.fingerprint,
        ownership=ahead.ownership,
        fills=watch.fills,
        watch=watch.watch,
        forget=watch.forget,
        recorded_at=now,
        origin=origin,
    )


def sent_outcome(
    job: Job,
    mode: Mode,
    plan: Plan,
    ahead: Ahead,
    sent: Sent,
    learnt: Learnt,
    duration_ms: int,
    now: datetime,
    origin: Origin,
    on_record: frozenset[str] | None = None,
) -> PassOutcome:
    """A pass that went to send: the batches, per-order results, ownership after the send, the fills ledger and the
    rejection backoff. When ``execute`` refused before sending, the in-flight record closes with nothing in it.

    ``on_record``: the levels with a rejection on record when the pass read the store (None: not known); a level
    placed now has its record cleared, and one without a record has nothing to clear (no statement for it).
    """
    execution = sent.execution
    if execution is None:
        error = sent.error
        result = PassResult.FENCED if isinstance(error, LeaseLost) else PassResult.ERROR
        after = AfterSend(close=ahead.in_flight)
        summary = dict(plan.summary)
        outcomes: tuple[OrderOutcome, ...] = ()
        message = None if error is None else str(error)
    else:
        result = result_of(execution)
        after = after_send(job, ahead.in_flight, execution, now)
        summary = summary_of(plan, execution)
        outcomes = execution.outcomes
        message = execution.error
    watch = watch_change(learnt, plan, outcomes)
    places = [o for o in outcomes if o.action is ActionKind.PLACE and o.level]
    own = ahead.ownership
    return PassOutcome(
        job.name,
        mode,
        now,
        ahead.pass_id,
        result,
        summary,
        warnings=plan.warnings,
        error=message,
        duration_ms=duration_ms,
        reference_price=reference_of(plan),
        fingerprint=plan.fingerprint,
        batches=sent.batches,
        results=tuple(order_result(o) for o in outcomes),
        ownership=OwnershipChange(own.closes, own.track, own.untrack + after.untrack),
        close=after.close,
        placed=after.placed,
        late=after.late,
        fills=watch.fills,
        watch=watch.watch,
        forget=watch.forget,
        rejected=tuple((o.level, o.code, o.message) for o in places if o.status is OutcomeStatus.REJECTED and o.level),
        cleared=tuple(
            o.level
            for o in places
            if o.status is OutcomeStatus.PLACED and o.level and (on_record is None or o.level in on_record)
        ),
        recorded_at=now,
        origin=origin,
    )


def record_failure(
    store: StateStore,
    job: Job,
    mode: Mode,
    plan: Plan | None,
    ahead: Ahead,
    exc: Exception,
    duration_ms: int,
    now: datetime,
    origin: Origin,
) -> None:
    """Record a pass that failed before it sent anything, with its error; an open in-flight record closes empty.

    A store that cannot record it (the store may be what failed) is logged; the pass's own error is what the
    caller sees.
    """
    error = str(exc) if isinstance(exc, RebalancerError) else f"{type(exc).__name__}: {exc}"
    outcome = PassOutcome(
        job.name,
        mode,
        now,
        ahead.pass_id,
        PassResult.ERROR,
        plan.summary if plan is not None else {},
        warnings=plan.warnings if plan is not None else (),
        error=redact(error),
        duration_ms=duration_ms,
        reference_price=reference_of(plan) if plan is not None else None,
        fingerprint=plan.fingerprint if plan is not None else None,
        ownership=ahead.ownership,
        close=ahead.in_flight,
        recorded_at=now,
        origin=origin,
    )
    try:
        store.record_outcome(outcome)
    except Exception:
        log.exception("could not record the failed pass", extra={"job": job.name})


def summary_of(plan: Plan, execution: Execution) -> dict[str, int]:
    """The planned place/cancel/keep counts and the count of each outcome status."""
    return {
        **{kind: plan.summary.get(kind, 0) for kind in (ActionKind.PLACE, ActionKind.CANCEL, ActionKind.KEEP)},
        **{status: execution.count(status) for status in OutcomeStatus},
    }


def result_of(execution: Execution) -> PassResult:
    """How a pass that sent ended: fenced, unknown_outcome, rejected or ok, in that precedence."""
    if execution.fenced:
        return PassResult.FENCED
    if not execution.confirmed or execution.count(OutcomeStatus.UNKNOWN):
        return PassResult.UNKNOWN_OUTCOME
    if execution.rejected or execution.error:
        return PassResult.REJECTED
    return PassResult.OK


def order_result(outcome: OrderOutcome) -> OrderResult:
    """One order's outcome as the store keeps it (decimals as exact text)."""
    return OrderResult(
        action=outcome.action,
        side=outcome.side.value,
        price=format_decimal(outcome.price),
        volume=format_decimal(outcome.volume),
        order_id=outcome.order_id,
        status=outcome.status,
        code=outcome.code,
        message=outcome.message,
    )


def reference_of(plan: Plan) -> str | None:
    """The reference to record: what the market showed, even when the plan did not trust it (None if unread)."""
    if plan.observed_reference is not None:
        return format_decimal(plan.observed_reference)
    if plan.paused is None and plan.reference_price > 0:  # a saved plan written before observed_reference
        return format_decimal(plan.reference_price)
    return None
