"""diff.reconcile: reason tables, and properties against a brute-force oracle over every matching."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import diff
from rebalancer.job import Amount, Tolerance
from rebalancer.models import Order, OrderStatus, Side, Target
from tests.core.kit import D, order, orders_strategy, pct, target, targets_strategy, tolerances

REF = D("100")
B, S = Side.BUY, Side.SELL


def oracle(targets: Sequence[Target], orders: Sequence[Order], tol: Tolerance) -> tuple[int, Decimal]:
    """(largest number of kept orders, least total price distance among such matchings), by enumeration."""
    live = [o for o in orders if o.is_open]
    best = (0, D(0))

    def walk(i: int, used: frozenset[int], count: int, dist: Decimal) -> None:
        nonlocal best
        if (count, -dist) > (best[0], -best[1]):
            best = (count, dist)
        if i == len(live):
            return
        walk(i + 1, used, count, dist)
        for j, t in enumerate(targets):
            if j not in used and diff.fits(live[i], t, tol):
                walk(i + 1, used | {j}, count + 1, dist + abs(live[i].price - t.price))

    walk(0, frozenset(), 0, D(0))
    return best


def kept_distance(result: diff.Diff) -> Decimal:
    return sum((abs(o.price - t.price) for o, t in result.keep), D(0))


@settings(max_examples=250, deadline=None)
@given(targets_strategy(), orders_strategy(), tolerances)
def test_keeps_a_maximum_matching_of_least_distance(
    targets: list[Target], orders: list[Order], tol: Tolerance
) -> None:
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    count, distance = oracle(targets, orders, tol)
    assert len(result.keep) == count
    assert kept_distance(result) == distance
    for o, t in result.keep:
        assert diff.fits(o, t, tol)


@settings(max_examples=150, deadline=None)
@given(targets_strategy(), orders_strategy(), tolerances)
def test_every_order_and_target_is_accounted_for_once(
    targets: list[Target], orders: list[Order], tol: Tolerance
) -> None:
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    seen = [o.id for o, _ in result.keep] + [o.id for o, _ in result.cancel] + [o.id for o in result.pending]
    assert sorted(seen) == sorted(o.id for o in orders)
    assert all(o.status is OrderStatus.CANCEL_PENDING for o in result.pending)
    assert all(reason in diff.REASONS for _, reason in result.cancel)
    levels = [t.level for _, t in result.keep] + [t.level for t in result.place]
    assert sorted(levels) == sorted(t.level for t in targets)
    assert len(result.keep) + len(result.cancel) + len(result.place) == len(orders) - len(
        result.pending
    ) + len(targets) - len(result.keep)


@settings(max_examples=150, deadline=None)
@given(targets_strategy(), orders_strategy(), tolerances, st.randoms(use_true_random=False))
def test_same_inputs_in_any_order_give_the_same_diff(
    targets: list[Target], orders: list[Order], tol: Tolerance, rnd: random.Random
) -> None:
    first = diff.reconcile(targets, orders, tol, reference_price=REF, band=pct("3"))
    shuffled_t, shuffled_o = list(targets), list(orders)
    rnd.shuffle(shuffled_t)
    rnd.shuffle(shuffled_o)
    assert diff.reconcile(shuffled_t, shuffled_o, tol, reference_price=REF, band=pct("3")) == first


@settings(max_examples=150, deadline=None)
@given(targets_strategy(), orders_strategy(), tolerances, st.sampled_from([None, pct("3"), Amount(D("4"))]))
def test_applying_the_diff_then_diffing_again_changes_nothing(
    targets: list[Target], orders: list[Order], tol: Tolerance, band: Amount | None
) -> None:
    in_band = [t for t in targets if band is None or abs(t.price - REF) <= band.of(REF)]
    result = diff.reconcile(in_band, orders, tol, reference_price=REF, band=band)
    book = [o for o, _ in result.keep] + list(result.pending)
    book += [Order(f"new{i}", t.side, t.price, t.volume) for i, t in enumerate(result.place)]
    again = diff.reconcile(in_band, book, tol, reference_price=REF, band=band)
    assert again.cancel == () and again.place == ()
    assert len(again.keep) == len(in_band)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_min_cost_max_matching_against_brute_force(n_left: int, n_right: int, data: st.DataObject) -> None:
    pairs = data.draw(st.sets(st.tuples(st.integers(0, n_left - 1), st.integers(0, n_right - 1))))
    edges = [(i, j, data.draw(st.sampled_from([0, 0, 1, 2, 3, 7]))) for i, j in sorted(pairs)]
    got = diff.min_cost_max_matching(n_left, n_right, edges)
    cost = {(i, j): c for i, j, c in edges}
    assert len({i for i, _ in got}) == len(got) == len({j for _, j in got})
    best = (0, 0)
    for k in range(min(n_left, n_right, len(edges)) + 1):
        for subset in itertools.combinations(edges, k):
            if len({e[0] for e in subset}) == k == len({e[1] for e in subset}):
                best = max(best, (k, -sum(e[2] for e in subset)))
    assert (len(got), -sum(cost[p] for p in got)) == best


def test_all_values_stay_decimal() -> None:
    targets = [target("buy[0]", B, "99.5", "1"), target("sell[0]", S, "100.5", "1")]
    orders = [order("1", B, "99.4", "1.05"), order("2", S, "101", "1")]
    result = diff.reconcile(targets, orders, Tolerance(pct("0.5"), pct("10")), reference_price=REF)
    for o, t in result.keep:
        assert all(isinstance(v, Decimal) for v in (o.price, o.volume, t.price, t.volume))
    assert all(isinstance(t.price, Decimal) and isinstance(t.volume, Decimal) for t in result.place)


TOL = Tolerance(price=Amount(D("1")), size=pct("10"))
LADDER = (target("buy[0]", B, "99", "1"), target("buy[1]", B, "97", "1"), target("sell[0]", S, "101", "1"))


@pytest.mark.parametrize(
    ("book", "reason"),
    [
        ((order("1", B, "80", "1"),), "outside_band"),
        ((order("2", B, "99", "1"), order("1", B, "99.5", "1")), "duplicate_level"),
        ((order("1", B, "99", "2", deal="0.5", status=OrderStatus.PARTIALLY_FILLED),), "partially_filled"),
        ((order("1", B, "99", "2"),), "size_out_of_tolerance"),
        ((order("1", B, "95.5", "1"),), "price_out_of_tolerance"),
        ((order("1", S, "98", "1"), order("2", S, "101", "1")), "price_out_of_tolerance"),
        ((order("1", B, "93", "1"),), "over_max_orders"),
    ],
)
def test_cancel_reasons(book: tuple[Order, ...], reason: str) -> None:
    over = (target("buy[2]", B, "93.5", "1"),)
    result = diff.reconcile(LADDER, book, TOL, reference_price=REF, band=pct("10"), over_limit=over)
    assert [r for o, r in result.cancel if o.id == "1"] == [reason]


def test_not_in_ladder_when_the_side_has_no_target() -> None:
    result = diff.reconcile(LADDER[:2], (order("7", S, "101", "1"),), TOL, reference_price=REF)
    assert result.cancel == ((order("7", S, "101", "1"), "not_in_ladder"),)


def test_outside_band_wins_even_over_a_perfect_fit() -> None:
    far = target("buy[9]", B, "50", "1")
    result = diff.reconcile((far,), (order("1", B, "50", "1"),), TOL, reference_price=REF, band=D("20"))
    assert result.cancel == ((order("1", B, "50", "1"), "outside_band"),) and result.place == (far,)


def test_pending_cancels_are_left_alone_and_do_not_hold_a_level() -> None:
    pending = order("1", B, "99", "1", status=OrderStatus.CANCEL_PENDING)
    result = diff.reconcile(LADDER[:1], (pending,), TOL, reference_price=REF)
    assert result.pending == (pending,) and result.cancel == () and result.place == LADDER[:1]


def test_tolerance_is_inclusive_and_relative_to_the_target() -> None:
    tol = Tolerance(price=pct("1"), size=pct("10"))
    t = target("buy[0]", B, "200", "2")
    assert diff.fits(order("1", B, "198", "2.2"), t, tol)
    assert not diff.fits(order("1", B, "197.99", "2"), t, tol)
    assert not diff.fits(order("1", B, "200", "2.21"), t, tol)
    assert diff.fits(order("1", B, "200", "3", deal="1", status=OrderStatus.PARTIALLY_FILLED), t, tol)
    assert not diff.fits(order("1", S, "200", "2"), t, tol)


def test_ties_prefer_the_nearer_order_then_the_lower_id() -> None:
    t = target("buy[0]", B, "99", "1")
    result = diff.reconcile(
        (t,), (order("2", B, "99.5", "1"), order("1", B, "98.5", "1")), TOL, reference_price=REF
    )
    assert result.keep[0][0].id == "1"
    result = diff.reconcile(
        (t,), (order("3", B, "99.2", "1"), order("1", B, "98.5", "1")), TOL, reference_price=REF
    )
    assert result.keep[0][0].id == "3"


def test_a_chain_keeps_every_order_where_greedy_would_not() -> None:
    # order 1 is nearest to buy[0], but only order 1 can stand for buy[1]: maximum matching keeps both
    targets = (target("buy[0]", B, "99", "1"), target("buy[1]", B, "98", "1"))
    orders = (order("1", B, "98.6", "1"), order("2", B, "99.9", "1"))
    result = diff.reconcile(targets, orders, TOL, reference_price=REF)
    assert {(o.id, t.level) for o, t in result.keep} == {("1", "buy[1]"), ("2", "buy[0]")}
    assert result.cancel == () and result.place == ()


def reference_matching(n_left: int, n_right: int, edges: list[tuple[int, int, int]]) -> tuple[int, int]:
    """(size, cost) of a min-cost maximum matching by plain successive shortest paths with Bellman-Ford."""
    match_l: dict[int, int] = {}
    match_r: dict[int, int] = {}
    cost = {(i, j): c for i, j, c in edges}
    while True:
        # dist over left nodes reached from a free left node, alternating through matched edges
        dist = {i: 0 for i in range(n_left) if i not in match_l}
        prev: dict[object, object] = {}
        best: tuple[int, int] | None = None
        for _ in range(n_left + n_right + 1):
            changed = False
            for (i, j), c in cost.items():
                if i in dist and match_l.get(i) != j:
                    nd = dist[i] + c
                    if j in match_r:
                        k = match_r[j]
                        if nd - cost[k, j] < dist.get(k, nd - cost[k, j] + 1):
                            dist[k], prev[k] = nd - cost[k, j], (i, j)
                            changed = True
                    elif best is None or nd < best[0]:
                        best, prev["end"] = (nd, j), (i, j)
            if not changed:
                break
        if best is None:
            return len(match_l), sum(cost[i, j] for i, j in match_l.items())
        i, j = prev["end"]  # type: ignore[misc]
        while True:
            old = match_l.get(i)
            match_l[i], match_r[j] = j, i
            if old is None:
                break
            i, j = prev[i]  # type: ignore[misc]


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 25), st.integers(5, 25), st.data())
def test_min_cost_max_matching_on_larger_dense_instances(
    n_left: int, n_right: int, data: st.DataObject
) -> None:
    density = data.draw(st.sampled_from([0.2, 0.5]))
    rnd = data.draw(st.randoms(use_true_random=False))
    edges = [
        (i, j, rnd.choice([0, 0, 0, 1, 2, 5, 9]))
        for i in range(n_left)
        for j in range(n_right)
        if rnd.random() < density
    ]
    got = diff.min_cost_max_matching(n_left, n_right, edges)
    cost = {(i, j): c for i, j, c in edges}
    assert len({i for i, _ in got}) == len(got) == len({j for _, j in got})
    assert (len(got), sum(cost[p] for p in got)) == reference_matching(n_left, n_right, edges)
