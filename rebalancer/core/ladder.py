"""Job + market snapshot → the target ladder: levels, sizes, rounding to the symbol, guards.

Pure: values in, values out. Every price and volume is a ``Decimal``; rounding never makes an order more
aggressive (buy prices down, sell prices up, volumes down).

Decisions worth knowing:

* Two levels of one side that round to the same price tick are **merged**: the nearer level keeps its name and
  receives the farther one's volume, so the side keeps the volume the job asked for. Fixed ``orders`` are
  never merged (the job asked for them explicitly); a fixed order on a ladder's tick simply stands beside it.
* ``max_notional`` scales every level of the side by one ratio (computed on the rounded prices), then volumes
  round down, so the side's notional never exceeds the cap. Fixed orders are outside the cap.
* Guards run in this order: ``band``, ``post_only``, ``max_orders``. Each dropped target is a warning and a
  ``Dropped`` record; targets dropped by ``max_orders`` are also kept in ``Ladder.over_limit`` so the diff can
  explain why an open order standing there is cancelled.
* A level whose price or size cannot be held in 28 digits at the symbol's tick or lot (a geometric step or a
  ``size_factor`` compounded over hundreds of levels) is dropped with the reason ``out_of_range``; the rest of the
  pass rounds in that precision, so such a level could only fail it.
* Funding (``rebalancer.core.funding``) runs after the diff, since it needs to know what the cancels release; it
  drops the placements farthest from the reference first until each side's placements fit the available
  balance plus the released funds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)

from rebalancer.core import limits as price_limits
from rebalancer.core.dropped import Dropped, Notes, distance_key, side_then_distance
from rebalancer.core.skew import Skew
from rebalancer.errors import ConfigError, UnsafePlanError
from rebalancer.job import Job, ReferenceKind, SideLadder, Spacing
from rebalancer.models import ZERO, MarketSnapshot, Side, SymbolRules, Target, Ticker
from rebalancer.vocab import DropReason

_HUNDRED = 100
# The default context's 28 digits, with its traps spelled out: the precision every later step rounds in.
_BOUNDED = Context(prec=28, traps=[InvalidOperation, DivisionByZero, Overflow])


@dataclass(frozen=True, slots=True)
class Ladder:
    """The targets of one pass, sorted by side (BUY first) then distance from the reference, nearest first."""

    reference_price: Decimal
    targets: tuple[Target, ...]
    warnings: tuple[str, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    over_limit: tuple[Target, ...] = ()


def reference_price(job: Job, ticker: Ticker) -> Decimal:
    """The price the ladder hangs from; raises ``UnsafePlanError`` when the market cannot give it."""
    kind = job.reference.kind
    if kind is ReferenceKind.FIXED:
        price = job.reference.price
        if price is None or price <= 0:
            raise UnsafePlanError(f"{job.name}: the fixed reference price must be positive, got {price}")
        return price
    if kind in (ReferenceKind.MID, ReferenceKind.BID, ReferenceKind.ASK) and ticker.crossed:
        raise UnsafePlanError(
            f"{job.name}: the book of {job.symbol} is crossed (bid {ticker.bid} >= ask {ticker.ask}); "
            f"refusing to hang a ladder from '{kind.value}'"
        )
    price = {
        ReferenceKind.MID: ticker.mid,
        ReferenceKind.BID: ticker.bid,
        ReferenceKind.ASK: ticker.ask,
        ReferenceKind.LAST: ticker.last,
    }[kind]
    if price is None or price <= 0:
        raise UnsafePlanError(
            f"{job.name}: no '{kind.value}' price for {job.symbol} (bid {ticker.bid}, ask {ticker.ask}, "
            f"last {ticker.last}); refusing to plan without a reference"
        )
    return price


def _raw_levels(side: Side, spec: SideLadder, ref: Decimal) -> Iterable[tuple[int, Decimal | None, Decimal | None]]:
    """(index, unrounded price, unrounded size) of every level of one side; None where a value overflows."""
    away = -1 if side is Side.BUY else 1
    first = spec.first.of(ref)
    if spec.spacing is Spacing.GEOMETRIC:
        if not spec.step.percent:
            raise ConfigError(f"{side.value.lower()}: geometric spacing needs a percent step, got {spec.step}")
        factor = 1 + away * spec.step.value / _HUNDRED
        price: Decimal | None = ref + away * first
    else:
        step = spec.step.of(ref)
    # Compounding steps and factors can outgrow any Decimal: such a value is None, and its level dropped later.
    for i in range(spec.levels):
        with localcontext(_BOUNDED):
            try:
                if spec.spacing is Spacing.LINEAR:
                    price = ref + away * (first + i * step)
                elif i and price is not None:
                    price = price * factor
            except ArithmeticError:
                price = None
            try:
                size: Decimal | None = _size(spec, i)
            except ArithmeticError:
                size = None
        yield i, price, size


def _size(spec: SideLadder, index: int) -> Decimal:
    """The unrounded size of level ``index``: flat, stepped or multiplied per level."""
    if spec.size_factor is not None:
        return spec.size * spec.size_factor**index
    if spec.size_step is not None:
        return spec.size + index * spec.size_step
    return spec.size


def _rounded(value: Decimal, quantum: Decimal, rounding: str) -> Decimal | None:
    """``value`` rounded to ``quantum``, or None when the result needs more digits than a price or volume holds.

    Every later step (diff, plan, batch, state) rounds in the default context of 28 digits: a level that cannot be
    held there is out of range, and is dropped here with a reason instead of failing the pass.
    """
    try:
        return value.quantize(quantum, rounding=rounding, context=_BOUNDED)
    except ArithmeticError:
        return None


def _side_targets(
    side: Side, spec: SideLadder, ref: Decimal, rules: SymbolRules, notes: Notes, factor: Decimal = Decimal(1)
) -> list[Target]:
    """The rounded, capped, merged and minimum-checked levels of one side; ``factor`` scales every size (the
    inventory skew)."""
    name = side.value.lower()
    # the same rounding as SymbolRules.round_price / round_volume, with the quanta computed once per side
    tick, lot = rules.tick, rules.lot
    away = ROUND_CEILING if side is Side.SELL else ROUND_FLOOR
    levels: list[tuple[str, Decimal, Decimal]] = []
    for i, raw_price, unskewed in _raw_levels(side, spec, ref):
        level = f"{name}[{i}]"
        if raw_price is None or unskewed is None:
            what = "price" if raw_price is None else "size"
            notes.drop(level, side, None, None, DropReason.OUT_OF_RANGE, f"{level}: {what} out of range; level dropped")
            continue
        size = unskewed * factor
        if factor == 0 and unskewed > 0:
            message = f"{level}: not placed, the inventory skew sets {name} sizes to 0"
            notes.drop(level, side, None, None, DropReason.INVENTORY, message)
            continue
        if raw_price <= 0:
            notes.drop(
                level,
                side,
                None,
                None,
                DropReason.NON_POSITIVE_PRICE,
                f"{level}: price {raw_price:f} is not positive; level dropped",
            )
            continue
        if size <= 0:
            notes.drop(
                level,
                side,
                None,
                None,
                DropReason.NON_POSITIVE_SIZE,
                f"{level}: size {size:f} is not positive; level dropped",
            )
            continue
        price = _rounded(raw_price, tick, away)
        if price is None:
            message = f"{level}: price {raw_price:.6E} out of range at the symbol's tick; level dropped"
            notes.drop(level, side, None, size, DropReason.OUT_OF_RANGE, message)
            continue
        if price <= 0:
            notes.drop(
                level,
                side,
                None,
                None,
                DropReason.NON_POSITIVE_PRICE,
                f"{level}: price {raw_price:f} rounds to zero at the symbol's tick; level dropped",
            )
            continue
        levels.append((level, price, size))
    if spec.max_notional is not None and levels:
        notional = sum((price * size for _, price, size in levels), ZERO)
        if notional > spec.max_notional:
            ratio = spec.max_notional / notional
            levels = [(level, price, size * ratio) for level, price, size in levels]
            notes.warnings.append(
                f"{name}: notional {_show(rules, notional)} exceeds max_notional "
                f"{spec.max_notional:f}; every size scaled by {ratio.quantize(_RATIO_PLACES):f}"
            )
    merged: list[tuple[str, Decimal, Decimal]] = []
    for level, price, size in levels:
        volume = _rounded(size, lot, ROUND_FLOOR)
        if volume is None:
            message = f"{level}: size {size:.6E} out of range at the symbol's lot; level dropped"
            notes.drop(level, side, price, None, DropReason.OUT_OF_RANGE, message)
            continue
        if merged and merged[-1][1] == price:
            into, _, before = merged[-1]
            total = _rounded(before + volume, lot, ROUND_FLOOR)
            if total is None:
                message = f"{level}: merging its volume into {into} would pass 28 digits at the lot; level dropped"
                notes.drop(level, side, price, volume, DropReason.OUT_OF_RANGE, message)
                continue
            merged[-1] = (into, price, total)
            notes.drop(
                level,
                side,
                price,
                volume,
                DropReason.MERGED,
                f"{level}: rounds to the same tick {rules.format_price(price)} as {into}; merged into it",
            )
            continue
        merged.append((level, price, volume))
    return [
        Target(level, side, price, volume)
        for level, price, volume in merged
        if _volume_ok(volume, rules, notes, level, side, price)
    ]


_RATIO_PLACES = Decimal("0.0001")


def _show(rules: SymbolRules, price: Decimal) -> str:
    """A price for a message: the symbol's places when it has no more, else as is (messages never round)."""
    try:
        return rules.format_price(price)
    except (ValueError, ArithmeticError):
        return f"{price:f}"


def _volume_ok(volume: Decimal, rules: SymbolRules, notes: Notes, level: str, side: Side, price: Decimal) -> bool:
    """False (and a warning) when the rounded volume is zero or under the symbol's minimum."""
    if volume > 0 and (rules.min_volume is None or volume >= rules.min_volume):
        return True
    minimum = rules.min_volume if rules.min_volume is not None else rules.lot
    notes.drop(
        level,
        side,
        price,
        volume,
        DropReason.BELOW_MIN_VOLUME,
        f"{level}: volume {volume:f} is below the minimum {minimum:f}; level dropped",
    )
    return False


def _fixed_targets(job: Job, rules: SymbolRules, notes: Notes) -> list[Target]:
    """The job's fixed ``orders``, rounded like the ladder."""
    out: list[Target] = []
    for i, fixed in enumerate(job.orders):
        level = f"orders[{i}]"
        if fixed.price <= 0 or fixed.size <= 0:
            notes.drop(
                level,
                fixed.side,
                None,
                None,
                DropReason.NON_POSITIVE_PRICE if fixed.price <= 0 else DropReason.NON_POSITIVE_SIZE,
                f"{level}: price and size must be positive; order dropped",
            )
            continue
        price = _rounded(fixed.price, rules.tick, ROUND_CEILING if fixed.side is Side.SELL else ROUND_FLOOR)
        volume = _rounded(fixed.size, rules.lot, ROUND_FLOOR)
        if price is None or volume is None:
            what = "price" if price is None else "size"
            notes.drop(
                level, fixed.side, None, None, DropReason.OUT_OF_RANGE, f"{level}: {what} out of range; order dropped"
            )
        elif price <= 0:
            notes.drop(
                level,
                fixed.side,
                None,
                None,
                DropReason.NON_POSITIVE_PRICE,
                f"{level}: price {fixed.price:f} rounds to zero at the symbol's tick; order dropped",
            )
        elif _volume_ok(volume, rules, notes, level, fixed.side, price):
            out.append(Target(level, fixed.side, price, volume))
    return out


def _guards(
    job: Job, targets: list[Target], ref: Decimal, snapshot: MarketSnapshot, notes: Notes
) -> tuple[list[Target], list[Target]]:
    """Apply the price limits, band, post_only and max_orders; returns (kept targets, targets over max_orders)."""
    rules, limits, ticker = snapshot.rules, job.limits, snapshot.ticker
    allowed = []
    for t in targets:
        if price_limits.breaches(limits, t.side, t.price):
            notes.drop_target(
                t,
                DropReason.PRICE_LIMIT,
                f"{t.level}: {rules.format_price(t.price)} is {price_limits.why(limits, t.side)}; dropped",
            )
        else:
            allowed.append(t)
    targets = allowed
    if limits.band is not None:
        band = limits.band.of(ref)
        inside = []
        for t in targets:
            if abs(t.price - ref) > band:
                notes.drop_target(
                    t,
                    DropReason.OUTSIDE_BAND,
                    f"{t.level}: {rules.format_price(t.price)} is farther than the band {limits.band} "
                    f"from the reference {_show(rules, ref)}; dropped",
                )
            else:
                inside.append(t)
        targets = inside
    if limits.post_only:
        passive = []
        for t in targets:
            if t.side is Side.BUY and ticker.ask is not None and t.price >= ticker.ask:
                notes.drop_target(
                    t,
                    DropReason.POST_ONLY,
                    f"{t.level}: buy at {rules.format_price(t.price)} would take the best ask "
                    f"{ticker.ask:f}; dropped (post_only)",
                )
            elif t.side is Side.SELL and ticker.bid is not None and t.price <= ticker.bid:
                notes.drop_target(
                    t,
                    DropReason.POST_ONLY,
                    f"{t.level}: sell at {rules.format_price(t.price)} would take the best bid "
                    f"{ticker.bid:f}; dropped (post_only)",
                )
            else:
                passive.append(t)
        targets = passive
    over: list[Target] = []
    if limits.max_orders is not None and len(targets) > limits.max_orders:
        ranked = sorted(targets, key=lambda t: distance_key(t, ref))
        targets, over = ranked[: limits.max_orders], ranked[limits.max_orders :]
        for t in over:
            notes.drop_target(
                t,
                DropReason.OVER_MAX_ORDERS,
                f"{t.level}: beyond max_orders {limits.max_orders}; dropped",
            )
    return targets, over


def quote_of(job: Job, snapshot: MarketSnapshot) -> Ticker:
    """The quote the job's reference is read from: the other venue's when the job names one, else this venue's."""
    if job.reference.source is not None and snapshot.reference_quote is not None:
        return snapshot.reference_quote
    return snapshot.ticker


def build(job: Job, snapshot: MarketSnapshot, skew: Skew | None = None) -> Ladder:
    """Compute the target ladder of ``job`` on ``snapshot``: levels, fixed orders, rounding and guards.

    ``skew`` (the inventory skew) scales the ladder's sizes per side; fixed orders keep their sizes. Balance
    trimming is not done here because it depends on which orders the diff cancels: see
    ``rebalancer.core.funding``.
    """
    ref = reference_price(job, quote_of(job, snapshot))
    notes = Notes()
    targets: list[Target] = []
    for side in (Side.BUY, Side.SELL):
        spec = job.side(side)
        if spec is not None:
            factor = skew.factor(side) if skew is not None else Decimal(1)
            targets.extend(_side_targets(side, spec, ref, snapshot.rules, notes, factor))
    targets.extend(_fixed_targets(job, snapshot.rules, notes))
    targets, over = _guards(job, targets, ref, snapshot, notes)
    key = side_then_distance(ref)
    return Ladder(
        ref,
        tuple(sorted(targets, key=key)),
        tuple(notes.warnings),
        tuple(notes.dropped),
        tuple(sorted(over, key=key)),
    )
