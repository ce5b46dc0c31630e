"""The pre-trade gate: the one check every batch passes right before it is sent.

Each safety rule is also applied where its feature computes (the ladder drops targets beyond the ceiling, the
band, post-only; the diff places each level once); the gate checks them again at the send, against the book the
pass read, so a batch that reaches the send by another way (a saved plan, a planner bug) cannot break them.
It judges the book it is given, never the counts or kept orders a plan claims about itself: which level each
standing order of the job stands for comes with the book (``Book.levels``: the pairing this pass's planner made
of the open orders read and the job's ladder, ``standing_levels``), and a plan's keeps can only make it stricter
(a level a kept order claims is not placed again).

The book the batch would leave: the job's orders (every open order of the symbol under ``ownership: symbol``,
else the ones it placed) that are open and not cancelled by the batch, plus the batch's placements. Orders
pending cancellation are on their way out (the planner leaves them alone) and are not part of it.

Rules, each a ``Rule``:

* ``symbol``: the batch goes to the job's symbol (else everything is refused);
* ``not_owned``: a cancel names an open order of the book that the job owns under its ownership mode;
* ``level``: a placement names a level the job declares (``buy[i]``, ``sell[i]`` for i below ``levels``,
  ``orders[i]`` for a fixed order); ``side``: on the side that level says;
* ``duplicate_level``: no level placed twice, nor placed while an order of the book left stands for it (by the
  book's pairing, whatever the plan keeps or leaves out), nor while a kept order claims it;
* ``positive``, ``tick``, ``lot``: a positive price and volume on the symbol's tick and lot;
* ``price_limit``: no buy at or above ``price_ceiling``, no sell at or below ``price_floor``;
* ``band``: within ``limits.band`` of the trusted reference (with a band and no trusted reference, no placement);
* ``post_only``: a buy below the best ask, a sell above the best bid;
* ``self_trade``: a buy below every sell of the job's in that book (standing, or placed before it in the
  batch), a sell above every such buy;
* ``max_orders``: at most ``limits.max_orders`` of the job's orders in the book left (so per side too);
* ``volume``: per side, the job's volume left is within what the ladder declares (``declared_volume``: every
  level and fixed order at the largest skew, widened by the size tolerance), plus what its standing orders hold
  beyond its smallest level (an order spared for a held level may be larger than any); or the batch leaves that
  side with no more volume than it had.

Placements are judged in the order given (a plan's: nearest the reference first), so when a count or a volume
runs out, the farthest are refused. Pure: values in, values out.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Context, Decimal, DivisionByZero, InvalidOperation, Overflow, localcontext

from rebalancer.core import limits as price_limits
from rebalancer.core.diff import Diff, order_key
from rebalancer.core.dropped import Dropped
from rebalancer.core.plan import Action, Plan, plan_fingerprint
from rebalancer.job import Job, SideLadder
from rebalancer.models import ZERO, Order, Side, SymbolRules, format_decimal
from rebalancer.vocab import ActionKind, CancelReason, DropReason

GATE = DropReason.GATE
"""The reason of a placement the gate dropped from a planned pass (``Plan.dropped``)."""
_LEVEL = re.compile(r"(buy|sell|orders)\[(0|[1-9][0-9]{0,8})\]")
_SUM = Context(prec=28, rounding=ROUND_CEILING, traps=[InvalidOperation, DivisionByZero, Overflow])
_MAX_SKEW = Decimal(2)  # inventory skew multiplies one side's sizes by at most 1 + 1


class Rule(enum.StrEnum):
    """The rule a refused action breaks (see the module docstring)."""

    SYMBOL = "symbol"
    NOT_OWNED = "not_owned"
    LEVEL = "level"
    SIDE = "side"
    DUPLICATE_LEVEL = "duplicate_level"
    POSITIVE = "positive"
    TICK = "tick"
    LOT = "lot"
    PRICE_LIMIT = "price_limit"
    BAND = "band"
    POST_ONLY = "post_only"
    SELF_TRADE = "self_trade"
    MAX_ORDERS = "max_orders"
    VOLUME = "volume"


@dataclass(frozen=True, slots=True)
class Book:
    """What the gate judges a batch against, all read by this pass: the symbol's rules, the open orders, the ids
    the job owns (None: every order of the symbol, ``ownership: symbol``), the trusted reference (None when none
    could be trusted), the best bid and ask, and ``levels``: the level each of the job's open orders stands for
    as this pass's planner paired them (``standing_levels``; an order it leaves unpaired is absent)."""

    rules: SymbolRules
    orders: tuple[Order, ...]
    owned: frozenset[str] | None
    reference: Decimal | None
    bid: Decimal | None
    ask: Decimal | None
    levels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused action: the action itself, the rule it breaks and why, in words a trader reads."""

    action: Action
    rule: Rule
    why: str

    def sentence(self) -> str:
        """``buy[0] BUY 31000 × 0.01: at or above the price ceiling 31000 (price_limit)``."""
        a = self.action
        shown = f"{a.side.value} {format_decimal(a.price)} × {format_decimal(a.volume)}"
        what = f"cancel of order {a.order_id} ({shown})" if a.action is ActionKind.CANCEL else f"{a.level} {shown}"
        return f"{what}: {self.why} ({self.rule})"


def check(job: Job, book: Book, actions: Sequence[Action]) -> tuple[Refusal, ...]:
    """Every action of the batch ``actions`` the gate refuses (empty: send it). Keeps are claims, never counted."""
    cancels = [a for a in actions if a.action is ActionKind.CANCEL]
    places = [a for a in actions if a.action is ActionKind.PLACE]
    if book.rules.symbol != job.symbol:
        why = f"the batch is for {book.rules.symbol}, the job trades {job.symbol}"
        return tuple(Refusal(a, Rule.SYMBOL, why) for a in (*cancels, *places))
    refused = list(_cancel_refusals(job, book, cancels))
    if not places:  # nothing to judge: the book the placements are judged against is not built
        return tuple(refused)
    # A refused cancel names an order outside the job's book, or one an admitted cancel already takes out.
    cancelled = {a.order_id for a in cancels}
    mine = [o for o in book.orders if book.owned is None or o.id in book.owned]
    standing = [o for o in mine if o.is_open and o.id not in cancelled]
    ids = {o.id for o in standing}
    kept = {a.level for a in actions if a.action is ActionKind.KEEP and a.order_id in ids}
    held = {book.levels[o.id]: o.id for o in sorted(standing, key=order_key, reverse=True) if o.id in book.levels}
    judge = _Placements(job, book, standing, mine, kept, held)
    refused += [r for a in places if (r := judge.admit(a)) is not None]
    return tuple(refused)


def _cancel_refusals(job: Job, book: Book, cancels: Sequence[Action]) -> Iterable[Refusal]:
    ids = {o.id for o in book.orders}
    seen: set[str | None] = set()
    for a in cancels:
        if a.order_id in seen:
            yield Refusal(a, Rule.NOT_OWNED, "cancelled twice in one batch")
        elif a.order_id not in ids:
            yield Refusal(a, Rule.NOT_OWNED, "not an open order of the book read in this pass")
        elif book.owned is not None and a.order_id not in book.owned:
            yield Refusal(a, Rule.NOT_OWNED, f"not an order this job owns (ownership {job.ownership})")
        seen.add(a.order_id)


class _Placements:
    """The running state of one batch's placements: what stands on each side, what was admitted so far."""

    def __init__(
        self,
        job: Job,
        book: Book,
        standing: list[Order],
        mine: list[Order],
        kept: Collection[str | None],
        held: Mapping[str, str],
    ) -> None:
        self.job, self.book, self.kept, self.held = job, book, kept, held
        self.levels: set[str] = set()
        self.bound = {s: _bound(job, s, standing) for s in Side}
        self.count = len(standing)
        self.volume = {s: sum((o.remaining for o in standing if o.side is s), ZERO) for s in Side}
        self.before = {s: sum((o.remaining for o in mine if o.is_open and o.side is s), ZERO) for s in Side}
        self.lowest_sell = min((o.price for o in standing if o.side is Side.SELL), default=None)
        self.highest_buy = max((o.price for o in standing if o.side is Side.BUY), default=None)

    def admit(self, a: Action) -> Refusal | None:
        """Judge one placement; when admitted, it joins the book the next ones are judged against."""
        rule_why = self._placement_problem(a) or self._book_problem(a)
        if rule_why is not None:
            return Refusal(a, *rule_why)
        assert a.level is not None
        self.levels.add(a.level)
        self.count += 1
        self.volume[a.side] += a.volume
        if a.side is Side.BUY:
            self.highest_buy = a.price if self.highest_buy is None else max(self.highest_buy, a.price)
        else:
            self.lowest_sell = a.price if self.lowest_sell is None else min(self.lowest_sell, a.price)
        return None

    def _placement_problem(self, a: Action) -> tuple[Rule, str] | None:
        """What is wrong with the placement on its own (its level, price and volume), or None."""
        job, rules, limits = self.job, self.book.rules, self.job.limits
        side = level_side(job, a.level or "")
        if side is None:
            return Rule.LEVEL, "not a level the job declares"
        if side is not a.side:
            return Rule.SIDE, f"the level is a {side.value.lower()} level"
        if a.level in self.levels:
            return Rule.DUPLICATE_LEVEL, "the level is placed twice"
        holder = self.held.get(a.level or "")
        if holder is not None:
            return Rule.DUPLICATE_LEVEL, f"the job's order {holder} already stands for the level"
        if a.level in self.kept:
            return Rule.DUPLICATE_LEVEL, "a kept order already stands for the level"
        if a.price <= 0 or a.volume <= 0:
            return Rule.POSITIVE, "price and volume must be positive"
        if not _on_grid(a.price, rules.tick):
            return Rule.TICK, f"the price is not on the symbol's tick {rules.tick:f}"
        if not _on_grid(a.volume, rules.lot):
            return Rule.LOT, f"the volume is not on the symbol's lot {rules.lot:f}"
        if price_limits.breaches(limits, a.side, a.price):
            return Rule.PRICE_LIMIT, price_limits.why(limits, a.side)
        return self._market_problem(a)

    def _market_problem(self, a: Action) -> tuple[Rule, str] | None:
        """Band and post-only: the placement against the reference and the best bid and ask."""
        band, ref, bid, ask = self.job.limits.band, self.book.reference, self.book.bid, self.book.ask
        if band is not None and ref is None:
            return Rule.BAND, f"no trusted reference to measure the band {band} from"
        if band is not None and ref is not None and abs(a.price - ref) > band.of(ref):
            return Rule.BAND, f"farther than the band {band} from the reference {format_decimal(ref)}"
        if self.job.limits.post_only:
            if a.side is Side.BUY and ask is not None and a.price >= ask:
                return Rule.POST_ONLY, f"would take the best ask {format_decimal(ask)} (post_only)"
            if a.side is Side.SELL and bid is not None and a.price <= bid:
                return Rule.POST_ONLY, f"would take the best bid {format_decimal(bid)} (post_only)"
        return None

    def _book_problem(self, a: Action) -> tuple[Rule, str] | None:
        """Self-trade, the order count and the side's volume: the placement against the book being built."""
        if a.side is Side.BUY and self.lowest_sell is not None and a.price >= self.lowest_sell:
            return Rule.SELF_TRADE, f"would trade with the job's own sell at {format_decimal(self.lowest_sell)}"
        if a.side is Side.SELL and self.highest_buy is not None and a.price <= self.highest_buy:
            return Rule.SELF_TRADE, f"would trade with the job's own buy at {format_decimal(self.highest_buy)}"
        most = self.job.limits.max_orders
        if most is not None and self.count + 1 > most:
            return Rule.MAX_ORDERS, f"{self.count + 1} of the job's orders would stand, more than max_orders {most}"
        after = self.volume[a.side] + a.volume
        bound = self.bound[a.side]
        if after > bound and after > self.before[a.side]:
            side = a.side.value.lower()
            return Rule.VOLUME, (
                f"{side} volume would reach {format_decimal(after)}, more than the ladder declares "
                f"({format_decimal(bound)} with tolerance and skew)"
            )
        return None


def _bound(job: Job, side: Side, standing: Sequence[Order]) -> Decimal:
    """The side's volume bound: what the ladder declares, plus what the job's standing orders hold beyond its
    smallest level. An order kept for a level holds at most that level's share; one the planner spares for a
    held level may hold more, which is already on the book and not the batch's doing."""
    sizes = level_volumes(job, side)
    smallest = min(sizes, default=ZERO)
    with localcontext(_SUM):
        extra = sum((max(ZERO, o.remaining - smallest) for o in standing if o.side is side), ZERO)
        return declared_volume(job, side) + extra


def standing_levels(result: Diff) -> dict[str, str]:
    """Order id → the level it stands for, from the planner's diff of this pass (the gate's ``Book.levels``).

    Each kept order (spared ones for held levels too) stands for its target's level. An order ``refresh``
    replaces (cancelled for ``max_age``, its level placed anew) still stands for that level until it is
    cancelled: the nearest placement of its side, so a batch that re-places the level must cancel it."""
    levels = {order.id: target.level for order, target in result.keep}
    for order, reason in result.cancel:
        near = [(abs(t.price - order.price), t.level) for t in result.place if t.side is order.side]
        if reason == CancelReason.MAX_AGE and near:
            levels[order.id] = min(near)[1]
    return levels


def level_side(job: Job, level: str) -> Side | None:
    """The side of a level the job declares (``buy[2]``, ``sell[0]``, ``orders[1]``), None for any other name."""
    match = _LEVEL.fullmatch(level)
    if match is None:
        return None
    name, index = match.group(1), int(match.group(2))
    if name == "orders":
        return job.orders[index].side if index < len(job.orders) else None
    side = Side.BUY if name == "buy" else Side.SELL
    spec = job.side(side)
    return side if spec is not None and index < spec.levels else None


def declared_volume(job: Job, side: Side) -> Decimal:
    """The most volume the job can legitimately have standing on ``side``: every level's size (at the largest
    inventory skew) and every fixed order's, each widened by the size tolerance a kept order may stray by.

    A size too large for a Decimal is never placed (the ladder drops its level) and adds nothing."""
    total = ZERO
    with localcontext(_SUM):
        for size in level_volumes(job, side):
            try:
                total += size
            except ArithmeticError:
                continue
    return total


def level_volumes(job: Job, side: Side) -> list[Decimal]:
    """The most each level and fixed order of ``side`` may hold (see ``declared_volume``); positive ones only."""
    spec = job.side(side)
    factor = _MAX_SKEW if job.inventory is not None else Decimal(1)
    sizes = [(size, factor) for size in _sizes(spec)] if spec is not None else []
    sizes += [(fixed.size, Decimal(1)) for fixed in job.orders if fixed.side is side]
    out = []
    with localcontext(_SUM):
        for size, by in sizes:
            try:
                widened = size * by + job.tolerance.size.of(size * by)
            except ArithmeticError:
                continue
            if widened > 0:
                out.append(widened)
    return out


def _sizes(spec: SideLadder) -> Iterable[Decimal]:
    """The unrounded size of every level (the ladder rounds them down); a size that overflows is left out."""
    for index in range(spec.levels):
        try:
            if spec.size_factor is not None:
                yield spec.size * spec.size_factor**index
            elif spec.size_step is not None:
                yield spec.size + index * spec.size_step
            else:
                yield spec.size
        except ArithmeticError:
            continue


def _on_grid(value: Decimal, quantum: Decimal) -> bool:
    try:
        return value.quantize(quantum) == value
    except ArithmeticError:
        return False


def book_of(
    rules: SymbolRules,
    orders: Sequence[Order],
    owned: frozenset[str] | None,
    reference: Decimal,
    bid: Decimal | None,
    ask: Decimal | None,
    levels: Mapping[str, str] | None = None,
) -> Book:
    """The gate's book from a pass's reading; a reference of 0 (none could be trusted) becomes None.
    ``levels``: the planner's pairing of this pass (``standing_levels``)."""
    return Book(rules, tuple(orders), owned, reference if reference > 0 else None, bid, ask, dict(levels or {}))


def admit(job: Job, book: Book, plan: Plan) -> tuple[Plan, tuple[Refusal, ...]]:
    """A planned pass through the gate: the plan without the actions it refuses, each refused placement dropped
    with the reason ``gate`` and a warning; returns it and the refusals (none: the plan unchanged)."""
    refused = check(job, book, plan.actions)
    if not refused:
        return plan, ()
    out = {id(r.action) for r in refused}
    actions = tuple(a for a in plan.actions if id(a) not in out)
    dropped = tuple(
        Dropped(r.action.level, r.action.side, r.action.price, r.action.volume, GATE)
        for r in refused
        if r.action.level is not None and r.action.action is ActionKind.PLACE
    )
    warnings = tuple(f"gate refused {r.sentence()}; not sent" for r in refused)
    fingerprint = plan_fingerprint(plan.job_hash, book.orders, actions)
    changed = dataclasses.replace(
        plan,
        actions=actions,
        warnings=plan.warnings + warnings,
        dropped=plan.dropped + dropped,
        fingerprint=fingerprint,
    )
    return changed, refused


def refused_message(refused: Sequence[Refusal]) -> str:
    """One line naming each refusal."""
    return "refused by the pre-trade gate: " + "; ".join(r.sentence() for r in refused)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The gate as the executor holds it: the job and the book of the pass, ready to judge the batch it sends."""

    job: Job
    book: Book

    def refusals(self, actions: Sequence[Action]) -> tuple[Refusal, ...]:
        """What the gate refuses of ``actions`` (see ``check``)."""
        return check(self.job, self.book, actions)
