"""Best matching of points to windows on a line, in O(n log n): the diff's matcher for one size class.

Orders are points ``x`` on the price line; targets are points ``p`` with a window ``[a, b]`` around them, and
both ends of the windows are non-decreasing in ``p`` (a tolerance is a fixed distance or a fixed percent of the
target's price). An order may stand for a target when ``a <= x <= b``, at cost ``|x - p|``. Every order and
target carries a ``reward`` (distinct powers of two in practice), and the matching chosen is the best by, in
this order: most pairs; least total cost; greatest total reward (so the kept sets are lexicographically first
in whatever preference the rewards encode).

Why a line sweep is exact
-------------------------
Sort all points into one sequence ("events"). At each gap between consecutive events, let ``k`` be the number
of pairs spanning it, signed: ``k > 0`` when orders wait for targets to their right, ``k < 0`` when targets
wait for orders. Three exchange arguments fix which points those are:

1. *Pairs never cross.* If orders ``x1 <= x2`` hold targets ``p2 >= p1`` crosswise, swapping gives
   ``|x1 - p1| + |x2 - p2| <= |x1 - p2| + |x2 - p1|`` and stays feasible: ``a1 <= a2 <= x1 <= x2 <= b1 <= b2``.
   So orders waiting across a gap and targets waiting across it never coexist (that would be a crossing), and
   waiting units are matched first in, first out.
2. *Waiting orders are the most recent ones.* If order ``x1`` waits across a gap to ``p`` and a later order
   ``x1 <= x2`` before the gap is unmatched, giving ``p`` to ``x2`` costs no more (strictly less unless the
   prices are equal) and is feasible (``a <= x1 <= x2 <= p <= b``). Among equal prices the sweep visits the
   preferred (higher-reward) order last, so the swap never loses reward either. Likewise for targets.
3. *A doomed wait is dropped.* Under 1 and 2 the oldest waiting order is the ``k``-th most recent one; once a
   target's lower end passes it, no later target can take it (``a`` only grows), so states with that many
   waiting orders are infeasible from there on. Likewise, once an order passes the upper end of the oldest
   waiting target.

So the signed count ``k`` is a complete state. Let ``f(k)`` be the best (least) value of the prefix, where
each pair contributes ``-2 * BIG`` (two unit moves of ``k``, each worth ``-BIG``), each waiting unit pays the
gap it spans (the pair's cost, accumulated gap by gap), and each move of ``k`` at a point pays minus that
point's reward. An order event is ``f'(k) = min(f(k), f(k - 1) + c)`` (skip it, or move; a move is a match
when ``k < 0`` and a new wait otherwise, and both are worth the same ``c``); a target event is
``f'(k) = min(f(k), f(k + 1) + c)``; a gap adds ``|k| * length``; doomed states are cut from the domain.
Each step keeps ``f`` convex: a min-plus convolution with a two-point function, adding a convex function, or
restricting to an interval. A convex ``f`` is its list of slopes (slope trick): an event inserts one slope,
a gap shifts the slopes left of 0 down and those right of 0 up, a cut drops end slopes. With ``BIG`` larger
than any cost difference and the rewards below one unit of cost, the least ``f(0)`` at the end is exactly the
lexicographic optimum.

The walk back from ``k = 0`` needs, per event, only where its slope was inserted: the state moved at that
event exactly on one side of that position. Reading the walk with rule 2 (the waiting units are the most
recent ones, served first in, first out) gives the pairs. A walk that skipped a point while older units waited
is read as keeping the newer one instead, which costs no more and, among equal prices, gains reward, so the
reading is still optimal. Each event costs O(log n) comparisons plus a list insertion.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import pairwise

LineOrder = tuple[int, int]
"""An order: (price ``x``, reward when kept)."""

LineTarget = tuple[int, int, int, int]
"""A target: (price ``p``, window ``low``, window ``high``, reward when kept); ``low``/``high`` non-decreasing in
``p``."""


def match_on_line(orders: Sequence[LineOrder], targets: Sequence[LineTarget]) -> list[tuple[int, int]]:
    """(order index, target index) pairs of the best matching: most pairs, least total ``|x - p|``, greatest
    total reward (non-negative rewards only break ties of cost); pairs never cross."""
    if not orders or not targets:
        return []
    events = sorted(
        [(x, 0, reward, i) for i, (x, reward) in enumerate(orders)]
        + [(t[0], 1, t[3], j) for j, t in enumerate(targets)]
    )  # equal prices: orders first, then the lower reward first (rule 2 of the module docstring)
    lows = [targets[e[3]][1] for e in events if e[1]]
    highs = [targets[e[3]][2] for e in events if e[1]]
    if any(a > b for a, b in pairwise(lows)) or any(a > b for a, b in pairwise(highs)):
        raise ValueError("target windows must be non-decreasing in price")
    total_reward = sum(o[1] for o in orders) + sum(t[3] for t in targets)
    shift = total_reward.bit_length()  # one unit of distance (1 << shift) outweighs every reward together
    span = events[-1][0] - events[0][0]
    big = ((len(orders) + len(targets)) * span + 2) << shift  # one move outweighs every distance together
    low_slopes: list[int] = []  # slopes of f left of k = 0, ascending, stored minus low_shift
    high_slopes: list[int] = []  # slopes right of k = 0, ascending, stored minus high_shift
    low_shift = high_shift = 0
    seen_orders: list[int] = []
    seen_targets: list[int] = []
    order_dead = target_dead = 0  # seen orders/targets no later target/order can take
    inserted: list[int] = []
    last = events[0][0]
    for price, kind, reward, index in events:
        if price != last:
            gap = (price - last) << shift
            low_shift -= gap
            high_shift += gap
            last = price
        if kind == 0:
            while target_dead < len(seen_targets) and targets[seen_targets[target_dead]][2] < price:
                target_dead += 1
            alive = len(seen_targets) - target_dead
            del low_slopes[: max(0, len(low_slopes) - alive)]
            slope = -big - reward
            if low_slopes and slope < low_slopes[-1] + low_shift:
                at = bisect_right(low_slopes, slope - low_shift)
                low_slopes.insert(at, slope - low_shift)
                high_slopes.insert(0, low_slopes.pop() + low_shift - high_shift)
                inserted.append(at - len(low_slopes))
            else:
                at = bisect_right(high_slopes, slope - high_shift)
                high_slopes.insert(at, slope - high_shift)
                inserted.append(at)
            seen_orders.append(index)
        else:
            low = targets[index][1]
            while order_dead < len(seen_orders) and orders[seen_orders[order_dead]][0] < low:
                order_dead += 1
            alive = len(seen_orders) - order_dead
            del high_slopes[alive:]
            slope = big + reward
            if not high_slopes or slope <= high_slopes[0] + high_shift:
                at = bisect_left(low_slopes, slope - low_shift)
                inserted.append(at - len(low_slopes) - 1)
                low_slopes.insert(at, slope - low_shift)
            else:
                at = bisect_left(high_slopes, slope - high_shift)
                high_slopes.insert(at, slope - high_shift)
                low_slopes.append(high_slopes.pop(0) + high_shift - low_shift)
                inserted.append(at - 1)
            seen_targets.append(index)
    moved = [False] * len(events)
    k = 0
    for e in range(len(events) - 1, -1, -1):
        if events[e][1] == 0:
            if k > inserted[e]:
                moved[e], k = True, k - 1
        elif k <= inserted[e]:
            moved[e], k = True, k + 1
    return _read_walk(events, moved)


def _read_walk(events: list[tuple[int, int, int, int]], moved: list[bool]) -> list[tuple[int, int]]:
    """The pairs of a walk: the ``k`` waiting units are the ``k`` most recent points, first in, first out."""
    pairs: list[tuple[int, int]] = []
    seen_orders: list[int] = []
    seen_targets: list[int] = []
    k = 0
    for (_, kind, _, index), step in zip(events, moved, strict=True):
        if kind == 0:
            if step:
                if k < 0:
                    pairs.append((index, seen_targets[len(seen_targets) + k]))
                k += 1
            seen_orders.append(index)
        else:
            if step:
                if k > 0:
                    pairs.append((seen_orders[len(seen_orders) - k], index))
                k -= 1
            seen_targets.append(index)
    return pairs
