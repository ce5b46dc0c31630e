"""The diff's matching for one side: which open orders keep which targets (rules in ``diff``'s docstring).

Each target's price window is ``price ± tolerance``; both ends are non-decreasing in the price (a tolerance is
one distance, or one percent of the price; a percent over 100 % gives lower ends below zero, which no price
reaches, read as zero). So the targets whose window holds an order's price are one run of the price-sorted
targets. An order is

* *transparent* when its remaining volume is within size tolerance of every target of its run (the volumes
  within size tolerance of a volume form one interval, so checking the run's least and greatest volume is
  enough): for it, fitting is a matter of price alone;
* *blocked* when it fits no target of its run;
* *partial* otherwise (its run mixes volumes, some within size tolerance and some not).

The fits graph splits into connected components, found without listing the pairs of transparent orders (their
runs link neighbouring targets). A component without partial orders is the points-on-a-line problem that
``line_matching`` solves exactly in O(n log n): its exchange arguments only move an order to another target of
its own run, which a transparent order fits. That is every component of a flat ladder, and of any ladder whose
neighbouring levels' volumes are not within size tolerance of each other. A component with a partial order is
matched exactly by ``matching`` (one order or one target: the nearest, then the first in order), with the
tie-break folded into integer costs.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Sequence
from decimal import Decimal, Inexact, localcontext

from rebalancer.core.line_matching import match_on_line
from rebalancer.job import Tolerance
from rebalancer.models import Order, Target

ZERO = Decimal(0)
SINK = -1  # the search graph's sink node (orders are >= 0, targets are offset + index)


class SideTargets:
    """Targets of one side, sorted by the caller's canonical key (price first), with their windows."""

    def __init__(self, targets: list[Target], tolerance: Tolerance) -> None:
        self.targets = targets
        self.prices = [t.price for t in targets]
        self.price_tol = [tolerance.price.of(p) for p in self.prices]
        self.low = [max(p - w, ZERO) for p, w in zip(self.prices, self.price_tol, strict=True)]
        self.high = [p + w for p, w in zip(self.prices, self.price_tol, strict=True)]
        self.volumes = [t.volume for t in targets]
        self.size_tol = [tolerance.size.of(v) for v in self.volumes]
        self._spread: _RangeMinMax | None = None
        pairs = list(zip(self.volumes, self.volumes[1:], strict=False))
        self._monotone = all(a <= b for a, b in pairs) or all(a >= b for a, b in pairs)

    def price_fits(self, price: Decimal) -> bool:
        """Whether ``price`` is within price tolerance of some target."""
        j = bisect_left(self.high, price)
        return j < len(self.targets) and self.low[j] <= price

    def run(self, price: Decimal) -> tuple[int, int]:
        """[first, end) of the targets whose price window holds ``price``."""
        return bisect_left(self.high, price), bisect_right(self.low, price)

    def size_fits(self, remaining: Decimal, j: int) -> bool:
        """Whether ``remaining`` is within size tolerance of target ``j``'s volume."""
        return abs(remaining - self.volumes[j]) <= self.size_tol[j]

    def transparent(self, remaining: Decimal, first: int, end: int) -> bool:
        """Whether ``remaining`` fits every target of the run [first, end) in size."""
        if self._monotone:  # flat, or sizes growing (or shrinking) level by level: the ends are the extremes
            return self.size_fits(remaining, first) and self.size_fits(remaining, end - 1)
        if self._spread is None:
            self._spread = _RangeMinMax(self.volumes)
        least, greatest = self._spread.query(first, end)
        return self.size_fits(remaining, least) and self.size_fits(remaining, greatest)


class _RangeMinMax:
    """Index of the least and of the greatest volume in any range, in O(1) after O(n log n) set-up."""

    def __init__(self, values: list[Decimal]) -> None:
        self.values = values
        low, high = [list(range(len(values)))], [list(range(len(values)))]
        width = 1
        while 2 * width <= len(values):
            lo, hi = low[-1], high[-1]
            low.append([min(lo[i], lo[i + width], key=values.__getitem__) for i in range(len(lo) - width)])
            high.append([max(hi[i], hi[i + width], key=values.__getitem__) for i in range(len(hi) - width)])
            width *= 2
        self.low, self.high = low, high

    def query(self, first: int, end: int) -> tuple[int, int]:
        """(index of the least, index of the greatest) value in [first, end), which must not be empty."""
        level = (end - first).bit_length() - 1
        a, b = first, end - (1 << level)
        get = self.values.__getitem__
        return (
            min(self.low[level][a], self.low[level][b], key=get),
            max(self.high[level][a], self.high[level][b], key=get),
        )


class _Groups:
    """Union-find over integers."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def root(self, x: int) -> int:
        """The representative of ``x``'s group."""
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def join(self, a: int, b: int) -> None:
        """Put ``a`` and ``b`` in one group."""
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[ra] = rb


def match_side(orders: list[Order], side: SideTargets) -> tuple[dict[int, int], list[bool]]:
    """Best matching order index → target index, and for each order whether it fits any target at all.

    ``orders`` come in canonical order (an index is the order's rank) and ``side.targets`` in target order."""
    n = len(side.targets)
    runs: list[tuple[int, int] | None] = []  # transparent orders' runs
    lists: dict[int, list[int]] = {}  # partial orders' targets
    links = [0] * (n + 1)  # links[j] > 0: a transparent run holds targets j and j + 1
    for i, order in enumerate(orders):
        first, end = side.run(order.price) if n else (0, 0)
        remaining = order.remaining
        if first < end and side.transparent(remaining, first, end):
            runs.append((first, end))
            links[first] += 1
            links[end - 1] -= 1
            continue
        runs.append(None)
        fitting = [j for j in range(first, end) if side.size_fits(remaining, j)]
        if fitting:
            lists[i] = fitting
    groups = _Groups(n)
    covered = 0
    for j in range(n - 1):
        covered += links[j]
        if covered > 0:
            groups.join(j, j + 1)
    for fitting in lists.values():
        for j in fitting[1:]:
            groups.join(fitting[0], j)
    members: dict[int, list[int]] = {}
    for i, run in enumerate(runs):
        anchor = run[0] if run is not None else lists[i][0] if i in lists else None
        if anchor is not None:
            members.setdefault(groups.root(anchor), []).append(i)
    fits_any = [run is not None or i in lists for i, run in enumerate(runs)]
    if not members:
        return {}, fits_any
    exponent = _exponent([orders[i].price for ids in members.values() for i in ids] + side.prices + side.price_tol)
    targets_of: dict[int, list[int]] = {}
    for j in range(n):
        targets_of.setdefault(groups.root(j), []).append(j)
    matched: dict[int, int] = {}
    for root, lefts in members.items():
        rights = targets_of[root]
        if len(lefts) == 1 and len(rights) == 1:
            matched[lefts[0]] = rights[0]
        elif len(lefts) == 1 or len(rights) == 1:  # the nearest, then the first in order
            edges = [(i, j) for i in lefts for j in _targets_of_order(i, runs, lists)]
            i, j = min(edges, key=lambda e: (abs(orders[e[0]].price - side.prices[e[1]]), e))
            matched[i] = j
        elif not any(i in lists for i in lefts):
            matched.update(_match_line(orders, lefts, rights, side, exponent))
        else:
            matched.update(_match_mixed(orders, lefts, rights, runs, lists, side, exponent))
    return matched, fits_any


def _targets_of_order(i: int, runs: list[tuple[int, int] | None], lists: dict[int, list[int]]) -> Sequence[int]:
    run = runs[i]
    return range(*run) if run is not None else lists[i]


def _exponent(values: Sequence[Decimal]) -> int:
    """The power of ten that turns every one of ``values`` into an integer, exactly.

    An exact Decimal sum carries the smallest exponent of its terms, so one sum answers for all of them; if the
    sum had to round (more digits than the context keeps), every exponent is read instead."""
    with localcontext() as context:
        context.clear_flags()
        total = sum(values, ZERO)
        exact = not context.flags[Inexact]
    exponents = [total.as_tuple().exponent] if exact else [v.as_tuple().exponent for v in values]
    smallest = min([0, *exponents])
    assert isinstance(smallest, int)  # finite numbers only
    return -smallest


def _rewards(n_left: int, n_right: int) -> tuple[list[int], list[int]]:
    """Tie-break weights: keeping an earlier order outweighs every later order and every target together;
    then the same for targets. Distinct powers of two, so kept sets compare lexicographically."""
    total = n_left + n_right
    return [1 << (total - 1 - k) for k in range(n_left)], [1 << (n_right - 1 - k) for k in range(n_right)]


def _match_line(
    orders: list[Order],
    lefts: list[int],
    rights: list[int],
    side: SideTargets,
    exponent: int,
    left_reward: list[int] | None = None,
) -> dict[int, int]:
    """Transparent orders and their targets (both lists ascending): the line sweep, then kept orders and kept
    targets paired in price order. Rewards are by rank unless given for the orders (then the targets' come
    below them all)."""
    if left_reward is None:
        left_reward, right_reward = _rewards(len(lefts), len(rights))
    else:
        right_reward = _rewards(0, len(rights))[1]
    line_orders = [(int(orders[i].price.scaleb(exponent)), r) for i, r in zip(lefts, left_reward, strict=True)]
    line_targets = []
    for j, r in zip(rights, right_reward, strict=True):
        p, w = int(side.prices[j].scaleb(exponent)), int(side.price_tol[j].scaleb(exponent))
        line_targets.append((p, max(p - w, 0), p + w, r))
    pairs = match_on_line(line_orders, line_targets)
    kept_orders = sorted((lefts[a] for a, _ in pairs), key=lambda i: (orders[i].price, i))
    kept_targets = sorted(rights[b] for _, b in pairs)  # targets are sorted by price already
    return dict(zip(kept_orders, kept_targets, strict=True))


def _match_mixed(
    orders: list[Order],
    lefts: list[int],
    rights: list[int],
    runs: list[tuple[int, int] | None],
    lists: dict[int, list[int]],
    side: SideTargets,
    exponent: int,
) -> dict[int, int]:
    """A component with partial orders: the line sweep on its transparent orders, then each partial order
    added by one shortest augmenting path (adding a row to an optimal assignment, as the Hungarian method
    does), which keeps the assignment optimal.

    Costs are exact integers encoding the objective: an edge costs ``gap * unit + unit - rewards`` (one unit of
    distance outweighs every reward together) and leaving an order unmatched costs ``never``, more than any
    set of edges, so the most pairs come first. Node potentials from one Bellman-Ford pass make every residual
    arc non-negative; each search is then a Dijkstra, and the potentials are carried along (Johnson)."""
    left_reward, right_reward = _rewards(len(lefts), len(rights))
    reward = dict(zip(lefts, left_reward, strict=True))
    offset = len(orders)  # target j is node offset + j
    reward.update((offset + j, r) for j, r in zip(rights, right_reward, strict=True))
    unit = 1 << (len(lefts) + len(rights))
    transparent = [i for i in lefts if i not in lists]
    match_l = _match_line(orders, transparent, rights, side, exponent, [reward[i] for i in transparent])
    match_r = {j: i for i, j in match_l.items()}
    arcs: dict[int, list[tuple[int, int]]] = {}
    for i in lefts:
        price = orders[i].price
        arcs[i] = [
            (j, int(abs(price - side.prices[j]).scaleb(exponent)) * unit + unit - reward[i] - reward[offset + j])
            for j in _targets_of_order(i, runs, lists)
        ]
    cost = {(i, j): c for i in lefts for j, c in arcs[i]}
    never = (len(lefts) + 1) * (max(cost.values()) + 1)
    potential = _potentials(lefts, rights, offset, arcs, cost, match_l, match_r)
    potential[SINK] = min(
        min((potential[offset + j] for j in rights if j not in match_r), default=0),
        min(potential[i] for i in lefts) + never,
    )
    for u in (i for i in lefts if i in lists):
        settled, via = _search(u, offset, arcs, cost, never, match_l, match_r, potential)
        length = settled[SINK]
        for node, d in settled.items():
            potential[node] += d - length  # Johnson's update, cut at the sink: reduced costs stay >= 0
        end = via[SINK]
        if end == u:
            continue  # u stays unmatched
        if end < offset:  # that order gives its target up to the one before it on the path
            del match_r[match_l.pop(end)]
            end = via[end]
        while True:
            v, j = via[end], end - offset
            previous = match_l.get(v)
            match_l[v], match_r[j] = j, v
            if v == u:
                break
            end = offset + previous  # type: ignore[operator]
    # Rule 5: the kept orders and targets in price order, where the sizes allow it. Price windows always do
    # (uncrossing two pairs keeps both in their windows, the ends being non-decreasing) and it never adds
    # distance, so that pairing is optimal too.
    kept = sorted(match_l, key=lambda i: (orders[i].price, i))
    in_order = dict(zip(kept, sorted(match_l.values()), strict=True))
    if all(side.size_fits(orders[i].remaining, j) for i, j in in_order.items()):
        return in_order
    return match_l


def _potentials(
    lefts: list[int],
    rights: list[int],
    offset: int,
    arcs: dict[int, list[tuple[int, int]]],
    cost: dict[tuple[int, int], int],
    match_l: dict[int, int],
    match_r: dict[int, int],
) -> dict[int, int]:
    """Potentials with every residual arc non-negative (Bellman-Ford queue from every node at once): arcs go
    from an order to a target it does not hold (+cost) and from a held target back to its order (-cost); an
    optimal assignment has no negative cycle, so this ends."""
    potential = {i: -cost[i, match_l[i]] if i in match_l else 0 for i in lefts}  # held target's arc back
    potential.update((offset + j, 0) for j in rights)
    queue, queued = deque(lefts), set(lefts)
    while queue:
        v = queue.popleft()
        queued.discard(v)
        here, own = potential[v], match_l.get(v)
        for j, c in arcs[v]:
            if j == own or here + c >= potential[offset + j]:
                continue
            potential[offset + j] = here + c
            w = match_r.get(j)
            if w is not None and here + c - cost[w, j] < potential[w]:
                potential[w] = here + c - cost[w, j]
                if w not in queued:
                    queue.append(w)
                    queued.add(w)
    return potential


def _search(
    u: int,
    offset: int,
    arcs: dict[int, list[tuple[int, int]]],
    cost: dict[tuple[int, int], int],
    never: int,
    match_l: dict[int, int],
    match_r: dict[int, int],
    potential: dict[int, int],
) -> tuple[dict[int, int], dict[int, int]]:
    """Dijkstra from order ``u`` on reduced costs until the sink: (reduced distance of every settled node,
    predecessors). The sink is reached from a free target (cost 0) or from an order that goes unmatched
    (``never``)."""
    reach = {u: 0}
    via: dict[int, int] = {}
    settled: dict[int, int] = {}
    heap = [(0, u)]
    while heap:
        d, v = heapq.heappop(heap)
        if v in settled:
            continue
        settled[v] = d
        if v == SINK:
            break
        if v < offset:
            own = match_l.get(v)
            steps = [(offset + j, c) for j, c in arcs[v] if j != own]
            steps.append((SINK, never))
        else:
            w = match_r.get(v - offset)
            steps = [(SINK, 0)] if w is None else [(w, -cost[w, v - offset])]
        for x, c in steps:
            nd = d + c + potential[v] - potential[x]
            if x not in settled and (x not in reach or nd < reach[x]):
                reach[x], via[x] = nd, v
                heapq.heappush(heap, (nd, x))
    return settled, via
