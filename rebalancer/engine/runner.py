"""One reconcile pass: gather → decide → [send → record].

``plan``, ``apply``, ``cancel``, ``run --once``, every daemon tick and every cluster task call ``run_pass``; only
``apply=True`` reaches the executor, so a dry run cannot send anything by construction. A writing pass runs under a
lease and hands its fence (``rebalancer.engine.lease``) to the executor: a pass that lost its lease sends nothing
more and ends ``fenced``.

``gather`` reads the market and, in one transaction, what the guards and the order tracker need (a dry run too,
which records nothing); ``decide`` makes the plan; ``send`` commits the write-ahead when the plan places orders or
pauses the job, then sends; ``record`` makes one ``PassOutcome``, written in one transaction. A pass records the
reference it *observed* (not the one it trusted), so a genuine move pauses exactly one pass.

Requests: a quiet pass reads the ticker and the open orders (the symbol rules are cached); the balances only when
the plan places more than its cancels release; the open orders again before sending only after a person was asked;
the book back after a write only when the answer left an order unsettled (see ``rebalancer.engine.readback``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rebalancer.core import blind
from rebalancer.core.blind import Sight
from rebalancer.core.fills import Fill
from rebalancer.core.gate import Checkpoint
from rebalancer.core.plan import Plan, plan_fingerprint
from rebalancer.engine import gather as gathering
from rebalancer.engine.decide import STALE_PLAN, cancel_plan_job, decide, draft
from rebalancer.engine.executor import Execution, Fence
from rebalancer.engine.gather import read_snapshot
from rebalancer.engine.record import quiet_outcome, record_failure, sent_outcome
from rebalancer.engine.send import Ahead, committed, send, write_ahead
from rebalancer.errors import UnsafePlanError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot
from rebalancer.notify import Notifier, post
from rebalancer.state.outcome import Origin, OwnershipChange
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, NotifyKind, PassResult, WakeReason

__all__ = ["STALE_PLAN", "Approve", "JobPaused", "PassReport", "cancel_plan_job", "read_snapshot", "run_pass"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PassReport:
    """What one pass saw and did. ``result``: no_changes, planned, ok, rejected, unknown_outcome, declined or fenced.

    ``fenced``: the pass lost its lease before a write and stopped sending (``error`` says why).
    """

    job: str
    mode: Mode
    plan: Plan
    snapshot: MarketSnapshot
    execution: Execution | None
    result: PassResult
    duration_ms: int
    error: str | None = None
    fills: tuple[Fill, ...] = ()
    gate_refusals: int = 0  # planned actions the pre-trade gate dropped (a planner bug: counted and logged)

    @property
    def failed(self) -> bool:
        """True when something was refused, left unconfirmed or not sent for want of the lease: exit non-zero."""
        return self.result.failed


Approve = Callable[[Plan], bool]


class JobPaused(Exception):
    """A scheduler's pass (``run_pass(honour_pause=True)``) found the job's pause switch on in its store read: it
    stopped there, nothing written and nothing sent. Not a failure: the scheduler counts it as a paused job's skip.
    """


def run_pass(
    job: Job,
    exchange: Exchange,
    store: StateStore,
    *,
    apply: bool,
    mode: Mode | None = None,
    approve: Approve | None = None,
    recheck: bool = False,
    saved_plan: Plan | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    fence: Fence | None = None,
    notifier: Notifier | None = None,
    wake: WakeReason | None = None,
    honour_pause: bool = False,
) -> PassReport:
    """Run one pass of ``job``. With ``apply=False`` nothing is sent or recorded; the plan is returned.

    ``approve`` sees the plan before anything is sent and may decline it; with ``recheck`` (it prompted a person)
    the open orders are read again after it and the plan is refused if they changed. A ``saved_plan`` is used
    instead of a fresh one only if the open orders (and job file) still match its fingerprint; otherwise
    ``UnsafePlanError``.
    ``wall`` is the clock of the pass record and the rejection backoff (tests step it instead of waiting).
    ``fence`` is checked right before every write (see ``rebalancer.engine.lease``); every caller that sends passes the
    fence of the lease it holds.
    A pass that trips ``limits.max_loss`` pauses the job and, once it is over (its cancels sent, or failed), tells
    the job's webhook through ``notifier``; so does an applying pass that finds the job blind for
    ``limits.max_blind``. Every session that may send gives one (``rebalancer.engine.lease``: the command's or the
    daemon's; cluster members their own); without one (a simulation) nothing is posted.
    ``wake`` is why a scheduler ran the pass (None: a command did); the pass record keeps it.
    With ``honour_pause`` (a scheduler's pass) a job whose pause switch the store read finds on raises ``JobPaused``
    before anything is written or sent: a pause committed before that read stops the pass.
    """
    tripped: list[tuple[NotifyKind, str]] = []
    try:
        return _run_pass(
            job,
            exchange,
            store,
            apply=apply,
            mode=mode,
            approve=approve,
            recheck=recheck,
            saved_plan=saved_plan,
            clock=clock,
            wall=wall,
            fence=fence,
            tripped=tripped,
            wake=wake,
            honour_pause=honour_pause,
        )
    finally:
        for kind, message in tripped if notifier is not None else ():
            post(job, kind, message, notifier)


def _run_pass(
    job: Job,
    exchange: Exchange,
    store: StateStore,
    *,
    apply: bool,
    mode: Mode | None,
    approve: Approve | None,
    recheck: bool,
    saved_plan: Plan | None,
    clock: Callable[[], float],
    wall: Callable[[], datetime],
    fence: Fence | None,
    tripped: list[tuple[NotifyKind, str]],
    wake: WakeReason | None,
    honour_pause: bool,
) -> PassReport:
    """``run_pass`` without the telling: a pause for ``limits.max_loss`` or going blind is added to ``tripped``."""
    mode = mode or (Mode.APPLY if apply else Mode.PLAN)
    started = clock()
    plan: Plan | None = None
    ahead = Ahead(None, None, OwnershipChange())
    origin = Origin(wake)
    try:
        gathered = gathering.gather(job, exchange, store, wall)
        if honour_pause and gathered.inputs.paused:
            raise JobPaused(f"job {job.name} is paused; nothing sent")
        origin = Origin(wake, gathered.snapshot.ticker.source)
        ahead = Ahead(None, None, gathered.tracked.ownership)
        drafted = draft(job, gathered)
        snapshot = gathering.balances(exchange, gathered.snapshot, drafted)
        decision = decide(job, gathered, drafted, snapshot, saved_plan)
        plan = decision.plan
    except JobPaused:
        raise
    except Exception as exc:
        if apply:
            record_failure(store, job, mode, plan, ahead, exc, _ms(clock() - started), wall(), origin)
        raise
    learnt = gathered.learnt

    def report(result: PassResult, execution: Execution | None = None, error: str | None = None) -> PassReport:
        duration, refused = _ms(clock() - started), len(decision.refused)
        return PassReport(
            job.name, mode, decision.plan, snapshot, execution, result, duration, error, learnt.fills, refused
        )

    if apply and decision.pause is not None:
        log.warning("loss limit: %s", plan.paused, extra={"job": job.name})
        tripped.append((NotifyKind.MAX_LOSS, decision.pause[1]))
    if not apply:
        return report(PassResult.PLANNED if plan.has_changes else PassResult.NO_CHANGES)
    if approve is not None and plan.has_changes and not approve(plan):
        if decision.pause is not None:  # declined, nothing sent: the loss limit's pause holds all the same
            store.pause_for_risk(job.name, decision.pause[0], decision.pause[1], wall())
        return report(PassResult.DECLINED)
    tripped.extend(_blind_turn(job, gathered.inputs.sight, plan))  # this pass will be recorded: it may turn
    # Paused before sending the cancels: if sending fails, the job stays paused all the same.
    ahead, fence = write_ahead(job, store, mode, decision, ahead.ownership, wall(), origin, fence)
    if not plan.has_changes:
        store.record_outcome(quiet_outcome(job, mode, plan, ahead, learnt, _ms(clock() - started), wall(), origin))
        return report(PassResult.NO_CHANGES)
    try:
        # A person may have looked at the plan for minutes: send it only if the book is still the one it came from.
        # Approved without a prompt (``--yes``), the book read a moment ago is fresh enough.
        if approve is not None and recheck:
            current = exchange.open_orders(job.symbol)
            if plan_fingerprint(job.source_hash, current, plan.actions) != plan.fingerprint:
                raise UnsafePlanError("open orders changed while the plan was shown; run apply again")
    except Exception as exc:
        record_failure(store, job, mode, plan, ahead, exc, _ms(clock() - started), wall(), origin)
        raise
    sent = send(job, exchange, snapshot, plan, Checkpoint(job, decision.book), fence)
    ahead = committed(ahead, fence)
    # A plan shown to a person may be sent minutes after the read: clear every placed level's record, as before.
    on_record = gathered.inputs.rejections_on_record if approve is None else None
    outcome = sent_outcome(job, mode, plan, ahead, sent, learnt, _ms(clock() - started), wall(), origin, on_record)
    store.record_outcome(outcome)
    if sent.execution is None:
        if outcome.result is not PassResult.FENCED and sent.error is not None:
            raise sent.error
        return report(PassResult.FENCED, error=outcome.error)
    return report(outcome.result, sent.execution, sent.execution.error)


def _blind_turn(job: Job, sight: Sight, plan: Plan) -> list[tuple[NotifyKind, str]]:
    """Log a job going blind or seeing again (once each, against its last recorded pass); going blind is told."""
    turned = blind.turn(job, sight, plan.blind)
    if turned is blind.Turn.ENTERED and plan.blind is not None:
        log.warning("%s", plan.blind.sentence(), extra={"job": job.name})
        return [(NotifyKind.BLIND, plan.blind.sentence())]
    if turned is blind.Turn.LEFT:
        log.info("a trusted market price returned: no longer blind, placements resume", extra={"job": job.name})
    return []


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
