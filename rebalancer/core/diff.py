"""Targets × owned open orders → keep / cancel / place, with the fewest possible cancels and placements.

An open order *fits* a target when the side matches, its price is within ``tolerance.price`` of the target's
price and its remaining volume (volume − deal_volume) is within ``tolerance.size`` of the target's volume
(percent values are of the target's; "within" is inclusive). The diff keeps a **maximum** matching of orders
to targets, so cancels + placements is the least possible; among maximum matchings it keeps the one with the
least total |order price − target price|. Remaining ties are broken by a fixed processing order (orders by id,
targets by price then level), so the same inputs give the same diff whatever order the lists come in.

The matching is split into connected components of the "fits" graph (nearly always one order and one target);
a component with several orders and several targets is solved exactly by min-cost max-flow (successive
shortest augmenting paths, Dijkstra with potentials) on integer costs: no floats anywhere.

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

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

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


def _to_int_costs(costs: Sequence[Decimal]) -> list[int]:
    """Exact integer images of non-negative Decimal costs (all scaled by one power of ten)."""
    exponent = min((c.as_tuple().exponent for c in costs), default=0)
    assert isinstance(exponent, int)
    return [int(c.scaleb(-exponent)) for c in costs]


def min_cost_max_matching(
    n_left: int, n_right: int, edges: Sequence[tuple[int, int, int]]
) -> list[tuple[int, int]]:
    """Maximum-cardinality bipartite matching of least total cost (successive shortest paths with potentials).

    ``edges`` are (left, right, cost ≥ 0). Ties resolve by node index, so the result depends only on the
    input. It starts from a greedy matching of zero-cost edges (orders still exactly on their targets): such a
    matching is the cheapest of its size with all potentials zero, a valid start for successive shortest
    paths, and it leaves only the few drifted orders to augment. Each Dijkstra stops when it reaches the sink.
    """
    adj: list[list[tuple[int, int]]] = [[] for _ in range(n_left)]
    cost: dict[tuple[int, int], int] = {}
    for left, right, c in sorted(edges):
        adj[left].append((right, c))
        cost[left, right] = c
    match_l = [-1] * n_left
    match_r = [-1] * n_right
    for i in range(n_left):
        for j, c in adj[i]:
            if c == 0 and match_r[j] < 0:
                match_l[i], match_r[j] = j, i
                break
    # nodes: 0 = source, 1..n_left = left, n_left+1..n_left+n_right = right, sink = n_left+n_right+1
    sink = n_left + n_right + 1
    pot = [0] * (sink + 1)
    while True:
        dist: dict[int, int] = {0: 0}
        done: dict[int, int] = {}
        prev: dict[int, int] = {}
        heap = [(0, 0)]
        while heap:
            d, u = heapq.heappop(heap)
            if u in done:
                continue
            done[u] = d
            if u == sink:
                break
            if u == 0:
                steps = [(i + 1, 0) for i in range(n_left) if match_l[i] < 0]
            elif u <= n_left:
                i = u - 1
                steps = [(n_left + 1 + j, c) for j, c in adj[i] if match_l[i] != j]
            else:
                j = u - n_left - 1
                steps = [(match_r[j] + 1, -cost[match_r[j], j])] if match_r[j] >= 0 else [(sink, 0)]
            for v, c in steps:
                nd = d + c + pot[u] - pot[v]
                if v not in done and (v not in dist or nd < dist[v]):
                    dist[v] = nd
                    prev[v] = u
                    heapq.heappush(heap, (nd, v))
        if sink not in done:
            break
        # Johnson's update, cut at the sink's distance D: settled nodes get d - D, every other node 0
        # (shifting all potentials by -D changes no reduced cost), so reduced costs stay non-negative.
        reach = done[sink]
        for v, d in done.items():
            pot[v] += d - reach
        v = prev[sink]
        while v != 0:
            u = prev[v]  # v is a right node reached from left node u
            i, j = u - 1, v - n_left - 1
            match_l[i], match_r[j] = j, i
            v = prev[u]  # the right node u was matched to before (or the source)
    return [(i, j) for i, j in enumerate(match_l) if j >= 0]


class _Side:
    """Targets of one side, sorted by price, with their tolerance windows."""

    def __init__(self, targets: list[Target], tolerance: Tolerance) -> None:
        self.targets = sorted(targets, key=target_key)
        self.prices = [t.price for t in self.targets]
        self.price_tol = [tolerance.price.of(t.price) for t in self.targets]
        self.size_tol = [tolerance.size.of(t.volume) for t in self.targets]
        self.width = max(self.price_tol, default=Decimal(0))

    def near(self, price: Decimal) -> range:
        """Indices of the targets whose price could be within tolerance of ``price``."""
        return range(
            bisect_left(self.prices, price - self.width), bisect_right(self.prices, price + self.width)
        )

    def price_fits(self, price: Decimal) -> bool:
        """Whether ``price`` is within price tolerance of some target."""
        return any(abs(price - self.prices[j]) <= self.price_tol[j] for j in self.near(price))


def _match_side(orders: list[Order], side: _Side) -> tuple[dict[int, int], list[bool]]:
    """Best matching order index → target index, and for each order whether it fits any target at all."""
    edges: list[tuple[int, int, Decimal]] = []
    fits_any = [False] * len(orders)
    for i, order in enumerate(orders):
        remaining = order.remaining
        for j in side.near(order.price):
            gap = abs(order.price - side.prices[j])
            if gap <= side.price_tol[j] and abs(remaining - side.targets[j].volume) <= side.size_tol[j]:
                edges.append((i, j, gap))
                fits_any[i] = True
    parent = list(range(len(orders) + len(side.targets)))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    offset = len(orders)
    for i, j, _ in edges:
        a, b = root(i), root(offset + j)
        if a != b:
            parent[a] = b
    groups: dict[int, list[tuple[int, int, Decimal]]] = {}
    for edge in edges:
        groups.setdefault(root(edge[0]), []).append(edge)
    matched: dict[int, int] = {}
    for group in groups.values():
        if len(group) == 1:
            matched[group[0][0]] = group[0][1]
            continue
        lefts = sorted({i for i, _, _ in group})
        rights = sorted({j for _, j, _ in group})
        if len(lefts) == 1 or len(rights) == 1:
            i, j, _ = min(group, key=lambda e: (e[2], e[0], e[1]))
            matched[i] = j
            continue
        li = {i: k for k, i in enumerate(lefts)}
        ri = {j: k for k, j in enumerate(rights)}
        costs = _to_int_costs([gap for _, _, gap in group])
        local = [(li[i], ri[j], c) for (i, j, _), c in zip(group, costs, strict=True)]
        for a, b in min_cost_max_matching(len(lefts), len(rights), local):
            matched[lefts[a]] = rights[b]
    return matched, fits_any


def _reason(order: Order, fits_any: bool, side: _Side, over: _Side) -> CancelReason:
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
        side = _Side([t for t in targets if t.side is side_value], tolerance)
        over = _Side([t for t in over_limit if t.side is side_value], tolerance)
        live: list[Order] = []
        for o in canonical:
            if o.side is not side_value or not o.is_open:
                continue
            if limit is not None and abs(o.price - reference_price) > limit:
                cancel.append((o, CancelReason.OUTSIDE_BAND))
            else:
                live.append(o)
        matched, fits_any = _match_side(live, side)
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
