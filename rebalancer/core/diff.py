"""Targets × owned open orders → keep / cancel / place, with the fewest possible cancels and placements.

An open order *fits* a target when the side matches, its price is within ``tolerance.price`` of the target's
price and its remaining volume (volume − deal_volume) is within ``tolerance.size`` of the target's volume
(percent values are of the target's; "within" is inclusive). Of all the ways to let orders stand for targets
(each at most once), the diff keeps the best by, in this order:

1. the most kept orders (so cancels + placements is the least possible);
2. the least total |order price − target price|;
3. the kept orders that come first in canonical order (``order_key``: numeric ids by value, so "9" before
   "10"): of two candidate sets, the one holding the first order on which they differ wins;
4. likewise the kept targets, in ``target_key`` order (price, then level name, then volume);
5. kept orders and kept targets are paired in price order (equal prices in the orders above), where the sizes
   allow it, as they always do among targets of one volume.

So the same inputs give the same diff whatever order the lists come in.

How: per side, the fits graph splits into connected components; nearly all of them are points on a line
with monotone windows, matched exactly in O(n log n) (``side_match`` says which, ``line_matching`` holds the
proof); the rest go to an exact general matcher (``matching``). Prices become exactly scaled integers: no
floats anywhere.

Every cancelled order carries the first reason that applies, in this precedence:

1. ``outside_band``: farther than the band from the reference (even if it fits a target);
2. ``over_max_orders``: its price is within tolerance of a target dropped by ``max_orders``;
3. ``duplicate_level``: it fits a target, but another order keeps that target;
4. ``partially_filled``: status 3, price within tolerance of a target, size not;
5. ``size_out_of_tolerance``: price within tolerance of a target of its side, size not;
6. ``price_out_of_tolerance``: its side has targets, none within price tolerance;
7. ``not_in_ladder``: no target on its side.

Orders in status 5 (cancel pending) are neither kept nor cancelled again: they come back in ``pending``.
Orders in any other closed status (2, 4, 6) do not rest on the book and are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.core.side_match import SideTargets, match_side
from rebalancer.job import Amount, Tolerance
from rebalancer.models import Order, OrderStatus, Side, Target
from rebalancer.vocab import CancelReason

REASONS = tuple(CancelReason)
"""Every cancel reason, in precedence order."""


@dataclass(frozen=True, slots=True)
class Diff:
    """What to keep (order, target), cancel (order, reason) and place; ``pending`` = status 5, left alone."""

    keep: tuple[tuple[Order, Target], ...]
    cancel: tuple[tuple[Order, CancelReason], ...]
    place: tuple[Target, ...]
    pending: tuple[Order, ...] = ()


def order_key(order: Order) -> tuple[object, ...]:
    """Canonical order of open orders: numeric ids by value first, then any other id as text."""
    numeric = order.id.isdigit()
    return (
        0 if numeric else 1,
        int(order.id) if numeric else 0,
        order.id,
        order.side.value,
        order.price,
        order.volume,
        order.deal_volume,
        int(order.status),
    )


def target_key(target: Target) -> tuple[object, ...]:
    """Canonical order of targets: price, then level name, then volume."""
    return (target.price, target.level, target.volume)


def fits(order: Order, target: Target, tolerance: Tolerance) -> bool:
    """True when ``order`` may stand for ``target``: same side, price and remaining volume in tolerance."""
    return (
        order.side is target.side
        and abs(order.price - target.price) <= tolerance.price.of(target.price)
        and abs(order.remaining - target.volume) <= tolerance.size.of(target.volume)
    )


def _band_limit(band: Amount | Decimal | None, reference: Decimal) -> Decimal | None:
    if band is None or isinstance(band, Decimal):
        return band
    return band.of(reference)


def _reason(order: Order, fits_any: bool, side: SideTargets, over: SideTargets) -> CancelReason:
    """Why an unmatched, inside-band order is cancelled (precedence in the module docstring)."""
    if over.targets and over.price_fits(order.price):
        return CancelReason.OVER_MAX_ORDERS
    if fits_any:
        return CancelReason.DUPLICATE_LEVEL
    if not side.targets:
        return CancelReason.NOT_IN_LADDER
    if side.price_fits(order.price):
        if order.status is OrderStatus.PARTIALLY_FILLED:
            return CancelReason.PARTIALLY_FILLED
        return CancelReason.SIZE_OUT_OF_TOLERANCE
    return CancelReason.PRICE_OUT_OF_TOLERANCE


def reconcile(
    targets: Sequence[Target],
    orders: Sequence[Order],
    tolerance: Tolerance,
    *,
    reference_price: Decimal,
    band: Amount | Decimal | None = None,
    over_limit: Sequence[Target] = (),
) -> Diff:
    """Diff the targets against the owned open orders: keep the most orders possible, cancel and place the
    rest.

    ``orders`` must already be the owned ones. ``band`` is the job's band (an ``Amount`` of the reference, or
    an absolute distance); ``over_limit`` are the targets ``max_orders`` dropped, used only to explain
    cancels. Output tuples are sorted: keeps and cancels by (side, price, order), placements by (side, price,
    level).
    """
    limit = _band_limit(band, reference_price)
    canonical = sorted(orders, key=order_key)
    rank = {id(o): k for k, o in enumerate(canonical)}
    keep: list[tuple[Order, Target]] = []
    cancel: list[tuple[Order, CancelReason]] = []
    place: list[Target] = []
    for side_value in (Side.BUY, Side.SELL):
        side = SideTargets(sorted((t for t in targets if t.side is side_value), key=target_key), tolerance)
        over = SideTargets(sorted((t for t in over_limit if t.side is side_value), key=target_key), tolerance)
        live: list[Order] = []
        for o in canonical:
            if o.side is not side_value or not o.is_open:
                continue
            if limit is not None and abs(o.price - reference_price) > limit:
                cancel.append((o, CancelReason.OUTSIDE_BAND))
            else:
                live.append(o)
        matched, fits_any = match_side(live, side)
        taken = set(matched.values())
        for i, order in enumerate(live):
            if i in matched:
                keep.append((order, side.targets[matched[i]]))
            else:
                cancel.append((order, _reason(order, fits_any[i], side, over)))
        place.extend(t for j, t in enumerate(side.targets) if j not in taken)

    def by_book(pair: tuple[Order, object]) -> tuple[str, Decimal, int]:
        return (pair[0].side.value, pair[0].price, rank[id(pair[0])])

    return Diff(
        keep=tuple(sorted(keep, key=by_book)),
        cancel=tuple(sorted(cancel, key=by_book)),
        place=tuple(sorted(place, key=lambda t: (t.side.value, *target_key(t)))),
        pending=tuple(o for o in canonical if o.status is OrderStatus.CANCEL_PENDING),
    )
