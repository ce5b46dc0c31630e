"""Gather: everything a pass reads before it decides, from the exchange and, in one transaction, the state store.

Requests: the ticker and the open orders (the symbol rules are cached), the balances up front only for a job with
an inventory target (else later, through ``balances``, and only when the placements need them), another venue's
quote when the reference names one, and ``order_info`` for watched orders that left the book (save those the job's
market stream proves could not have filled: ``NoFillWitness``). The store is read once (``StateStore.pass_inputs``);
the order tracker then settles what that read says against the book.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from rebalancer.core.fills import Learnt, Seen, learn_fills
from rebalancer.core.plan import Draft
from rebalancer.engine.tracker import Tracked, id_key, track
from rebalancer.errors import ExchangeError, RebalancerError
from rebalancer.exchange import Exchange, reference
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Order, Ticker
from rebalancer.state.passio import PassInputs
from rebalancer.state.store import StateStore


@runtime_checkable
class NoFillWitness(Protocol):
    """An exchange that can tell, from the job's market stream, that a watched order that left the book could not
    have filled since it was last seen (``engine.streamfed.StreamFed``); a plain client is no witness."""

    def saw_no_fill(self, seen: Seen) -> bool:
        """True when ``seen`` need not be read with ``order_info``: it left the book unfilled since last seen."""
        ...


@dataclass(frozen=True, slots=True)
class Gathered:
    """What one pass read: the time it planned at, the market, the store's inputs, the settled ownership and the
    fills learnt since the last recorded pass."""

    now: datetime
    snapshot: MarketSnapshot
    inputs: PassInputs
    tracked: Tracked
    learnt: Learnt


def gather(job: Job, exchange: Exchange, store: StateStore, wall: Callable[[], datetime]) -> Gathered:
    """Read the market, then the store (one read transaction), settle ownership and learn the fills.

    A job with ``limits.max_blind`` plans on when its ticker cannot be read (``market_problem``): its pass still
    reads the open orders, so it can cancel them once it has been blind too long.
    """
    may_go_blind = job.limits.max_blind_seconds is not None
    snapshot = read_snapshot(exchange, job.symbol, balances=job.inventory is not None, blind=may_go_blind)
    snapshot = with_reference(job, exchange, snapshot)
    now = wall()
    inputs = store.pass_inputs(job.name, now, loss=job.limits.max_loss is not None, sight=may_go_blind)
    tracked = track(job, snapshot, inputs, now)
    learnt = learn_own_fills(job, exchange, inputs.watched, snapshot, tracked.owned, now)
    return Gathered(now, snapshot, inputs, tracked, learnt)


def read_snapshot(exchange: Exchange, symbol: str, *, balances: bool = True, blind: bool = False) -> MarketSnapshot:
    """What a pass reads before planning: symbol rules, ticker, every open order and (with ``balances``) balances.

    A pass reads the balances later, and only when its placements need them (``Draft.needs_balances``). With
    ``blind``, a ticker that cannot be read leaves the ticker empty and says why (``market_problem``) instead of
    failing the pass; any other failed read fails it.
    """
    rules = exchange.rules(symbol)
    problem = None
    try:
        ticker = exchange.ticker(symbol)
    except ExchangeError as exc:
        if not blind:
            raise
        ticker, problem = Ticker(None, None, None), f"the market data could not be read ({exc})"
    orders = exchange.open_orders(symbol)
    held = exchange.balances() if balances else None
    return MarketSnapshot(rules=rules, ticker=ticker, balances=held, open_orders=orders, market_problem=problem)


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


def balances(exchange: Exchange, snapshot: MarketSnapshot, draft: Draft) -> MarketSnapshot:
    """The snapshot with the balances, read now only when the draft's placements need them and none were read."""
    if draft.needs_balances and snapshot.balances is None:
        return dataclasses.replace(snapshot, balances=exchange.balances(draft.funding_need))
    return snapshot


def learn_own_fills(
    job: Job,
    exchange: Exchange,
    watched: Mapping[str, Seen],
    snapshot: MarketSnapshot,
    owned: frozenset[str] | None,
    now: datetime,
) -> Learnt:
    """The fills of the job's orders since the last recorded pass (``rebalancer.core.fills``), nothing written.

    Watched orders that left the book are looked up with ``order_info`` (a read), save those the exchange, as a
    ``NoFillWitness``, proves unfilled; one that cannot be read stays watched and is asked about again next pass.
    """
    mine = [o for o in snapshot.open_orders if owned is None or o.id in owned]
    listed = {o.id for o in snapshot.open_orders}
    gone = sorted(set(watched) - listed, key=id_key)
    witness = _witness(exchange) if gone else None
    left: dict[str, Order | None] = {}
    unfilled: set[str] = set()
    for order_id in gone:
        if witness is not None and witness.saw_no_fill(watched[order_id]):
            unfilled.add(order_id)
            continue
        try:
            left[order_id] = exchange.order_info(job.symbol, order_id)
        except RebalancerError:
            left[order_id] = None
    return learn_fills(watched, mine, left, now, frozenset(unfilled))


def _witness(exchange: Exchange) -> NoFillWitness | None:
    """``exchange`` when it is a ``NoFillWitness``: the test ``isinstance`` makes of a runtime-checkable protocol
    (the method is there and not None), without the protocol machinery's ~10 µs a call."""
    return exchange if getattr(exchange, "saw_no_fill", None) is not None else None  # type: ignore[return-value]
