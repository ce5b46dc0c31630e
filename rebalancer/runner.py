"""One reconcile pass: snapshot → ladder → diff → [balances] → plan → [execute → read back] → record.

``plan``, ``apply``, ``cancel``, ``run --once`` and every daemon tick call ``run_pass``; only ``apply=True`` reaches the
executor, so a dry run cannot send anything by construction. A writing pass runs under a lease and hands its fence
(``rebalancer.lease``) to the executor: a pass that lost its lease sends nothing and ends ``fenced``.

Before planning, every pass (the dry run too, which records nothing) reads what the guards of ``rebalancer.core.guards``
need from the state store: the reference the job's last pass observed and the levels held back after repeated
rejections. A pass records the reference it *observed* (not the one it trusted), so a genuine move pauses exactly
one pass; after sending, it counts each rejected placement against its level and clears each placed one.

Every plan passes the pre-trade gate (``rebalancer.core.gate``) against the book the pass read: a planned pass
drops what it refuses (a planner bug: logged at error, counted in ``PassReport.gate_refusals``), a saved plan with
any refused action is refused whole, and the executor checks the same gate again before its first batch.

Requests: a quiet pass reads the ticker and the open orders (the symbol rules are cached); the balances only when
the plan places more than its cancels release; the open orders again before sending only after a person was asked;
the book back after a write only when the answer left an order unsettled (see ``rebalancer.executor``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from rebalancer.core import gate
from rebalancer.core.diff import fits
from rebalancer.core.fills import Fill, Learnt, Seen, learn_fills
from rebalancer.core.lifecycle import Lifecycle
from rebalancer.core.loss import loss_of, mark_price, net_base
from rebalancer.core.plan import Plan, draft_plan, finish_plan, plan_fingerprint
from rebalancer.core.saved_plan import check_saved_plan
from rebalancer.defaults import CLOCK_SLACK_MS, IN_FLIGHT_GRACE, LATE_WRITE_WINDOW
from rebalancer.errors import LeaseLost, RebalancerError, UnsafePlanError
from rebalancer.exchange import Exchange, reference
from rebalancer.executor import Execution, Fence, OrderOutcome, execute
from rebalancer.job import Job, Ownership
from rebalancer.logs import redact
from rebalancer.models import BatchAnswer, BatchRequest, MarketSnapshot, Order, format_decimal
from rebalancer.notify import Notifier, post
from rebalancer.state.passio import PassInputs
from rebalancer.state.store import OrderResult, StateStore
from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult, PausedBy

log = logging.getLogger(__name__)

STALE_PLAN = (
    "saved plan is stale or was edited: the open orders, the job file or the plan's actions changed since it "
    "was made; run plan again"
)


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


def read_snapshot(exchange: Exchange, symbol: str, *, balances: bool = True) -> MarketSnapshot:
    """What a pass reads before planning: symbol rules, ticker, every open order and (with ``balances``) balances.

    A pass reads the balances later, and only when its placements need them (``Draft.needs_balances``).
    """
    rules = exchange.rules(symbol)
    ticker = exchange.ticker(symbol)
    orders = exchange.open_orders(symbol)
    held = exchange.balances() if balances else None
    return MarketSnapshot(rules=rules, ticker=ticker, balances=held, open_orders=orders)


@dataclass(frozen=True, slots=True)
class InFlightView:
    """What open in-flight batches say about the book: our orders found on it, and placements not seen yet."""

    adopted: frozenset[str]
    pending: tuple[Order, ...]


def with_reference(job: Job, exchange: Exchange, snapshot: MarketSnapshot) -> MarketSnapshot:
    """The snapshot with the other venue's quote (or why there is none) for a job whose reference names one."""
    source = job.reference.source
    if source is None:
        return snapshot
    sandbox_url = getattr(exchange, "base_url", None) if job.exchange.is_sandbox else None
    try:
        quote = reference.SHARED.quote(source, job.symbol, sandbox_url=sandbox_url)
    except reference.ReferenceUnavailable as problem:
        return dataclasses.replace(snapshot, reference_problem=str(problem))
    return dataclasses.replace(snapshot, reference_quote=quote)


def settle_in_flight(
    job: Job, store: StateStore, snapshot: MarketSnapshot, inputs: PassInputs, *, write: bool, now: datetime
) -> InFlightView:
    """Match open in-flight batches (sent, never confirmed) against the book.

    Open orders that match a batch's placements and were created after it are ours. A record stays open until all
    its placements are found or ``IN_FLIGHT_GRACE`` has passed, since a write whose answer was lost may land late;
    until then its unseen placements are *pending*, so the pass does not place their levels a second time. With
    ``write=False`` (a dry run) nothing is written to the store.
    """
    tracked = inputs.tracked
    claimed: set[str] = set()
    pending: list[Order] = []
    for in_flight in inputs.in_flight:
        wanted = [(p.side, p.price, p.volume) for p in in_flight.placements]
        since_ms = int(in_flight.created_at.timestamp() * 1000) - CLOCK_SLACK_MS
        adopted = []
        for order in sorted(snapshot.open_orders, key=lambda o: _id_key(o.id)):
            key = (order.side, order.price, order.volume)
            fresh = order.created_at is None or order.created_at >= since_ms
            if order.id not in tracked and order.id not in claimed and key in wanted and fresh:
                wanted.remove(key)
                claimed.add(order.id)
                adopted.append(order.id)
        expired = now - in_flight.created_at > IN_FLIGHT_GRACE
        if in_flight.late_until is not None and now < in_flight.late_until:
            pending += [Order(f"in-flight-{in_flight.id}", side, price, volume) for side, price, volume in wanted]
        if write and (not wanted or expired):
            store.end_in_flight(in_flight.id, adopted if job.ownership is Ownership.TRACKED else ())
        elif write and adopted and job.ownership is Ownership.TRACKED:
            store.track(job.name, adopted)
    return InFlightView(adopted=frozenset(claimed), pending=tuple(pending))


def owned_ids(
    job: Job,
    store: StateStore,
    snapshot: MarketSnapshot,
    view: InFlightView,
    tracked_ids: frozenset[str],
    *,
    write: bool,
) -> frozenset[str] | None:
    """The ids the job may touch: None (all) for ``symbol`` ownership, else its tracked and adopted ids.

    Tracked ids that are no longer open are forgotten (with ``write``).
    """
    if job.ownership is Ownership.SYMBOL:
        return None
    tracked = set(tracked_ids) | view.adopted
    open_ids = {o.id for o in snapshot.open_orders}
    gone = tracked - open_ids
    if gone and write:
        store.untrack(job.name, sorted(gone, key=_id_key))
    return frozenset(tracked & open_ids)


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


def _id_key(order_id: str) -> tuple[int, str]:
    return (int(order_id), "") if order_id.isdigit() else (0, order_id)


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
) -> PassReport:
    """Run one pass of ``job``. With ``apply=False`` nothing is sent or recorded; the plan is returned.

    ``approve`` sees the plan before anything is sent and may decline it; with ``recheck`` (it prompted a person)
    the open orders are read again after it and the plan is refused if they changed. A ``saved_plan`` is used
    instead of a fresh one only if the open orders (and job file) still match its fingerprint; otherwise
    ``UnsafePlanError``.
    ``wall`` is the clock of the pass record and the rejection backoff (tests step it instead of waiting).
    ``fence`` is checked right before every write (see ``rebalancer.lease``); every caller that sends passes the
    fence of the lease it holds.
    A pass that trips ``limits.max_loss`` pauses the job and, once it is over (its cancels sent, or failed), tells
    the job's webhook through ``notifier``. Every session that may send gives one (``rebalancer.lease``: the
    command's or the daemon's; cluster members their own); without one (a simulation) nothing is posted.
    """
    tripped: list[str] = []
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
        )
    finally:
        for message in tripped if notifier is not None else ():
            post(job, "max_loss", message, notifier)


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
    tripped: list[str],
) -> PassReport:
    """``run_pass`` without the telling: a pause for ``limits.max_loss`` is added to ``tripped``."""
    mode = mode or (Mode.APPLY if apply else Mode.PLAN)
    started = clock()
    plan: Plan | None = None
    try:
        snapshot = read_snapshot(exchange, job.symbol, balances=job.inventory is not None)
        snapshot = with_reference(job, exchange, snapshot)
        now = wall()
        inputs = store.pass_inputs(job.name, now)
        view = settle_in_flight(job, store, snapshot, inputs, write=apply, now=now)
        owned = owned_ids(job, store, snapshot, view, inputs.tracked, write=apply)
        learnt = learn_own_fills(job, exchange, inputs.watched, snapshot, owned, now)
        draft = draft_plan(
            job,
            snapshot,
            owned,
            previous_reference=inputs.last_reference,
            held_levels=inputs.held_levels,
            life=lifecycle_of(job, inputs.last_fills, learnt.fills, now),
        )
        if draft.needs_balances and snapshot.balances is None:
            snapshot = dataclasses.replace(snapshot, balances=exchange.balances(draft.funding_need))
        plan = finish_plan(draft, snapshot.balances)
        plan = without_awaited(plan, awaited_levels(job, plan, view.pending), snapshot.open_orders)
        plan = with_loss_limit(job, store, plan, snapshot, owned, learnt.fills)
        plan = with_exchange_errors(job, plan, learnt.refused)
        ticker = snapshot.ticker
        levels = gate.standing_levels(draft.result)  # which level each owned order stands for, by this pass
        book = gate.book_of(
            snapshot.rules, snapshot.open_orders, owned, plan.reference_price, ticker.bid, ticker.ask, levels
        )
        if saved_plan is not None:
            plan = _checked_saved_plan(job, saved_plan, plan, snapshot, owned)
            refused = gate.check(job, book, plan.actions)
            if refused:
                raise UnsafePlanError(f"saved plan {gate.refused_message(refused)}")
        else:
            plan, refused = gate.admit(job, book, plan)
            for refusal in refused:
                log.error("pre-trade gate dropped %s (a planner bug)", refusal.sentence(), extra={"job": job.name})
    except Exception as exc:
        if apply:
            _record_failure(store, job, mode, plan, exc, _ms(clock() - started), wall())
        raise
    if apply and plan.paused_by is PausedBy.MAX_LOSS and plan.loss is not None:
        # Paused before sending the cancels: if sending fails, the job stays paused all the same.
        store.set_paused(job.name, True)
        store.set_risk(job.name, paused_by=PausedBy.MAX_LOSS, reason=plan.paused, now=wall())
        log.warning("loss limit: %s", plan.paused, extra={"job": job.name})
        tripped.append(plan.paused or "")
    counted = len(refused)
    if not apply:
        result = PassResult.PLANNED if plan.has_changes else PassResult.NO_CHANGES
        duration = _ms(clock() - started)
        return PassReport(
            job.name, mode, plan, snapshot, None, result, duration, fills=learnt.fills, gate_refusals=counted
        )
    if not plan.has_changes:
        _record_quiet(store, job, mode, plan, _ms(clock() - started), wall(), learnt)
        duration = _ms(clock() - started)
        result = PassResult.NO_CHANGES
        return PassReport(
            job.name, mode, plan, snapshot, None, result, duration, fills=learnt.fills, gate_refusals=counted
        )
    if approve is not None:
        if not approve(plan):  # the user said no: like a dry run, nothing to record
            duration = _ms(clock() - started)
            result = PassResult.DECLINED
            return PassReport(
                job.name, mode, plan, snapshot, None, result, duration, fills=learnt.fills, gate_refusals=counted
            )
        # A person may have looked at the plan for minutes: send it only if the book is still the one it came from.
        # Approved without a prompt (``--yes``), the book read a moment ago is fresh enough.
        try:
            current = exchange.open_orders(job.symbol) if recheck else ()
            if recheck and plan_fingerprint(job.source_hash, current, plan.actions) != plan.fingerprint:
                raise UnsafePlanError("open orders changed while the plan was shown; run apply again")
        except Exception as exc:
            _record_failure(store, job, mode, plan, exc, _ms(clock() - started), wall())
            raise
    checkpoint = gate.Checkpoint(job, book)
    report = _execute_and_record(
        job, exchange, store, mode, plan, snapshot, started, clock, wall, fence, learnt, checkpoint
    )
    return dataclasses.replace(report, gate_refusals=counted)


def with_loss_limit(
    job: Job,
    store: StateStore,
    plan: Plan,
    snapshot: MarketSnapshot,
    owned: frozenset[str] | None,
    new_fills: Sequence[Fill],
) -> Plan:
    """The plan with its running loss (``limits.max_loss``); past the limit, a plan that cancels every order the
    job owns, places nothing and says why (``paused_by: max_loss``). Unchanged without the limit.

    The open position is marked at the most pessimistic price the pass has (``rebalancer.core.loss.mark_price``):
    the trusted reference, the one observed now and this venue's own book, so a reference source that is down or
    stale never hides a loss. With no price at all the plan says the loss is not known.
    """
    limit = job.limits.max_loss
    if limit is None:
        return plan
    since = store.count_since(job.name)
    recorded = store.fills(job.name, since)
    known = {(f.order_id, f.deal_volume) for f in recorded}
    fills = recorded + [f for f in new_fills if (f.order_id, f.deal_volume) not in known]
    ticker = snapshot.ticker
    mark = mark_price(net_base(fills), (plan.reference_price, plan.observed_reference), ticker.bid, ticker.ask)
    if mark is None:
        why = "limits.max_loss: no price to mark the open position at (no reference, no book); the loss is not known"
        return dataclasses.replace(plan, warnings=(*plan.warnings, why))
    loss = loss_of(fills, mark, limit, since)
    if not loss.tripped:
        return dataclasses.replace(plan, loss=loss)
    stop = finish_plan(draft_plan(cancel_plan_job(job), snapshot, owned), snapshot.balances)
    why = (
        f"placements paused: {loss.sentence(plan.price_places)} is past limits.max_loss; "
        "the job's orders are cancelled and it is paused until `rebalancer resume`"
    )
    return dataclasses.replace(
        stop,
        reference_price=plan.reference_price,
        observed_reference=plan.observed_reference,
        warnings=(why, *stop.warnings),
        paused=why,
        paused_by=PausedBy.MAX_LOSS,
        loss=loss,
    )


def with_exchange_errors(job: Job, plan: Plan, refused: Sequence[str]) -> Plan:
    """The plan warning of every order row the pass did not learn from (an exchange error), each logged at error."""
    for line in refused:
        log.error("order row refused: %s", line, extra={"job": job.name})
    return dataclasses.replace(plan, warnings=(*plan.warnings, *refused)) if refused else plan


def lifecycle_of(
    job: Job, last_fills: Mapping[str, datetime], new_fills: Sequence[Fill], now: datetime
) -> Lifecycle | None:
    """What ``rebalancer.core.lifecycle`` needs for this pass: ``now``, the job's settings and each level's last
    fill (recorded ones and the ones this pass just learnt, which a dry run does not record); None without either
    setting."""
    settings = job.lifecycle
    if settings.max_age_seconds is None and settings.fill_delay_seconds is None:
        return None
    latest = dict(last_fills)
    for fill in new_fills:
        if fill.level is not None and (fill.level not in latest or fill.at > latest[fill.level]):
            latest[fill.level] = fill.at
    max_age, delay = _span(settings.max_age_seconds), _span(settings.fill_delay_seconds)
    return Lifecycle(now=now, max_age=max_age, fill_delay=delay, last_fill=latest)


def _span(seconds: Decimal | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=float(seconds))


def learn_own_fills(
    job: Job,
    exchange: Exchange,
    watched: Mapping[str, Seen],
    snapshot: MarketSnapshot,
    owned: frozenset[str] | None,
    now: datetime,
) -> Learnt:
    """The fills of the job's orders since the last recorded pass (``rebalancer.core.fills``), nothing written.

    Watched orders that left the book are looked up with ``order_info`` (a read); one that cannot be read stays
    watched and is asked about again next pass.
    """
    mine = [o for o in snapshot.open_orders if owned is None or o.id in owned]
    listed = {o.id for o in snapshot.open_orders}
    left: dict[str, Order | None] = {}
    for order_id in sorted(set(watched) - listed, key=_id_key):
        try:
            left[order_id] = exchange.order_info(job.symbol, order_id)
        except RebalancerError:
            left[order_id] = None
    return learn_fills(watched, mine, left, now)


def _record_learnt(store: StateStore, job: Job, pass_id: int, learnt: Learnt, plan: Plan, now: datetime) -> None:
    """Store the pass's fills and the next watch list, each order with its level when the plan knows it."""
    levels = {a.order_id: a.level for a in plan.actions if a.order_id and a.level}
    watch = [dataclasses.replace(s, level=s.level or levels.get(s.order_id)) for s in learnt.watch]
    if not learnt.fills and not learnt.forget and {s.order_id: s for s in watch} == learnt.previous:
        return  # nothing new: a quiet pass stays one statement
    store.record_fills(job.name, pass_id, learnt.fills, watch, learnt.forget, now)


def _checked_saved_plan(
    job: Job, saved: Plan, fresh: Plan, snapshot: MarketSnapshot, owned: frozenset[str] | None
) -> Plan:
    """The saved plan, if it is unedited, the book still matches it, it touches only orders this job owns and
    its placements pass the job's guards as they stand now.

    It records the reference observed now, not the one of the saved plan, so the jump guard stays honest.
    """
    if saved.fingerprint != plan_fingerprint(job.source_hash, snapshot.open_orders, saved.actions):
        raise UnsafePlanError(STALE_PLAN)
    allowed = owned if owned is not None else {o.id for o in snapshot.open_orders}
    foreign = sorted(set(saved.cancel_ids) - allowed, key=_id_key)
    if foreign:
        raise UnsafePlanError(f"saved plan cancels orders this job does not own: {', '.join(foreign)}")
    check_saved_plan(job, saved, fresh, snapshot)
    return dataclasses.replace(saved, observed_reference=fresh.observed_reference)


def _execute_and_record(
    job: Job,
    exchange: Exchange,
    store: StateStore,
    mode: Mode,
    plan: Plan,
    snapshot: MarketSnapshot,
    started: float,
    clock: Callable[[], float],
    wall: Callable[[], datetime],
    fence: Fence | None,
    learnt: Learnt,
    checkpoint: gate.Checkpoint,
) -> PassReport:
    pass_id = store.start_pass(job.name, mode, wall())
    _record_learnt(store, job, pass_id, learnt, plan, wall())
    in_flight = None
    if plan.placements:
        in_flight = store.begin_in_flight(
            job.name,
            pass_id,
            [(t.side.value, format_decimal(t.price), format_decimal(t.volume)) for t in plan.placements],
        )

    def record(index: int, request: BatchRequest | None, answer: BatchAnswer | None, error: str | None) -> None:
        params = request.params() if request is not None else {"symbol": job.symbol}
        store.record_batch(pass_id, index, params, _answer_json(answer), error)

    try:
        execution = execute(
            exchange,
            snapshot.rules,
            plan,
            snapshot.open_orders,
            gate=checkpoint,
            on_batch=record,
            batch_limit=job.exchange.max_batch,
            fence=fence,
        )
    except RebalancerError as exc:
        if in_flight is not None:  # execute raises only when nothing was sent
            store.end_in_flight(in_flight, ())
        fenced = isinstance(exc, LeaseLost)
        store.finish_pass(
            pass_id,
            result=PassResult.FENCED if fenced else PassResult.ERROR,
            summary=plan.summary,
            warnings=plan.warnings,
            error=str(exc),
            duration_ms=_ms(clock() - started),
            reference_price=_ref(plan),
            fingerprint=plan.fingerprint,
        )
        if fenced:
            duration = _ms(clock() - started)
            return PassReport(
                job.name, mode, plan, snapshot, None, PassResult.FENCED, duration, str(exc), fills=learnt.fills
            )
        raise
    result = _result_of(execution)
    if in_flight is not None and execution.may_land_late:
        store.mark_in_flight_late(in_flight, wall() + LATE_WRITE_WINDOW)
    if execution.confirmed:
        placed = [o.order_id for o in execution.outcomes if o.status is OutcomeStatus.PLACED and o.order_id]
        cancelled = [o.order_id for o in execution.outcomes if o.status is OutcomeStatus.CANCELLED and o.order_id]
        if in_flight is not None:
            store.end_in_flight(in_flight, placed if job.ownership is Ownership.TRACKED else ())
        if job.ownership is Ownership.TRACKED:
            store.untrack(job.name, cancelled)
    store.record_results(pass_id, [_order_result(o) for o in execution.outcomes])
    placed_now = [o for o in execution.outcomes if o.status is OutcomeStatus.PLACED and o.order_id]
    if placed_now:
        store.record_fills(job.name, pass_id, (), [_seen_placed(o) for o in placed_now], (), wall())
    _record_backoff(store, job.name, execution, wall())
    summary: dict[str, int] = {
        **{kind: plan.summary.get(kind, 0) for kind in (ActionKind.PLACE, ActionKind.CANCEL, ActionKind.KEEP)},
        **{status: execution.count(status) for status in OutcomeStatus},
    }
    duration = _ms(clock() - started)
    store.finish_pass(
        pass_id,
        result=result,
        summary=summary,
        warnings=plan.warnings,
        error=execution.error,
        duration_ms=duration,
        reference_price=_ref(plan),
        fingerprint=plan.fingerprint,
    )
    return PassReport(job.name, mode, plan, snapshot, execution, result, duration, execution.error, learnt.fills)


def _seen_placed(outcome: OrderOutcome) -> Seen:
    assert outcome.order_id is not None
    return Seen(outcome.order_id, outcome.side, outcome.price, level=outcome.level, volume=outcome.volume)


def _record_backoff(store: StateStore, job: str, execution: Execution, now: datetime) -> None:
    """Count rejected placements against their levels; a level that placed starts afresh."""
    places = [o for o in execution.outcomes if o.action is ActionKind.PLACE and o.level]
    rejected = [(o.level, o.code, o.message) for o in places if o.status is OutcomeStatus.REJECTED and o.level]
    store.record_rejections(job, rejected, now)
    store.clear_rejections(job, [o.level for o in places if o.status is OutcomeStatus.PLACED and o.level])


def cancel_plan_job(job: Job) -> Job:
    """The same job with an empty target: its plan cancels every order it owns and places nothing."""
    return dataclasses.replace(job, buy=None, sell=None, orders=())


def _result_of(execution: Execution) -> PassResult:
    if execution.fenced:
        return PassResult.FENCED
    if not execution.confirmed or execution.count(OutcomeStatus.UNKNOWN):
        return PassResult.UNKNOWN_OUTCOME
    if execution.rejected or execution.error:
        return PassResult.REJECTED
    return PassResult.OK


def _record_failure(
    store: StateStore, job: Job, mode: Mode, plan: Plan | None, exc: Exception, duration_ms: int, now: datetime
) -> None:
    """Record a pass that failed before it sent anything, with its error, so ``history`` shows every pass that ran.

    A store that cannot record it (the store may be what failed) is logged; the pass's own error is what the
    caller sees.
    """
    error = str(exc) if isinstance(exc, RebalancerError) else f"{type(exc).__name__}: {exc}"
    try:
        store.record_pass(
            job.name,
            mode,
            now,
            result=PassResult.ERROR,
            summary=plan.summary if plan is not None else {},
            warnings=plan.warnings if plan is not None else (),
            error=redact(error),
            duration_ms=duration_ms,
            reference_price=_ref(plan) if plan is not None else None,
            fingerprint=plan.fingerprint if plan is not None else None,
        )
    except Exception:
        log.exception("could not record the failed pass", extra={"job": job.name})


def _record_quiet(
    store: StateStore, job: Job, mode: Mode, plan: Plan, duration_ms: int, now: datetime, learnt: Learnt
) -> None:
    pass_id = store.record_pass(
        job.name,
        mode,
        now,
        result=PassResult.NO_CHANGES,
        summary=plan.summary,
        warnings=plan.warnings,
        error=None,
        duration_ms=duration_ms,
        reference_price=_ref(plan),
        fingerprint=plan.fingerprint,
    )
    _record_learnt(store, job, pass_id, learnt, plan, now)


def _answer_json(answer: BatchAnswer | None) -> object | None:
    if answer is None:
        return None
    return {
        kind: [{"code": g.code, "msg": g.message, "order_id": list(g.order_ids)} for g in groups]
        for kind, groups in (("mass_place", answer.place), ("mass_cancel", answer.cancel))
    }


def _order_result(outcome: OrderOutcome) -> OrderResult:
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


def _ref(plan: Plan) -> str | None:
    """The reference to record: what the market showed, even when the plan did not trust it (None if unread)."""
    if plan.observed_reference is not None:
        return format_decimal(plan.observed_reference)
    if plan.paused is None and plan.reference_price > 0:  # a saved plan written before observed_reference
        return format_decimal(plan.reference_price)
    return None


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
