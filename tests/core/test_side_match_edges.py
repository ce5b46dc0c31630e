"""side_match through diff.reconcile, on books where orders fit only part of their price window by size.

Such *partial* orders send their component to the augmenting search (``_match_mixed``), which the older
properties reach only now and then. The generators here make them the common case: target volumes that change
from level to level (so an order's window holds levels it fits and levels it does not), windows several levels
wide, half-step order prices (ties in distance), several far-apart components per side, sub-unit and sub-1
prices, partly filled orders and ids that sort differently as text ("9" before "10").

Expected values never come from the code under test: a dynamic programme over (next order, used targets)
maximises the documented objective exactly on small books (most kept, least distance, first orders in
canonical order, then first targets), and on larger ones the old exact matcher (``tests/core/ssp_matching.py``)
runs on costs that encode the same objective. Cancel reasons are checked against the precedence table written
out from ``diff``'s docstring.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import diff
from rebalancer.core.side_match import SideTargets, match_side
from rebalancer.job import Amount, Tolerance
from rebalancer.models import Order, OrderStatus, Side, Target
from tests.core.ssp_matching import min_cost_max_matching
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL
REF = D(100)
Book = tuple[list[Target], list[Order], Tolerance]
Choice = tuple[int, Decimal, frozenset[str], frozenset[str]]


def id_rank(oid: str) -> tuple[int, int, str]:
    """Exchange ids are decimal text: "9" comes before "10" (compared as numbers, never as strings)."""
    return (0, int(oid), oid) if oid.isdigit() else (1, 0, oid)


def side_lists(targets: Sequence[Target], orders: Sequence[Order], side: Side) -> tuple[list[Target], list[Order]]:
    """One side's targets in (price, level, volume) order and its open orders in id order."""
    ts = sorted((t for t in targets if t.side is side), key=lambda t: (t.price, t.level, t.volume))
    os_ = sorted((o for o in orders if o.side is side and o.is_open), key=lambda o: id_rank(o.id))
    return ts, os_


def documented_best(targets: Sequence[Target], orders: Sequence[Order], tol: Tolerance) -> Choice:
    """(kept, total distance, kept order ids, kept levels) by the diff's rules 1-4, per side, by a dynamic
    programme: the objective is the tuple (kept, -distance, kept orders as bits, kept targets as bits), the
    earlier an order or target the higher its bit, and tuples add and compare lexicographically."""
    count, distance, ids, levels = 0, D(0), set(), set()
    for side in (B, S):
        ts, os_ = side_lists(targets, orders, side)
        n, m = len(os_), len(ts)

        @cache
        def best(i: int, used: int, ts: list[Target] = ts, os_: list[Order] = os_, n: int = n, m: int = m) -> tuple:
            if i == n:
                return (0, D(0), 0, 0, ())
            top = best(i + 1, used)
            for j, t in enumerate(ts):
                if not used >> j & 1 and diff.fits(os_[i], t, tol):
                    k, neg, ob, tb, pairs = best(i + 1, used | 1 << j)
                    here = (k + 1, neg - abs(os_[i].price - t.price), ob + (1 << (n - 1 - i)), tb + (1 << (m - 1 - j)))
                    if here > top[:4]:
                        top = (*here, ((os_[i].id, t.level), *pairs))
            return top

        k, neg, _, _, pairs = best(0, 0)
        count, distance = count + k, distance - neg
        ids |= {i for i, _ in pairs}
        levels |= {lv for _, lv in pairs}
    return count, distance, frozenset(ids), frozenset(levels)


def expected_reason(order: Order, targets: Sequence[Target], tol: Tolerance) -> str:
    """The cancel reason of an unkept order (no band, nothing over ``max_orders``), from diff's precedence."""
    mine = [t for t in targets if t.side is order.side]
    if any(diff.fits(order, t, tol) for t in mine):
        return "duplicate_level"
    if not mine:
        return "not_in_ladder"
    if any(abs(order.price - t.price) <= tol.price.of(t.price) for t in mine):
        return "partially_filled" if order.status is OrderStatus.PARTIALLY_FILLED else "size_out_of_tolerance"
    return "price_out_of_tolerance"


def check_against_the_rules(targets: Sequence[Target], orders: Sequence[Order], tol: Tolerance) -> diff.Diff:
    """Reconcile, then check kept sets, distance, fits, reasons and price-order pairs (where sizes allow)."""
    result = diff.reconcile(targets, orders, tol, reference_price=REF)
    count, distance, ids, levels = documented_best(targets, orders, tol)
    assert len(result.keep) == count
    assert sum((abs(o.price - t.price) for o, t in result.keep), D(0)) == distance
    assert {o.id for o, _ in result.keep} == ids
    assert {t.level for _, t in result.keep} == levels
    assert all(diff.fits(o, t, tol) for o, t in result.keep)
    for o, reason in result.cancel:
        assert reason == expected_reason(o, targets, tol), o
    for side in (B, S):  # rule 5: kept orders and targets paired in price order, where the sizes allow it
        pairs = [(o, t) for o, t in result.keep if o.side is side]
        kept_o = sorted((o for o, _ in pairs), key=lambda o: (o.price, id_rank(o.id)))
        kept_t = sorted((t for _, t in pairs), key=lambda t: (t.price, t.level, t.volume))
        if all(diff.fits(o, t, tol) for o, t in zip(kept_o, kept_t, strict=True)):
            assert sorted((o.id, t.level) for o, t in pairs) == sorted(
                (o.id, t.level) for o, t in zip(kept_o, kept_t, strict=True)
            )
    return result


_UNITS = [D(1), D("0.5"), D("0.01"), D("0.000001")]
_BASES = [D(100), D(1), D("0.000123"), D(30000), D("0.5")]
_IDS = ["9", "10", "11", "99", "100", "2", "20", "1000", "007", "x9", "a10", "3", "30", "31"]
_VOLUMES = [D(1), D(2), D("1.05"), D("1.5"), D("0.95")]
_SIZES = [Amount(D(0)), Amount(D("0.05")), Amount(D(10), percent=True), Amount(D("0.5")), Amount(D(30), percent=True)]


@st.composite
def partial_books(draw: st.DrawFn, max_targets: int = 7, max_orders: int = 7) -> Book:
    """Targets whose volumes change level by level under a size tolerance that joins some of them, windows of
    one to several levels, orders at half steps with volumes of one level or another (or neither)."""
    unit, base = draw(st.sampled_from(_UNITS)), draw(st.sampled_from(_BASES))
    clusters = [base + k * unit * 1000 for k in range(draw(st.sampled_from([1, 1, 2, 3])))]
    side_choice = draw(st.sampled_from([[B], [S], [B, S]]))
    volumes = draw(st.lists(st.sampled_from(_VOLUMES), min_size=2, max_size=3, unique=True))
    rows = draw(
        st.lists(
            st.tuples(st.sampled_from(side_choice), st.sampled_from(clusters), st.integers(0, 5)),
            min_size=3,
            max_size=max_targets,
        )
    )
    targets = [
        Target(f"{s.value.lower()}[{i}]", s, c + k * unit, draw(st.sampled_from(volumes)))
        for i, (s, c, k) in enumerate(rows)
    ]
    ids = draw(st.lists(st.sampled_from(_IDS), unique=True, min_size=3, max_size=max_orders))
    statuses = st.sampled_from([OrderStatus.NEW, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED, OrderStatus.INITIAL])
    orders = []
    for oid in ids:
        s, c, half = draw(st.tuples(st.sampled_from(side_choice), st.sampled_from(clusters), st.integers(-2, 12)))
        remaining, status = draw(st.sampled_from([*volumes, D("1.2")])), draw(statuses)
        dealt = D("0.5") if status is OrderStatus.PARTIALLY_FILLED else D(0)
        if draw(st.integers(0, 9)) == 0:
            status = OrderStatus.CANCEL_PENDING  # neither kept nor cancelled
        orders.append(Order(oid, s, abs(c + half * unit / 2), remaining + dealt, dealt, status))
    price = draw(
        st.one_of(
            st.sampled_from([1, 2, 3, 4, 5, 6, 8, 13]).map(lambda k: Amount(k * unit / 2)),
            st.sampled_from(["0.5", "1", "3", "150"]).map(lambda v: Amount(D(v), percent=True)),
        )
    )
    return targets, orders, Tolerance(price, draw(st.sampled_from(_SIZES)))


@settings(max_examples=examples(500), deadline=None)
@given(partial_books())
def test_partial_fits_follow_the_documented_rules(book: Book) -> None:
    check_against_the_rules(*book)


@st.composite
def chain_books(draw: st.DrawFn) -> Book:
    """One side, one cluster, integer levels 0..7 of alternating volumes, a wide window: one large component
    where most orders are partial and augmenting paths run through several kept orders."""
    unit = draw(st.sampled_from([D(1), D("0.01")]))
    base = draw(st.sampled_from([D(50), D("0.2")]))
    pattern = draw(st.sampled_from([[D(1), D(2)], [D(1), D(1), D(2)], [D(2), D(1), D(1), D("1.5")]]))
    levels = sorted(draw(st.lists(st.integers(0, 7), min_size=3, max_size=8)))
    targets = [Target(f"buy[{i}]", B, base + k * unit, pattern[k % len(pattern)]) for i, k in enumerate(levels)]
    ids = draw(st.lists(st.sampled_from(_IDS), unique=True, min_size=3, max_size=8))
    orders = [
        Order(oid, B, abs(base + draw(st.integers(-1, 15)) * unit / 2), draw(st.sampled_from([*pattern, D("1.2")])))
        for oid in ids
    ]
    width = draw(st.sampled_from([2, 3, 4, 5, 8]))
    return targets, orders, Tolerance(Amount(width * unit / 2), Amount(D("0.05")))


@settings(max_examples=examples(400), deadline=None)
@given(chain_books())
def test_long_augmenting_paths_follow_the_documented_rules(book: Book) -> None:
    check_against_the_rules(*book)


def reference_keep(targets: Sequence[Target], orders: Sequence[Order], tol: Tolerance) -> Choice:
    """(kept, distance, kept ids, kept levels) by the old exact matcher on costs that encode rules 1-4: an edge
    costs ``distance * W + W - order bit - target bit`` (``W`` above every bit together), so among the largest
    matchings the least cost is the least distance, then the greatest bits, i.e. the first orders and targets."""
    count, distance, ids, levels = 0, D(0), set(), set()
    for side in (B, S):
        ts, os_ = side_lists(targets, orders, side)
        n, m = len(os_), len(ts)
        weight = 1 << (n + m)
        edges = [
            (
                i,
                j,
                int(abs(o.price - t.price).scaleb(12)) * weight + weight - (1 << (n + m - 1 - i)) - (1 << (m - 1 - j)),
            )
            for i, o in enumerate(os_)
            for j, t in enumerate(ts)
            if diff.fits(o, t, tol)
        ]
        for i, j in min_cost_max_matching(n, m, edges):
            count, distance = count + 1, distance + abs(os_[i].price - ts[j].price)
            ids.add(os_[i].id)
            levels.add(ts[j].level)
    return count, distance, frozenset(ids), frozenset(levels)


@settings(max_examples=examples(60), deadline=None)
@given(st.integers(8, 30), st.data())
def test_larger_partial_books_follow_the_reference_matcher(n: int, data: st.DataObject) -> None:
    rnd = data.draw(st.randoms(use_true_random=False))
    step = data.draw(st.sampled_from([D(1), D("0.5"), D("0.01"), D("0.000001")]))
    base = data.draw(st.sampled_from([D(30000), D("0.0123"), D(1)]))
    pattern = data.draw(st.sampled_from([[D(1), D(2)], [D(1), D("1.5"), D(2)], [D(1), D(1), D(2)]]))
    clusters = [base + k * 1000 * step for k in range(data.draw(st.integers(1, 3)))]
    targets = [
        Target(f"buy[{k}]", B, rnd.choice(clusters) + rnd.randint(0, n // 2) * step, pattern[k % len(pattern)])
        for k in range(n)
    ]
    orders = [
        Order(
            f"{rnd.randint(1, 99)}{k:02}",
            B,
            abs(rnd.choice(clusters) + rnd.randint(-2, n + 2) * step / 2),
            rnd.choice([*pattern, D("1.25")]),
        )
        for k in range(n)
    ]
    tol = Tolerance(Amount(step * data.draw(st.sampled_from([1, 2, 3, 5, 9]))), Amount(D("0.05")))
    result = diff.reconcile(targets, orders, tol, reference_price=base)
    got = (
        len(result.keep),
        sum((abs(o.price - t.price) for o, t in result.keep), D(0)),
        frozenset(o.id for o, _ in result.keep),
        frozenset(t.level for _, t in result.keep),
    )
    assert got == reference_keep(targets, orders, tol)
    assert all(diff.fits(o, t, tol) for o, t in result.keep)


# --- match_side on its own ----------------------------------------------------------------------------------


def test_no_targets_nothing_fits() -> None:
    side = SideTargets([], Tolerance(Amount(D(1)), Amount(D(0))))
    assert match_side([Order("1", B, D(5), D(1))], side) == ({}, [False])


def test_fits_any_marks_orders_that_fit_some_target_even_when_unkept() -> None:
    tol = Tolerance(Amount(D(1)), Amount(D("0.1")))
    side = SideTargets([Target("buy[0]", B, D(10), D(1)), Target("buy[1]", B, D(11), D(2))], tol)
    orders = [
        Order("1", B, D("10.5"), D(2)),  # partial: fits buy[1] only
        Order("2", B, D("11"), D(2)),  # partial: fits buy[1] only, nearer
        Order("3", B, D("10"), D(3)),  # in the window, fits no size
        Order("4", B, D("20"), D(1)),  # out of every window
        Order("5", B, D("9"), D(1)),  # transparent: buy[0] alone
    ]
    matched, fits_any = match_side(orders, side)
    assert matched == {1: 1, 4: 0}
    assert fits_any == [True, True, False, False, True]


def keep_of(targets: Sequence[Target], orders: Sequence[Order], tol: Tolerance) -> set[tuple[str, str]]:
    """{(order id, level)} kept by the diff, after checking the whole result against the rules."""
    return {(o.id, t.level) for o, t in check_against_the_rules(targets, orders, tol).keep}


def test_a_run_whose_middle_volume_is_out_of_size_tolerance_is_not_taken_for_transparent() -> None:
    # volumes 1, 2, 1.5 are not monotone: comparing only the run's ends (1 and 1.5) would let the order stand
    # for buy[1] (distance 0), whose volume 2 is 0.8 away; it fits buy[0] and buy[2], both 1 away: buy[0] first
    tol = Tolerance(Amount(D(1)), Amount(D("0.5")))
    targets = [
        Target("buy[0]", B, D(10), D(1)),
        Target("buy[1]", B, D(11), D(2)),
        Target("buy[2]", B, D(12), D("1.5")),
    ]
    assert keep_of(targets, [Order("1", B, D(11), D("1.2"))], tol) == {("1", "buy[0]")}


def test_the_least_volume_of_a_run_is_found_wherever_it_sits() -> None:
    # volumes 2, 2, 1, 2: order "2"'s window holds buy[0..2], and buy[2] (volume 1) does not fit its size 2;
    # taking it for buy[2] (1.1 away) would beat the true optimum, 1.5 in total
    tol = Tolerance(Amount(D("1.5")), Amount(D(0)))
    targets = [
        Target("buy[0]", B, D(10), D(2)),
        Target("buy[1]", B, D(11), D(2)),
        Target("buy[2]", B, D("12.6"), D(1)),
        Target("buy[3]", B, D(14), D(2)),
    ]
    orders = [Order("1", B, D(11), D(2)), Order("2", B, D("11.5"), D(2))]
    assert {i for i, _ in keep_of(targets, orders, tol)} == {"1", "2"}


def test_prices_of_more_digits_than_the_decimal_context_keep_every_digit() -> None:
    # a target at 10^20 and prices with ten decimals: their sum has 31 digits, more than the context's 28, so
    # the scale must come from each value; at 10^7 the three orders would all look 0 away and "1" would be kept
    tol = Tolerance(Amount(D("1E-9")), Amount(D(0)))
    targets = [
        Target("buy[0]", B, D("1.0000000001"), D(1)),
        Target("buy[1]", B, D("1.0000000002"), D(1)),
        Target("buy[9]", B, D("1E+20"), D(1)),
    ]
    orders = [
        Order("1", B, D("1.0000000009"), D(1)),
        Order("2", B, D("1.0000000001"), D(1)),
        Order("3", B, D("1.0000000002"), D(1)),
    ]
    assert keep_of(targets, orders, tol) == {("2", "buy[0]"), ("3", "buy[1]")}


def test_an_order_at_price_zero_fits_a_window_that_reaches_zero() -> None:
    # both windows reach below zero (read as zero): the order at 0 is 1 away from buy[0], and both are kept
    tol = Tolerance(Amount(D(2)), Amount(D(0)))
    targets = [Target("buy[0]", B, D(1), D(1)), Target("buy[1]", B, D(2), D(1))]
    orders = [Order("1", B, D(0), D(1)), Order("2", B, D(2), D(1))]
    assert keep_of(targets, orders, tol) == {("1", "buy[0]"), ("2", "buy[1]")}


def test_kept_pairs_follow_price_order_when_a_partial_order_shares_the_component() -> None:
    # buy[3] (volume 2) makes both orders partial; they are kept for buy[1] and buy[2] at 0.5 in total either
    # way, so rule 5 decides: the lower-priced order "10" for the first target, buy[1]
    tol = Tolerance(Amount(D("0.5")), Amount(D(0)))
    targets = [
        Target("buy[0]", B, D(100), D(1)),
        Target("buy[1]", B, D(1100), D(1)),
        Target("buy[2]", B, D(1100), D(1)),
        Target("buy[3]", B, D(1100), D(2)),
    ]
    orders = [Order("9", B, D("1100.5"), D(1)), Order("10", B, D(1100), D(1))]
    assert keep_of(targets, orders, tol) == {("10", "buy[1]"), ("9", "buy[2]")}


def test_a_nearer_later_order_beats_a_farther_earlier_one_whatever_their_ranks() -> None:
    # "2" fits buy[0] and buy[1] but not buy[2] (volume 5): a partial order, so the
    # augmenting search decides. Keeping "3" and "2" is 0 away; swapping "3" for "1", the first order, costs
    # one unit of distance, which no rank may outweigh
    tol = Tolerance(Amount(D(1)), Amount(D(0)))
    targets = [Target("buy[0]", B, D(10), D(1)), Target("buy[1]", B, D(11), D(1)), Target("buy[2]", B, D(12), D(5))]
    orders = [Order("1", B, D(9), D(1)), Order("2", B, D(11), D(1)), Order("3", B, D(10), D(1))]
    assert keep_of(targets, orders, tol) == {("3", "buy[0]"), ("2", "buy[1]")}


@st.composite
def one_price_books(draw: st.DrawFn) -> Book:
    """Every target and order at one price (or half a step off), so distances tie and sizes alone decide who
    fits what: trades between keeping an earlier order and keeping earlier targets."""
    price = draw(st.sampled_from([D(100), D("0.5"), D("0.0001")]))
    step = price / 1000
    volumes = st.sampled_from([D(1), D(2), D(3), D(4)])
    targets = [
        Target(f"buy[{k}]", B, price + draw(st.sampled_from([0, 0, 0, 1])) * step, draw(volumes))
        for k in range(draw(st.integers(2, 7)))
    ]
    ids = draw(st.lists(st.sampled_from(_IDS), unique=True, min_size=2, max_size=6))
    orders = [Order(oid, B, price + draw(st.sampled_from([0, 0, 1])) * step, draw(volumes)) for oid in ids]
    return targets, orders, Tolerance(Amount(2 * step), Amount(D(draw(st.sampled_from([0, 1, 1, 2])))))


@settings(max_examples=examples(400), deadline=None)
@given(one_price_books())
def test_sizes_alone_decide_and_ranks_follow_the_documented_order(book: Book) -> None:
    check_against_the_rules(*book)


def test_the_augmenting_search_keeps_the_first_of_two_equal_orders_through_a_chain() -> None:
    # buy[0] (volume 2) fits no order, so every order is partial. Least distance 2.5: "9" (55) for buy[1], one
    # of "10"/"100" (56.5) for buy[2]; "10" comes first. Found by a search whose potentials were left unrelaxed
    # (a negative reduced arc let "100" through).
    tol = Tolerance(Amount(D(4)), Amount(D("0.05")))
    targets = [Target("buy[0]", B, D(52), D(2)), Target("buy[1]", B, D(53), D(1)), Target("buy[2]", B, D(56), D(1))]
    orders = [
        Order(oid, B, D(price), D(1))
        for oid, price in (("9", "55"), ("10", "56.5"), ("11", "50"), ("99", "50"), ("100", "56.5"))
    ]
    assert keep_of(targets, orders, tol) == {("9", "buy[1]"), ("10", "buy[2]")}


def test_the_first_of_two_equal_orders_is_kept_beside_a_component_of_other_volumes() -> None:
    # volume-1 orders fit only buy[0] ("9" first); volume-2 orders fit buy[1] and buy[2]. Least distance: "99"
    # for buy[1] (1) and one of "2"/"100" (54.5) for buy[2] (1.5); "2" comes before "100" as a number.
    # Found by a search whose potentials relaxed with the arc's cost subtracted.
    tol = Tolerance(Amount(D(4)), Amount(D("0.05")))
    targets = [Target("buy[0]", B, D(50), D(1)), Target("buy[1]", B, D(51), D(2)), Target("buy[2]", B, D(53), D(2))]
    rows = (("9", "50", 1), ("10", "50", 1), ("11", "50", 1), ("99", "50", 2), ("100", "54.5", 2), ("2", "54.5", 2))
    orders = [Order(oid, B, D(price), D(volume)) for oid, price, volume in rows]
    assert keep_of(targets, orders, tol) == {("9", "buy[0]"), ("99", "buy[1]"), ("2", "buy[2]")}


def test_an_order_is_kept_through_a_long_detour_rather_than_dropped() -> None:
    # "1" (transparent) sits 1 from buy[1]; "2" fits only buy[1] (buy[0], volume 5, is in its window too, so it
    # is partial). Keeping both moves "1" to buy[2], 3 away: the augmenting path costs far more than any single
    # pair, and leaving "2" out must still cost more than that
    tol = Tolerance(Amount(D(3)), Amount(D(0)))
    targets = [Target("buy[0]", B, D(6), D(5)), Target("buy[1]", B, D(10), D(1)), Target("buy[2]", B, D(14), D(1))]
    orders = [Order("1", B, D(11), D(1)), Order("2", B, D(7), D(1))]
    assert keep_of(targets, orders, tol) == {("2", "buy[1]"), ("1", "buy[2]")}
