"""Decide: what a pass will do, from what it gathered. No I/O: values in, a ``Decision`` out (and log lines).

``draft`` runs the ladder, the guards, the diff and the held levels (``rebalancer.core.plan.draft_plan``); the runner
reads the balances if the draft needs them; ``decide`` then checks the funding, drops the placements a lost batch may
still make, applies the loss limit, warns of exchange errors and either checks a saved plan or lets the pre-trade
gate admit the fresh one.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from rebalancer.core import gate
from rebalancer.core.blind import blindness
from rebalancer.core.fills import Fill
from rebalancer.core.lifecycle import Lifecycle
from rebalancer.core.loss import loss_of, mark_price, net_base
from rebalancer.core.plan import Draft, Plan, draft_plan, finish_plan, plan_fingerprint
from rebalancer.core.saved_plan import check_saved_plan
from rebalancer.engine.gather import Gathered
from rebalancer.engine.tracker import awaited_levels, id_key, without_awaited
from rebalancer.errors import UnsafePlanError
from rebalancer.job import Job, OnBlind
from rebalancer.models import MarketSnapshot
from rebalancer.state.passio import PassInputs
from rebalancer.vocab import PausedBy

log = logging.getLogger(__name__)

STALE_PLAN = (
    "saved plan is stale or was edited: the open orders, the job file or the plan's actions changed since it "
    "was made; run plan again"
)


@dataclass(frozen=True, slots=True)
class Decision:
    """The plan a pass will send (or show), the book the gate judged it on, what the gate dropped, and the pause
    its loss limit calls for (``(max_loss, why)``; None when the limit holds)."""

    plan: Plan
    book: gate.Book
    refused: tuple[gate.Refusal, ...]
    pause: tuple[PausedBy, str] | None


def draft(job: Job, gathered: Gathered) -> Draft:
    """The plan before its funding check: ladder → guards → diff → held levels."""
    inputs = gathered.inputs
    return draft_plan(
        job,
        gathered.snapshot,
        gathered.tracked.owned,
        previous_reference=inputs.last_reference,
        held_levels=inputs.held_levels,
        life=lifecycle_of(job, inputs.last_fills, gathered.learnt.fills, gathered.now),
    )


def decide(job: Job, gathered: Gathered, drafted: Draft, snapshot: MarketSnapshot, saved_plan: Plan | None) -> Decision:
    """Finish the plan on ``snapshot`` (the gathered one, with balances when the draft needed them) and decide.

    A ``saved_plan`` replaces the fresh one only if it still matches the book and passes the guards and the gate as
    they stand; otherwise ``UnsafePlanError``.
    """
    owned, learnt = gathered.tracked.owned, gathered.learnt
    plan = finish_plan(drafted, snapshot.balances)
    plan = without_awaited(plan, awaited_levels(job, plan, gathered.tracked.pending), snapshot.open_orders)
    plan = with_loss_limit(job, gathered.inputs, plan, snapshot, owned, learnt.fills)
    plan = with_blindness(job, gathered, plan, snapshot)
    plan = with_exchange_errors(job, plan, learnt.refused)
    ticker = snapshot.ticker
    levels = gate.standing_levels(drafted.result)  # which level each owned order stands for, by this pass
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
    tripped = plan.paused_by is PausedBy.MAX_LOSS and plan.loss is not None
    pause = (PausedBy.MAX_LOSS, plan.paused or "") if tripped else None
    return Decision(plan, book, tuple(refused), pause)


def with_loss_limit(
    job: Job,
    inputs: PassInputs,
    plan: Plan,
    snapshot: MarketSnapshot,
    owned: frozenset[str] | None,
    new_fills: Sequence[Fill],
) -> Plan:
    """The plan with its running loss (``limits.max_loss``); past the limit, a plan that cancels every order the
    job owns, places nothing and says why (``paused_by: max_loss``). Unchanged without the limit.

    The recorded fills and the count's start come from the pass's store read (``PassInputs.loss_*``). The open
    position is marked at the most pessimistic price the pass has (``rebalancer.core.loss.mark_price``): the trusted
    reference, the one observed now and this venue's own book, so a reference source that is down or stale never
    hides a loss. With no price at all the plan says the loss is not known.
    """
    limit = job.limits.max_loss
    if limit is None:
        return plan
    since = inputs.loss_since
    recorded = list(inputs.loss_fills)
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


def with_blindness(job: Job, gathered: Gathered, plan: Plan, snapshot: MarketSnapshot) -> Plan:
    """The plan of a job blind for ``limits.max_blind`` or longer (``rebalancer.core.blind``): it says so and, with
    ``on_blind: cancel``, cancels every order the job owns and places nothing. Unchanged otherwise.

    A blind pass has no trusted price, so its guards already place nothing; ``keep`` leaves the paused plan as it
    is. A plan the loss limit already stopped keeps its cancels and its pause (a blind job resumes by itself, a
    loss-limited one does not).
    """
    blind = blindness(job, gathered.inputs.sight, plan.observed_reference is not None, gathered.now)
    if blind is None:
        return plan
    if blind.on_blind is OnBlind.CANCEL and plan.paused_by is not PausedBy.MAX_LOSS:
        stop = finish_plan(draft_plan(cancel_plan_job(job), snapshot, gathered.tracked.owned), snapshot.balances)
        plan = dataclasses.replace(
            stop,
            reference_price=plan.reference_price,
            observed_reference=plan.observed_reference,
            warnings=tuple(filter(None, (plan.paused, *stop.warnings))),
            paused=plan.paused,
            paused_by=plan.paused_by,
            loss=plan.loss,
        )
    return dataclasses.replace(plan, warnings=(blind.sentence(), *plan.warnings), blind=blind)


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


def cancel_plan_job(job: Job) -> Job:
    """The same job with an empty target: its plan cancels every order it owns and places nothing."""
    return dataclasses.replace(job, buy=None, sell=None, orders=())


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
    foreign = sorted(set(saved.cancel_ids) - allowed, key=id_key)
    if foreign:
        raise UnsafePlanError(f"saved plan cancels orders this job does not own: {', '.join(foreign)}")
    check_saved_plan(job, saved, fresh, snapshot)
    return dataclasses.replace(saved, observed_reference=fresh.observed_reference)
