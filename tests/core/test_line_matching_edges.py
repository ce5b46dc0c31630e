"""line_matching.match_on_line on its own: properties against a brute force over every matching, and tables.

The brute force is a dynamic programme over (next order, set of used targets) that maximises the documented
objective as a tuple: most pairs, then least total ``|x - p|``, then greatest total reward. It shares nothing with
the sweep. The instances are small integer lines with many equal prices, windows from a point to the whole line,
lower ends cut at zero, and rewards that are distinct powers of two (as the diff uses them) or small and tied.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.line_matching import LineOrder, LineTarget, match_on_line
from tests.depth import examples

Score = tuple[int, int, int]


def best_score(orders: Sequence[LineOrder], targets: Sequence[LineTarget]) -> Score:
    """(pairs, -cost, reward) of the best matching, by a dynamic programme over used-target sets."""

    @cache
    def best(i: int, used: int) -> Score:
        if i == len(orders):
            return (0, 0, 0)
        x, reward = orders[i]
        top = best(i + 1, used)
        for j, (p, low, high, target_reward) in enumerate(targets):
            if not used >> j & 1 and low <= x <= high:
                rest = best(i + 1, used | 1 << j)
                top = max(top, (rest[0] + 1, rest[1] - abs(x - p), rest[2] + reward + target_reward))
        return top

    return best(0, 0)


def score_of(orders: Sequence[LineOrder], targets: Sequence[LineTarget], pairs: list[tuple[int, int]]) -> Score:
    """(pairs, -cost, reward) of a given matching."""
    cost = sum(abs(orders[i][0] - targets[j][0]) for i, j in pairs)
    reward = sum(orders[i][1] + targets[j][3] for i, j in pairs)
    return (len(pairs), -cost, reward)


def check(orders: Sequence[LineOrder], targets: Sequence[LineTarget]) -> list[tuple[int, int]]:
    """Run the sweep, check that its answer is a non-crossing matching of the best score, and return it."""
    pairs = match_on_line(orders, targets)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    for i, j in pairs:
        assert 0 <= i < len(orders) and 0 <= j < len(targets)
        assert targets[j][1] <= orders[i][0] <= targets[j][2]
    for i1, j1 in pairs:  # pairs never cross
        for i2, j2 in pairs:
            assert not (orders[i1][0] < orders[i2][0] and targets[j1][0] > targets[j2][0])
    assert score_of(orders, targets, pairs) == best_score(orders, targets)
    return pairs


@st.composite
def lines(draw: st.DrawFn, max_orders: int = 7, max_targets: int = 7) -> tuple[list[LineOrder], list[LineTarget]]:
    """Orders and targets on a short integer line; each distinct target price gets one window, both ends
    non-decreasing in the price (running maxima), the lower end cut at zero as ``side_match`` does."""
    span = draw(st.sampled_from([3, 6, 12, 40]))
    prices = st.integers(0, span)
    target_prices = sorted(draw(st.lists(prices, min_size=1, max_size=max_targets)))
    widths = st.integers(0, span)
    window: dict[int, tuple[int, int]] = {}
    low = high = 0
    for p in sorted(set(target_prices)):
        low = max(low, p - draw(widths), 0)
        high = max(high, p + draw(widths))
        window[p] = (low, high)
    order_prices = draw(st.lists(st.integers(0, span + 2), min_size=1, max_size=max_orders))
    n = len(order_prices) + len(target_prices)
    if draw(st.booleans()):  # distinct powers of two in any order, as the diff uses them
        rewards = draw(st.permutations([1 << k for k in range(n)]))
    else:  # small, often equal (or zero) rewards: only the cost ties they break change
        rewards = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    orders = [(x, r) for x, r in zip(order_prices, rewards, strict=False)]
    rest = rewards[len(orders) :]
    targets = [(p, *window[p], r) for p, r in zip(target_prices, rest, strict=True)]
    order = draw(st.permutations(range(len(targets))))
    return orders, [targets[k] for k in order]  # the sweep must not rely on the targets' input order


@settings(max_examples=examples(600), deadline=None)
@given(lines())
def test_the_sweep_finds_the_best_matching(instance: tuple[list[LineOrder], list[LineTarget]]) -> None:
    check(*instance)


@st.composite
def tight_lines(draw: st.DrawFn) -> tuple[list[LineOrder], list[LineTarget]]:
    """Many targets with one fixed window width, orders crowded between them: long waits, doomed waits."""
    width = draw(st.integers(0, 3))
    target_prices = draw(st.lists(st.integers(0, 14), min_size=2, max_size=8))
    order_prices = draw(st.lists(st.integers(0, 16), min_size=2, max_size=8))
    n = len(order_prices) + len(target_prices)
    rewards = draw(st.permutations([1 << k for k in range(n)]))
    orders = list(zip(order_prices, rewards, strict=False))
    targets = [(p, max(p - width, 0), p + width, r) for p, r in zip(target_prices, rewards[len(orders) :], strict=True)]
    return orders, targets


@settings(max_examples=examples(500), deadline=None)
@given(tight_lines())
def test_the_sweep_finds_the_best_matching_with_fixed_width_windows(
    instance: tuple[list[LineOrder], list[LineTarget]],
) -> None:
    check(*instance)


def test_no_orders_or_no_targets_match_nothing() -> None:
    assert match_on_line([], [(5, 4, 6, 1)]) == []
    assert match_on_line([(5, 1)], []) == []
    assert match_on_line([], []) == []


def test_equal_window_ends_are_monotone_enough() -> None:
    # equal lower ends and equal upper ends are non-decreasing: accepted
    assert check([(5, 1)], [(4, 3, 6, 2), (6, 3, 6, 4)]) == [(0, 1)]
    with pytest.raises(ValueError, match=r"^target windows must be non-decreasing in price$"):
        match_on_line([(5, 1)], [(4, 3, 7, 1), (6, 4, 6, 2)])  # upper ends fall


@pytest.mark.parametrize(
    ("orders", "targets", "pairs"),
    [
        # one order, one target, at each end of the window and just outside it
        ([(3, 1)], [(5, 3, 7, 2)], [(0, 0)]),
        ([(7, 1)], [(5, 3, 7, 2)], [(0, 0)]),
        ([(2, 1)], [(5, 3, 7, 2)], []),
        ([(8, 1)], [(5, 3, 7, 2)], []),
        # equal prices: the order of greater reward is kept, whichever comes first in the input
        ([(5, 1), (5, 2)], [(5, 4, 6, 4)], [(1, 0)]),
        ([(5, 2), (5, 1)], [(5, 4, 6, 4)], [(0, 0)]),
        ([(5, 1)], [(5, 4, 6, 2), (5, 4, 6, 4)], [(0, 1)]),
        ([(5, 1)], [(5, 4, 6, 4), (5, 4, 6, 2)], [(0, 0)]),
        # a target waits for the order to its right; a nearer later target takes it instead
        ([(6, 1)], [(4, 2, 6, 2), (5, 3, 7, 4)], [(0, 1)]),
        # an order waits across targets that cannot take it: the one whose window holds it does
        ([(1, 1)], [(0, 0, 0, 2), (3, 0, 6, 4)], [(0, 1)]),
        # the farther order goes to the farther target so that both are kept (a chain)
        ([(4, 1), (6, 2)], [(5, 4, 6, 4), (3, 2, 4, 8)], [(0, 1), (1, 0)]),
        # a doomed wait: the first order is out of reach of every later target, the second is kept
        ([(0, 1), (9, 2)], [(10, 8, 12, 4)], [(1, 0)]),
        # equidistant: cost ties broken by reward, on either side of the target
        ([(4, 1), (6, 2)], [(5, 3, 7, 4)], [(1, 0)]),
        ([(4, 2), (6, 1)], [(5, 3, 7, 4)], [(0, 0)]),
        ([(5, 1)], [(4, 3, 7, 2), (6, 3, 7, 4)], [(0, 1)]),
        ([(5, 1)], [(4, 3, 7, 4), (6, 3, 7, 2)], [(0, 0)]),
        # several targets waiting when an order comes: the nearest (latest) one keeps it
        ([(9, 1)], [(5, 0, 10, 2), (7, 0, 10, 4), (8, 0, 10, 8)], [(0, 2)]),
        # an order event while targets wait and the sweep has moved on (found by shifting a slope the wrong way):
        # the order at 0 keeps the target at 0, the greater-reward one of the two at 2 keeps the target at 1
        ([(0, 1), (2, 2), (2, 4)], [(0, 0, 2, 8), (1, 1, 2, 16)], [(0, 0), (2, 1)]),
        # several orders waiting when a target comes: the nearest (latest) one is kept
        ([(1, 1), (2, 2), (3, 4)], [(9, 0, 10, 8)], [(2, 0)]),
    ],
)
def test_line_tables(orders: list[LineOrder], targets: list[LineTarget], pairs: list[tuple[int, int]]) -> None:
    assert sorted(check(orders, targets)) == pairs


def test_costs_outweigh_any_rewards_and_pairs_outweigh_any_cost() -> None:
    # the nearer order wins even against a reward far above it; keeping two pairs wins over any distance
    assert check([(4, 1), (9, 1 << 40)], [(5, 0, 10, 1)]) == [(0, 0)]
    far = [(0, 1), (1000, 2)]
    assert sorted(check(far, [(0, 0, 1000, 4), (1000, 0, 1000, 8)])) == [(0, 0), (1, 1)]
    assert len(check(far, [(1000, 0, 1000, 4), (1000, 0, 1000, 8)])) == 2
