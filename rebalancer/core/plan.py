"""The Plan value: what one pass would do, in its final order, with a fingerprint of its inputs and actions.

``compute_plan`` chains ``ladder.build`` → ``diff.reconcile`` → ``funding.fund`` and freezes the result; the
guards of ``rebalancer.core.guards`` may pause its placements (suspect market data) or hold levels back.
``plan`` and ``apply`` both call it; only ``apply`` hands the plan's ``batches()`` to the executor. The JSON
form (format_version "1") is written and read back by ``rebalancer.core.plan_codec``; the human form lives in
``rebalancer.cli.render``.

Action order: cancels, then placements, then keeps; inside each group BUY before SELL and the level nearest
the reference first (buys by descending price, sells by ascending price), then by order id / level name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from rebalancer.core import diff, funding, guards, ladder, lifecycle, limits, plain_numbers
from rebalancer.core.blind import Blind
from rebalancer.core.loss import Loss
from rebalancer.core.skew import Skew, inventory_skew
from rebalancer.defaults import BATCH_LIMIT
from rebalancer.errors import UnsafePlanError
from rebalancer.job import Job, Ownership
from rebalancer.models import Balances, FundingNeed, MarketSnapshot, Order, Side, SymbolRules, Target, format_decimal
from rebalancer.vocab import ActionKind, CancelReason, PausedBy

FORMAT_VERSION = "1"
ACTIONS = tuple(ActionKind)
"""The action kinds, in the plan's action order."""
PAUSED_BY = (PausedBy.SWITCH, PausedBy.MARKET_DATA, PausedBy.MAX_LOSS)
"""What may pause a plan's placements (``Plan.paused_by``)."""


@dataclass(frozen=True, slots=True)
class Action:
    """One line of the plan. Cancels and keeps name an ``order_id``; places and keeps name a ``level``.

    ``volume`` is what rests (or will rest) on the book: a target's volume, an open order's remaining volume.
    """

    action: ActionKind
    side: Side
    price: Decimal
    volume: Decimal
    order_id: str | None = None
    level: str | None = None
    reason: CancelReason | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        object.__setattr__(self, "action", ActionKind(self.action))
        if self.action is not ActionKind.PLACE and not self.order_id:
            raise ValueError(f"a {self.action} action needs an order_id")
        if self.action is not ActionKind.CANCEL and not self.level:
            raise ValueError(f"a {self.action} action needs a level")
        if self.action is ActionKind.CANCEL:
            if self.reason not in diff.REASONS:
                raise ValueError(f"unknown cancel reason {self.reason!r}")
            object.__setattr__(self, "reason", CancelReason(self.reason))


@dataclass(frozen=True, slots=True)
class Batch:
    """One mass_replaceV2 request's worth of work: at most ``limit`` cancels and ``limit`` placements."""

    cancel_ids: tuple[str, ...]
    place: tuple[Target, ...]


def _action_key(a: Action) -> tuple[object, ...]:
    nearest = -a.price if a.side is Side.BUY else a.price
    ident = a.order_id or ""
    return (
        ACTIONS.index(a.action),
        0 if a.side is Side.BUY else 1,
        nearest,
        (0, int(ident)) if ident.isdigit() else (1, 0),
        ident,
        a.level or "",
    )


def order_action(a: Sequence[Action]) -> tuple[Action, ...]:
    """The actions in the plan's final order (see the module docstring)."""
    return tuple(sorted(a, key=_action_key))


@dataclass(frozen=True, slots=True)
class Plan:
    """A frozen plan. ``price_places``/``volume_places`` are the symbol's precisions, used to format it.

    ``paused`` says why placements are paused (``placements paused: ...``, see ``rebalancer.core.guards``), else
    None. ``reference_price`` is the reference the plan hangs from (0 when none could be trusted);
    ``observed_reference`` is what the market said (None when it could not be read), which the runner records.
    ``ownership`` is the mode in force (which open orders the plan may cancel); ``paused_by`` names what paused
    placements (one of ``PAUSED_BY``), None when nothing did. ``blind``: set when the job has gone without a
    trusted price for ``limits.max_blind`` (its placements are then paused by ``market_data``).
    """

    job: str
    symbol: str
    reference_price: Decimal
    best_bid: Decimal | None
    best_ask: Decimal | None
    fingerprint: str
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    price_places: int = 0
    volume_places: int = 0
    unowned_orders: int = 0
    pending_orders: int = 0
    job_hash: str = ""
    dropped: tuple[ladder.Dropped, ...] = field(default=())
    paused: str | None = None
    observed_reference: Decimal | None = None
    ownership: Ownership = Ownership.TRACKED
    paused_by: PausedBy | None = None
    inventory: Skew | None = None
    loss: Loss | None = None  # limits.max_loss: the running figure (``rebalancer.core.loss``)
    blind: Blind | None = None  # limits.max_blind: how long the job has been blind (``rebalancer.core.blind``)

    @property
    def summary(self) -> dict[str, int]:
        """Counts of place / cancel / keep actions, keyed by the plain words (as in the JSON and its messages)."""
        kinds = (ActionKind.PLACE, ActionKind.CANCEL, ActionKind.KEEP)
        return {kind.value: sum(1 for a in self.actions if a.action is kind) for kind in kinds}

    @property
    def has_changes(self) -> bool:
        """True when the plan would cancel or place anything."""
        return any(a.action is not ActionKind.KEEP for a in self.actions)

    @property
    def cancel_ids(self) -> tuple[str, ...]:
        """Ids of the orders to cancel, in plan order."""
        return tuple(a.order_id for a in self.actions if a.action is ActionKind.CANCEL and a.order_id)

    @property
    def placements(self) -> tuple[Target, ...]:
        """The targets to place, in plan order."""
        return tuple(
            Target(a.level, a.side, a.price, a.volume) for a in self.actions if a.action is ActionKind.PLACE and a.level
        )

    def batches(self, limit: int = BATCH_LIMIT) -> tuple[Batch, ...]:
        """Split into mass_replaceV2 batches of ≤ ``limit`` cancels and ≤ ``limit`` placements.

        Cancels fill the earliest batches; placements start only in the batch that carries the last cancels,
        so every placement is sent after all the cancels whose released funds ``funding.fund`` counted on.
        """
        if limit < 1:
            raise ValueError("batch limit must be positive")
        cancels = self.cancel_ids
        places = self.placements
        cancel_chunks = [cancels[i : i + limit] for i in range(0, len(cancels), limit)]
        place_chunks = [places[i : i + limit] for i in range(0, len(places), limit)]
        start = max(len(cancel_chunks) - 1, 0)
        count = max(len(cancel_chunks), start + len(place_chunks))
        out = []
        for k in range(count):
            c = cancel_chunks[k] if k < len(cancel_chunks) else ()
            p = place_chunks[k - start] if 0 <= k - start < len(place_chunks) else ()
            out.append(Batch(tuple(c), tuple(p)))
        return tuple(out)

    def format_price(self, value: Decimal) -> str:
        """A price with the symbol's places (or as is, if it has more: formatting never rounds)."""
        return _fmt(value, self.price_places)

    def format_volume(self, value: Decimal) -> str:
        """A volume with the symbol's places (or as is, if it has more)."""
        return _fmt(value, self.volume_places)


def summary_line(plan: Plan) -> str:
    """``Plan: 1 to place, 1 to cancel, 1 unchanged.`` or the no-change sentence; a paused plan says so."""
    if not plan.has_changes:
        if plan.paused:
            return "No changes. Placements are paused; orders are left as they stand."
        return "No changes. Open orders match the target ladder."
    s = plan.summary
    tail = " (placements paused)" if plan.paused else ""
    return f"Plan: {s['place']} to place, {s['cancel']} to cancel, {s['keep']} unchanged{tail}."


def _fmt(value: Decimal, places: int) -> str:
    try:
        return format_decimal(value, places)
    except (ValueError, ArithmeticError):  # more places than the symbol has, or more digits than a context holds
        return format_decimal(value)


def _canonical(value: Decimal) -> str:
    return format_decimal(value.normalize()) if value else "0"


def orders_fingerprint(job_hash: str, orders: Sequence[Order]) -> str:
    """``sha256:`` over the job file hash and a canonical form of the open orders (sorted by id).

    Recompute it from freshly read orders to tell whether a saved plan is stale.
    """
    rows = sorted(
        [
            o.id,
            o.side.value,
            _canonical(o.price),
            _canonical(o.volume),
            _canonical(o.deal_volume),
            int(o.status),
        ]
        for o in orders
    )
    text = json.dumps({"job": job_hash, "orders": rows}, separators=(",", ":"), sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def plan_fingerprint(job_hash: str, orders: Sequence[Order], actions: Sequence[Action]) -> str:
    """``sha256:`` over ``orders_fingerprint`` and a canonical form of the actions (in any order).

    A plan's fingerprint binds what it does to the book and job file it was made from: recomputed from a saved
    plan's actions and the orders read now, it differs when the book moved, the job file changed or the plan
    file was edited.
    """
    rows = sorted(
        [a.action.value, a.side.value, _canonical(a.price), _canonical(a.volume), a.order_id or "", a.level or ""]
        for a in actions
    )
    text = json.dumps({"book": orders_fingerprint(job_hash, orders), "actions": rows}, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _owned(orders: Sequence[Order], owned_ids: frozenset[str] | None) -> list[Order]:
    return [o for o in orders if owned_ids is None or o.id in owned_ids]


@dataclass(frozen=True, slots=True)
class Draft:
    """A plan before its funding check: the ladder and the diff are done, the balances may not have been read.

    The runner reads the balances only when ``needs_balances`` (a placement costs more than the cancels of its
    side release), then ``finish_plan`` trims what they cannot pay for.
    """

    job: Job
    snapshot: MarketSnapshot
    owned: tuple[Order, ...]
    reading: guards.Reading
    built: ladder.Ladder
    result: diff.Diff
    warnings: tuple[str, ...]
    skew: Skew | None = None

    @property
    def needs_balances(self) -> bool:
        """True when funding the placements depends on the account's balances."""
        return funding.needs_balances(self.result.place, [o for o, _ in self.result.cancel])

    @property
    def funding_need(self) -> FundingNeed:
        """Per coin, what the placements lock and the least available balance that pays for all of them."""
        return funding.funding_need(self.result.place, [o for o, _ in self.result.cancel], self.snapshot.rules)


def compute_plan(
    job: Job,
    snapshot: MarketSnapshot,
    owned_ids: frozenset[str] | None,
    *,
    previous_reference: Decimal | None = None,
    held_levels: Mapping[str, str] | None = None,
) -> Plan:
    """The plan of one pass: ladder (with guards) → diff → held levels → funding check → Plan.

    ``owned_ids`` is the set of order ids the job placed (ownership ``tracked``), or None for every open order
    of the symbol. Unowned orders are invisible to the diff and the funding check; the plan only counts them.
    ``previous_reference`` (the reference the last pass observed) and ``held_levels`` (level → why it is held
    back) feed the guards of ``rebalancer.core.guards``: suspect market data pauses placements, held levels are
    not placed.
    """
    draft = draft_plan(job, snapshot, owned_ids, previous_reference=previous_reference, held_levels=held_levels)
    return finish_plan(draft, snapshot.balances)


def draft_plan(
    job: Job,
    snapshot: MarketSnapshot,
    owned_ids: frozenset[str] | None,
    *,
    previous_reference: Decimal | None = None,
    held_levels: Mapping[str, str] | None = None,
    life: lifecycle.Lifecycle | None = None,
) -> Draft:
    """Everything of ``compute_plan`` but the funding check; ``snapshot.balances`` is not looked at."""
    owned = _owned(snapshot.open_orders, owned_ids)
    quote = ladder.quote_of(job, snapshot)
    problem = snapshot.market_problem or (snapshot.reference_problem if job.reference.source is not None else None)
    if guards.places_anything(job):
        reading = guards.read_reference(job, quote, previous_reference, problem)
    else:
        reading = _nothing_to_place(job, snapshot)
    skew = _skew(job, snapshot, reading.trusted)
    if reading.trusted is None:
        built = ladder.Ladder(Decimal(0), ())
    elif reading.paused is None:
        built = ladder.build(job, snapshot, skew)
    else:
        built = ladder.build(guards.anchored(job, reading.trusted), snapshot, skew)
    within, beyond = limits.split_orders(job.limits, owned)
    # Paused with no trusted reference: no band to measure, so the diff sees no orders and cancels nothing.
    result = diff.reconcile(
        built.targets,
        within if reading.trusted is not None or reading.paused is None else [],
        job.tolerance,
        reference_price=built.reference_price,
        band=job.limits.band if reading.trusted is not None else None,
        over_limit=built.over_limit,
    )
    if beyond:
        cancels = tuple((o, CancelReason.PRICE_LIMIT) for o in beyond)
        result = dataclasses.replace(result, cancel=result.cancel + cancels)
    warnings = [*plain_numbers.plain_number_warnings(job, built.reference_price), *built.warnings]
    if reading.paused is not None:
        result, left = guards.pause(result)
        left += [o for o in owned if o.is_open and reading.trusted is None]
        warnings = [reading.paused, *warnings]
        warnings += filter(None, [guards.left_alone_warning(left)])
    else:
        result, held_warnings = guards.hold(result, held_levels or {})
        warnings += held_warnings
        if life is not None:
            result, waits = lifecycle.apply_lifecycle(result, life)
            warnings += [wait.sentence() for wait in waits]
    return Draft(job, snapshot, tuple(owned), reading, built, result, tuple(warnings), skew)


def finish_plan(draft: Draft, balances: Balances | None) -> Plan:
    """The draft's placements trimmed to what ``balances`` pay for, frozen into the Plan.

    ``balances`` may be None only when the draft does not ``need_balances``.
    """
    job, snapshot, result, ref = draft.job, draft.snapshot, draft.result, draft.built.reference_price
    rules: SymbolRules = snapshot.rules
    if balances is not snapshot.balances:
        snapshot = dataclasses.replace(snapshot, balances=balances)
    funded = funding.fund(result.place, [o for o, _ in result.cancel], snapshot, ref)
    actions = [
        Action(ActionKind.CANCEL, o.side, o.price, o.remaining, order_id=o.id, reason=reason)
        for o, reason in result.cancel
    ]
    actions += [Action(ActionKind.PLACE, t.side, t.price, t.volume, level=t.level) for t in funded.placements]
    actions += [
        Action(ActionKind.KEEP, o.side, o.price, o.remaining, order_id=o.id, level=t.level) for o, t in result.keep
    ]
    warnings = [*draft.warnings, *funded.warnings]
    if result.pending:
        warnings.append(
            f"{len(result.pending)} order(s) already pending cancellation were left alone: "
            + ", ".join(o.id for o in result.pending)
        )
    ordered = order_action(actions)
    return Plan(
        job=job.name,
        symbol=job.symbol,
        reference_price=ref,
        best_bid=snapshot.ticker.bid,
        best_ask=snapshot.ticker.ask,
        fingerprint=plan_fingerprint(job.source_hash, snapshot.open_orders, ordered),
        actions=ordered,
        warnings=tuple(warnings),
        price_places=rules.price_precision,
        volume_places=rules.amount_precision,
        unowned_orders=len(snapshot.open_orders) - len(draft.owned),
        pending_orders=len(result.pending),
        job_hash=job.source_hash,
        dropped=draft.built.dropped + funded.dropped,
        paused=draft.reading.paused,
        observed_reference=draft.reading.observed,
        ownership=job.ownership,
        paused_by=None if draft.reading.paused is None else PausedBy.MARKET_DATA,
        inventory=draft.skew,
    )


def _skew(job: Job, snapshot: MarketSnapshot, reference: Decimal | None) -> Skew | None:
    """The inventory skew of a job that declares one; it needs the balances and a trusted reference."""
    if job.inventory is None or reference is None or snapshot.balances is None:
        return None
    return inventory_skew(job.inventory, snapshot.balances, snapshot.rules, reference)


def _nothing_to_place(job: Job, snapshot: MarketSnapshot) -> guards.Reading:
    """A job with no targets (``rebalancer cancel``) cancels everything it owns, whatever the book says."""
    try:
        price = ladder.reference_price(job, ladder.quote_of(job, snapshot))
    except UnsafePlanError:
        return guards.Reading(None, None)
    return guards.Reading(price, price)
