"""diff.reconcile: reason tables, and properties against a brute-force oracle over every matching."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import diff, line_matching
from rebalancer.job import Amount, Tolerance
from rebalancer.models import Order, OrderStatus, Side, Target
from tests.core.kit import D, order, orders_strategy, pct, sides, target, targets_strategy, tolerances
from tests.core.ssp_matching import min_cost_max_matching
from tests.depth import examples

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


@settings(max_examples=examples(250), deadline=None)
@given(targets_strategy(), orders_strategy(), tolerances)
def test_keeps_a_maximum_matching_of_least_distance(targets: list[Target], orders: list[Order], tol: Tolerance) -> None:
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    count, distance = oracle(targets, orders, tol)
    assert len(result.keep) == count
    assert kept_distance(result) == distance
    for o, t in result.keep:
        assert diff.fits(o, t, tol)


@settings(max_examples=examples(150), deadline=None)
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
    assert len(result.keep) + len(result.cancel) + len(result.place) == len(orders) - len(result.pending) + len(
        targets
    ) - len(result.keep)


@settings(max_examples=examples(150), deadline=None)
@given(targets_strategy(), orders_strategy(), tolerances, st.randoms(use_true_random=False))
def test_same_inputs_in_any_order_give_the_same_diff(
    targets: list[Target], orders: list[Order], tol: Tolerance, rnd: random.Random
) -> None:
    first = diff.reconcile(targets, orders, tol, reference_price=REF, band=pct("3"))
    shuffled_t, shuffled_o = list(targets), list(orders)
    rnd.shuffle(shuffled_t)
    rnd.shuffle(shuffled_o)
    assert diff.reconcile(shuffled_t, shuffled_o, tol, reference_price=REF, band=pct("3")) == first


@settings(max_examples=examples(150), deadline=None)
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


@settings(max_examples=examples(300), deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_min_cost_max_matching_against_brute_force(n_left: int, n_right: int, data: st.DataObject) -> None:
    pairs = data.draw(st.sets(st.tuples(st.integers(0, n_left - 1), st.integers(0, n_right - 1))))
    edges = [(i, j, data.draw(st.sampled_from([0, 0, 1, 2, 3, 7]))) for i, j in sorted(pairs)]
    got = min_cost_max_matching(n_left, n_right, edges)
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
    result = diff.reconcile((t,), (order("2", B, "99.5", "1"), order("1", B, "98.5", "1")), TOL, reference_price=REF)
    assert result.keep[0][0].id == "1"
    result = diff.reconcile((t,), (order("3", B, "99.2", "1"), order("1", B, "98.5", "1")), TOL, reference_price=REF)
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


@settings(max_examples=examples(40), deadline=None)
@given(st.integers(5, 25), st.integers(5, 25), st.data())
def test_min_cost_max_matching_on_larger_dense_instances(n_left: int, n_right: int, data: st.DataObject) -> None:
    density = data.draw(st.sampled_from([0.2, 0.5]))
    rnd = data.draw(st.randoms(use_true_random=False))
    edges = [
        (i, j, rnd.choice([0, 0, 0, 1, 2, 5, 9]))
        for i in range(n_left)
        for j in range(n_right)
        if rnd.random() < density
    ]
    got = min_cost_max_matching(n_left, n_right, edges)
    cost = {(i, j): c for i, j, c in edges}
    assert len({i for i, _ in got}) == len(got) == len({j for _, j in got})
    assert (len(got), sum(cost[p] for p in got)) == reference_matching(n_left, n_right, edges)


# --- dense windows, sub-unit prices, several components per side, ties, ids as text ------------------------


def best_matchings(
    targets: Sequence[Target], orders: Sequence[Order], tol: Tolerance
) -> tuple[tuple[int, Decimal], list[frozenset[tuple[str, str]]]]:
    """((most kept, least distance), every matching reaching it as {(order id, level)}), by enumeration.

    Independent of the code under test: only ``fits`` (the definition of a fit) is shared."""
    live = [o for o in orders if o.is_open]
    best: tuple[int, Decimal] = (0, D(0))
    found: list[frozenset[tuple[str, str]]] = [frozenset()]

    def walk(i: int, used: frozenset[int], pairs: frozenset[tuple[str, str]], dist: Decimal) -> None:
        nonlocal best, found
        if i == len(live):
            key = (len(pairs), dist)
            if (key[0], -key[1]) > (best[0], -best[1]):
                best, found = key, [pairs]
            elif key == best:
                found.append(pairs)
            return
        walk(i + 1, used, pairs, dist)
        for j, t in enumerate(targets):
            if j not in used and diff.fits(live[i], t, tol):
                walk(i + 1, used | {j}, pairs | {(live[i].id, t.level)}, dist + abs(live[i].price - t.price))

    walk(0, frozenset(), frozenset(), D(0))
    return best, found


def id_rank(oid: str) -> tuple[int, int, str]:
    """Exchange ids are decimal text: "9" comes before "10" (compared as numbers, never as strings)."""
    return (0, int(oid), oid) if oid.isdigit() else (1, 0, oid)


_UNITS = [D(1), D("0.5"), D("0.01"), D("0.000001")]
_BASES = [D(100), D(1), D("0.000123"), D(30000)]
_IDS = ["9", "10", "11", "99", "100", "2", "20", "1000", "007", "x9", "a10"]


@st.composite
def dense_books(draw: st.DrawFn) -> tuple[list[Target], list[Order], Tolerance]:
    """One side or both, on grids of sub-unit steps, in up to three far-apart clusters, with half-step order
    prices (equidistant ties), windows from none to many levels wide, and ids that sort differently as text."""
    unit, base = draw(st.sampled_from(_UNITS)), draw(st.sampled_from(_BASES))
    clusters = [base + k * unit * 1000 for k in range(draw(st.integers(1, 3)))]
    volumes = st.sampled_from([D(1), D(1), D(1), D("1.05"), D(2)])
    rows = draw(st.lists(st.tuples(sides, st.sampled_from(clusters), st.integers(0, 6), volumes), max_size=6))
    targets = [Target(f"{s.value.lower()}[{i}]", s, c + k * unit, v) for i, (s, c, k, v) in enumerate(rows)]
    ids = draw(st.lists(st.sampled_from(_IDS), unique=True, max_size=6))
    orders = []
    for oid in ids:
        s, c, half, v = draw(st.tuples(sides, st.sampled_from(clusters), st.integers(-2, 14), volumes))
        orders.append(Order(oid, s, abs(c + half * unit / 2), v))
    price = draw(
        st.one_of(
            st.sampled_from([0, 1, 2, 3, 7, 40]).map(lambda k: Amount(k * unit / 2)),
            st.sampled_from(["0", "0.5", "3", "10", "150"]).map(lambda v: Amount(D(v), percent=True)),
        )
    )
    size = draw(st.sampled_from([Amount(D(0)), Amount(D("0.05")), Amount(D(10), percent=True), Amount(D(2))]))
    return targets, orders, Tolerance(price, size)


@settings(max_examples=examples(400), deadline=None)
@given(dense_books())
def test_dense_windows_keep_a_maximum_matching_of_least_distance(
    book: tuple[list[Target], list[Order], Tolerance],
) -> None:
    targets, orders, tol = book
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    (count, distance), _ = best_matchings(targets, orders, tol)
    assert (len(result.keep), kept_distance(result)) == (count, distance)
    assert all(diff.fits(o, t, tol) for o, t in result.keep)
    assert len({o.id for o, _ in result.keep}) == len({t.level for _, t in result.keep}) == len(result.keep)


def test_numeric_ids_sort_as_numbers() -> None:
    ids = ["10", "9", "100", "x1", "011"]
    assert [o.id for o in sorted((order(i, B, "1", "1") for i in ids), key=diff.order_key)] == [
        "9",
        "10",
        "011",
        "100",
        "x1",
    ]


def test_every_component_of_a_side_is_matched() -> None:
    # three one-order-one-target components on each side, then a two-by-two one: none may be skipped
    tol = Tolerance(price=Amount(D("0.5")), size=pct("10"))
    targets, orders = [], []
    for k, s in enumerate((B, S)):
        for c, p in enumerate(("90", "80", "70", "60")):
            price = D(p) if s is B else 200 - D(p)
            targets.append(Target(f"{s.value.lower()}[{c}]", s, price, D(1)))
            orders.append(Order(str(10 * k + c + 1), s, price + D("0.25"), D(1)))
        extra = D(60) if s is B else D(140)
        targets.append(Target(f"{s.value.lower()}[9]", s, extra + D("0.5"), D(1)))
        orders.append(Order(str(10 * k + 9), s, extra + D("0.5"), D(1)))
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    assert result.cancel == () and result.place == () and len(result.keep) == len(targets)


@pytest.mark.parametrize(
    ("target_prices", "order_prices", "tol", "pairs"),
    [
        # sub-unit distances: 0.0003 beats 0.0004 (integer-scaled costs must keep every digit)
        (("0.0010", "0.0020"), ("0.0013", "0.0016"), "0.0007", {("1", 0), ("2", 1)}),
        (("0.000123", "0.000125"), ("0.0001245",), "0.000002", {("1", 1)}),
        # a chain: order 1 is nearest to target 1, but the maximum keeps both; least distance 3 (not 4)
        (("10", "13"), ("12", "14"), "3", {("1", 0), ("2", 1)}),
        # the optimum moves orders along a chain of kept orders (augmenting paths through matched pairs)
        (("10", "12", "14"), ("11", "13", "15"), "1", {("1", 0), ("2", 1), ("3", 2)}),
        (("10", "11", "12"), ("10.5", "11.5", "13"), "1", {("1", 0), ("2", 1), ("3", 2)}),
        (("1", "2", "3", "4"), ("2", "3", "4.5"), "1", {("1", 1), ("2", 2), ("3", 3)}),
        # found by mutating the back edge's sign in a shortest-path matcher: least distances 1 and 3, not 2 and 4
        (("12", "13"), ("12.5", "11.5", "16.5"), "2", {("2", 0), ("1", 1)}),
        (("12", "13", "14", "19"), ("18.5", "12.5", "10.5", "13.5"), "2", {("3", 0), ("2", 1), ("4", 2), ("1", 3)}),
    ],
)
def test_least_distance_tables(
    target_prices: tuple[str, ...], order_prices: tuple[str, ...], tol: str, pairs: set[tuple[str, int]]
) -> None:
    targets = [target(f"buy[{k}]", B, p, "1") for k, p in enumerate(target_prices)]
    orders = [order(str(k + 1), B, p, "1") for k, p in enumerate(order_prices)]
    tolerance = Tolerance(price=Amount(D(tol)), size=pct("10"))
    result = diff.reconcile(targets, orders, tolerance, reference_price=REF)
    assert {(o.id, targets.index(t)) for o, t in result.keep} == pairs
    (count, distance), _ = best_matchings(targets, orders, tolerance)
    assert (len(result.keep), kept_distance(result)) == (count, distance)


def documented_choice(targets: Sequence[Target], orders: Sequence[Order], tol: Tolerance) -> tuple[set[str], set[str]]:
    """(kept order ids, kept levels) by the module docstring's rules 1-4, enumerating every matching."""
    _, candidates = best_matchings(targets, orders, tol)
    by_id = sorted((o.id for o in orders), key=id_rank)
    by_target = [t.level for t in sorted(targets, key=lambda t: (t.price, t.level, t.volume))]

    def rank(pairs: frozenset[tuple[str, str]]) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
        kept_ids, kept_levels = {i for i, _ in pairs}, {lv for _, lv in pairs}
        return tuple(i not in kept_ids for i in by_id), tuple(lv not in kept_levels for lv in by_target)

    best = min(candidates, key=rank)
    return {i for i, _ in best}, {lv for _, lv in best}


@settings(max_examples=examples(400), deadline=None)
@given(dense_books())
def test_ties_follow_the_documented_order(book: tuple[list[Target], list[Order], Tolerance]) -> None:
    targets, orders, tol = book
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    kept_ids, kept_levels = documented_choice(targets, orders, tol)
    assert {o.id for o, _ in result.keep} == kept_ids
    assert {t.level for _, t in result.keep} == kept_levels
    for s in (B, S):
        pairs = [(o, t) for o, t in result.keep if o.side is s]
        if len({t.volume for t in targets if t.side is s}) == 1:  # one volume: pairs in price order
            kept_o = sorted((o for o, _ in pairs), key=lambda o: (o.price, id_rank(o.id)))
            kept_t = sorted((t for _, t in pairs), key=lambda t: (t.price, t.level))
            assert sorted((o.id, t.level) for o, t in pairs) == sorted(
                (o.id, t.level) for o, t in zip(kept_o, kept_t, strict=True)
            )


@pytest.mark.parametrize(
    ("targets", "orders", "pairs"),
    [
        # both kept either way at equal distance: paired in price order, never crosswise
        ((("buy[0]", "99"), ("buy[1]", "99.1")), (("2", "98.5"), ("1", "98.6")), {("2", "buy[0]"), ("1", "buy[1]")}),
        # one order between two targets: the target first in (price, level) order
        ((("buy[0]", "99.5"), ("buy[1]", "98.5")), (("1", "99"),), {("1", "buy[1]")}),
        ((("orders[0]", "100"), ("buy[1]", "100")), (("1", "100"),), {("1", "buy[1]")}),
        # equal-priced orders: paired in id order, "9" before "10"
        ((("buy[0]", "99"), ("buy[1]", "101")), (("10", "100"), ("9", "100")), {("9", "buy[0]"), ("10", "buy[1]")}),
        # three orders for two targets, all at distance 2 in total: ids "9" and "10" are kept (as numbers; as
        # strings "10" and "100" would come first)
        (
            (("buy[0]", "100"), ("buy[1]", "102")),
            (("10", "101"), ("9", "99"), ("100", "103")),
            {("9", "buy[0]"), ("10", "buy[1]")},
        ),
        # two orders for three targets at equal total distance: the first targets in price order are kept
        (
            (("buy[0]", "104"), ("buy[1]", "102"), ("buy[2]", "100")),
            (("5", "101"), ("6", "103")),
            {("5", "buy[2]"), ("6", "buy[1]")},
        ),
    ],
)
def test_tie_break_tables(
    targets: tuple[tuple[str, str], ...], orders: tuple[tuple[str, str], ...], pairs: set[tuple[str, str]]
) -> None:
    ts = [target(level, B, price, "1") for level, price in targets]
    os_ = [order(oid, B, price, "1") for oid, price in orders]
    tol = Tolerance(price=Amount(D("1")), size=pct("10"))
    result = diff.reconcile(ts, os_, tol, reference_price=REF)
    assert {(o.id, t.level) for o, t in result.keep} == pairs
    assert documented_choice(ts, os_, tol) == ({i for i, _ in pairs}, {lv for _, lv in pairs})


def test_a_preferred_order_that_fits_only_part_of_its_window_by_size_displaces_a_later_one() -> None:
    # "10" fits buy[1] but not (by size) buy[2], both within its price tolerance; "20" and "30" fit by price
    # alone. Every way to keep two orders is 1.0 away in total, so ids decide: "10" and "20" are kept, "20"
    # moving to buy[0] and "30" giving it up.
    targets = [target("buy[0]", B, "99", "1"), target("buy[1]", B, "100", "1"), target("buy[2]", B, "101", "2")]
    orders = [order("20", B, "99.5", "1"), order("10", B, "100.5", "1"), order("30", B, "98.5", "1")]
    orders.append(order("40", B, "100.5", "1"))  # like "10", but later in order: it stays out
    tol = Tolerance(price=Amount(D("1")), size=Amount(D("0.1")))
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    assert {(o.id, t.level) for o, t in result.keep} == {("20", "buy[0]"), ("10", "buy[1]")}
    assert documented_choice(targets, orders, tol) == ({"10", "20"}, {"buy[0]", "buy[1]"})


def test_the_line_matcher_refuses_windows_that_are_not_monotone() -> None:
    with pytest.raises(ValueError, match="non-decreasing"):
        line_matching.match_on_line([(5, 1)], [(4, 3, 6, 1), (6, 2, 7, 2)])


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(10, 60), st.data())
def test_larger_dense_books_match_the_reference_matcher(n: int, data: st.DataObject) -> None:
    rnd = data.draw(st.randoms(use_true_random=False))
    step = data.draw(st.sampled_from([D("0.5"), D("0.01"), D("0.000001")]))
    base = data.draw(st.sampled_from([D(30000), D("0.0123"), D(1)]))
    volumes = data.draw(st.sampled_from([[D(1)], [D(1), D("1.05")], [D(1), D(2), D("1.02")]]))
    targets = [Target(f"buy[{k}]", B, base + k * step, rnd.choice(volumes)) for k in range(n)]
    orders = [
        Order(f"{rnd.randint(1, 999)}{k:03}", B, abs(base + rnd.randint(-4, 2 * n + 4) * step / 2), rnd.choice(volumes))
        for k in range(n)
    ]
    tol = Tolerance(Amount(step * data.draw(st.sampled_from([1, 5, 20, 200]))), Amount(D("0.05")))
    result = diff.reconcile(targets, orders, tol, reference_price=base)
    edges = [
        (i, j, int(abs(o.price - t.price).scaleb(12)))  # exact: no price here has more than 12 decimals
        for i, o in enumerate(orders)
        for j, t in enumerate(targets)
        if diff.fits(o, t, tol)
    ]
    expected = min_cost_max_matching(len(orders), len(targets), edges)
    assert len(result.keep) == len(expected)
    assert kept_distance(result).scaleb(12) == sum(c for i, j, c in edges if (i, j) in set(expected))
