"""``rebalancer.core.wake.Watcher``: one job's wake-ups from its stream, edge-triggered, values in and out."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.core import wake
from rebalancer.core.plan import compute_plan
from rebalancer.core.wake import Book, Prints, Watcher, book_of, prints_of
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Order, PriceSource, Ticker
from rebalancer.vocab import WakeReason
from tests.core.kit import job, side_ladder, snapshot

D = Decimal
STALE = 3000
REF, TRADE, MARKET = frozenset({WakeReason.REFERENCE}), frozenset({WakeReason.TRADE}), frozenset({WakeReason.MARKET})
NOTHING: frozenset[WakeReason] = frozenset()
LADDER = job(buy=side_ladder(levels=2), sell=side_ladder(levels=2))


def _standing(the_job: Job, ticker: Ticker) -> tuple[MarketSnapshot, tuple[Order, ...]]:
    """What a pass at ``ticker`` read and the orders it left: exactly its plan's placements."""
    read = snapshot(ticker=ticker)
    plan = compute_plan(the_job, read, None)
    orders = tuple(Order(str(i), a.side, a.price, a.volume) for i, a in enumerate(plan.actions, start=1))
    return read, orders


def _watching(the_job: Job = LADDER, bid: str = "29990.00", ask: str = "30010.00") -> Watcher:
    watcher = Watcher(the_job, STALE)
    ticker = Ticker(D(bid), D(ask), None)
    assert watcher.on_book(Book(ticker.bid, ticker.ask, 1)) == NOTHING  # nothing learnt yet: nothing to move
    assert watcher.learn(*_standing(the_job, ticker)) == NOTHING
    return watcher


def _book(bid: str | None, ask: str | None, t: int = 2) -> Book:
    return Book(None if bid is None else D(bid), None if ask is None else D(ask), t)


@pytest.mark.parametrize(
    ("bid", "ask", "raised"),
    [
        ("29990.00", "30010.00", NOTHING),  # the book the pass saw
        ("29980.00", "30020.00", NOTHING),  # wider, same mid: the reference did not move
        ("29995.00", "30015.00", NOTHING),  # mid +5: inside the 0.1 % tolerance
        ("30290.00", "30310.00", REF),  # mid +1 %: every level out of tolerance
        ("29690.00", "29710.00", REF),  # mid -1 %
        ("30010.00", "29990.00", MARKET),  # crossed
        ("30000.00", "30000.00", MARKET),  # locked: bid at the ask
        (None, "30010.00", MARKET),  # no bids
        ("29990.00", None, MARKET),  # no asks
    ],
)
def test_a_book_raises_what_it_means_for_the_job(bid: str | None, ask: str | None, raised: frozenset[object]) -> None:
    assert _watching().on_book(_book(bid, ask)) == raised


def test_reference_is_raised_once_until_the_next_pass_learns_the_orders() -> None:
    watcher = _watching()
    assert watcher.on_book(_book("30290.00", "30310.00")) == REF
    assert watcher.on_book(_book("30590.00", "30610.00")) == NOTHING  # a pass is already coming
    # The pass ran at the market it read; the next move raises again.
    assert watcher.learn(*_standing(LADDER, Ticker(D("30590.00"), D("30610.00"), None))) == NOTHING
    assert watcher.on_book(_book("30590.00", "30610.00")) == NOTHING
    assert watcher.on_book(_book("29990.00", "30010.00")) == REF


def test_learn_answers_what_the_book_seen_during_the_pass_already_raises() -> None:
    watcher = _watching()
    watcher.on_book(_book("30290.00", "30310.00"))  # moved while a (timer) pass ran at the old market
    assert watcher.learn(*_standing(LADDER, Ticker(D("29990.00"), D("30010.00"), None))) == REF


def test_an_unchanged_reference_does_not_run_the_ladder(monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = _watching()
    runs: list[int] = []
    real: Callable[..., frozenset[object]] = wake.ladder_changes

    def counted(*args: object) -> frozenset[object]:
        runs.append(1)
        return real(*args)

    monkeypatch.setattr(wake, "ladder_changes", counted)
    for _ in range(5):
        watcher.on_book(_book("29980.00", "30020.00"))  # mid unchanged at 30000
    watcher.on_book(_book("29995.00", "30015.00"))  # mid 30005: runs once
    watcher.on_book(_book("29985.00", "30025.00"))  # mid 30005 again
    assert len(runs) == 1
    for _ in range(10):  # a market flickering between three mids, all within tolerance: once per new mid
        for bid, ask in (("29993.00", "30013.00"), ("29990.00", "30010.00"), ("29995.00", "30015.00")):
            assert watcher.on_book(_book(bid, ask)) == NOTHING
    assert len(runs) == 2  # 30003 is new; 30000 is where the pass left them, 30005 was judged already


def test_a_crossed_book_raises_market_once_while_it_stays_crossed() -> None:
    watcher = _watching()
    assert watcher.on_book(_book("30010.00", "29990.00")) == MARKET
    assert watcher.on_book(_book("30011.00", "29990.00")) == NOTHING
    assert watcher.on_book(_book("29990.00", None)) == NOTHING  # still alarming (one-sided)
    assert watcher.on_book(_book("29990.00", "30010.00")) == NOTHING  # healthy again, reference unmoved
    assert watcher.on_book(_book("30010.00", "29990.00")) == MARKET  # a new alarm


def test_a_book_older_than_the_bound_raises_market_once() -> None:
    watcher = _watching()
    assert watcher.on_age(STALE) == NOTHING
    assert watcher.on_age(STALE + 1) == MARKET
    assert watcher.on_age(STALE * 5) == NOTHING
    assert watcher.on_book(_book("29990.00", "30010.00")) == NOTHING  # fresh again
    assert watcher.on_age(STALE + 1) == MARKET


@pytest.mark.parametrize(("bid", "ask"), [("1e-30", "2e-30"), ("0.00000001", "0.00000002"), ("1e30", "2e30")])
def test_an_absurd_book_is_judged_without_an_exception(bid: str, ask: str) -> None:
    assert _watching().on_book(_book(bid, ask)) <= REF  # the ladder from it differs, or cannot be decided


def test_no_book_yet_is_not_an_alarm() -> None:
    assert Watcher(LADDER, STALE).on_age(10**9) == NOTHING


@pytest.mark.parametrize(
    ("low", "high", "raised"),
    [
        ("29800", "29800", TRADE),  # through the best buy (29850), above the next (29775)
        ("29850.00", "29850.00", TRADE),  # at the best buy
        ("29000", "29000", TRADE),  # through every buy
        ("30150.00", "30150.00", TRADE),  # at the best sell
        ("29900", "30100", NOTHING),  # inside the spread of the job's orders
        ("29849.99", "30000", TRADE),  # the low reaches a buy
        ("30000", "30150.01", TRADE),  # the high reaches a sell
    ],
)
def test_prints_reaching_a_resting_order_raise_trade(low: str, high: str, raised: frozenset[object]) -> None:
    watcher = _watching()
    assert watcher.on_prints(Prints(D(low), D(high), D(high), 3)) == raised


def test_trade_is_raised_once_until_the_next_pass_and_never_before_the_first() -> None:
    fresh = Watcher(LADDER, STALE)
    assert fresh.on_prints(Prints(D(1), D(10**6), D(1), 1)) == NOTHING  # no orders known yet
    watcher = _watching()
    through = Prints(D("29000"), D("29000"), D("29000"), 3)
    assert watcher.on_prints(through) == TRADE
    assert watcher.on_prints(through) == NOTHING
    watcher.learn(*_standing(LADDER, Ticker(D("29990.00"), D("30010.00"), None)))
    assert watcher.on_prints(through) == TRADE


def test_the_streamed_ticker_takes_the_book_and_the_last_print() -> None:
    watcher = Watcher(LADDER, STALE)
    assert watcher.ticker() is None
    watcher.on_book(_book("99", "101", 7))
    watcher.on_prints(Prints(D(98), D(102), D(100), 8))
    assert watcher.ticker() == Ticker(D(99), D(101), D(100), 7, PriceSource.STREAM)


def test_what_the_last_pass_could_not_do_does_not_wake_the_job_again() -> None:
    # The pass left no orders (say the funds were short): its own draft wants placements; that alone is no move.
    watcher = Watcher(LADDER, STALE)
    watcher.learn(snapshot(), ())
    assert watcher.on_book(_book("29980.00", "30020.00")) == NOTHING
    assert watcher.on_book(_book("30290.00", "30310.00")) == REF  # the placements it would try moved


@pytest.mark.parametrize(
    ("bids", "asks", "best"),
    [
        ([], [], (None, None)),
        ([("100", "1"), ("99", "2")], [("101", "1")], ("100", "101")),
        ([("99", "2"), ("100", "1")], [("102", "1"), ("101", "3")], ("100", "101")),  # out of order
        ([("100", "0"), ("99", "1")], [("101", "0")], ("99", None)),  # volume 0 is no level
    ],
)
def test_book_of_takes_the_best_level_with_volume(
    bids: list[tuple[str, str]], asks: list[tuple[str, str]], best: tuple[str | None, str | None]
) -> None:
    book = book_of([(D(p), D(v)) for p, v in bids], [(D(p), D(v)) for p, v in asks], 5)
    assert (book.bid, book.ask) == tuple(None if b is None else D(b) for b in best)
    assert book.time_ms == 5


prices = st.integers(1, 10**6).map(lambda n: D(n) / 100)


@given(st.lists(st.tuples(prices, st.integers(0, 50)), min_size=1, max_size=20), st.data())
def test_prints_fold_the_same_however_a_run_of_trades_is_split(
    run: list[tuple[Decimal, int]], data: st.DataObject
) -> None:
    run.sort(key=lambda trade: trade[1])  # frames follow one another in time
    cut = data.draw(st.integers(1, len(run)))
    whole = prints_of(run)
    head, tail = prints_of(run[:cut]), prints_of(run[cut:])
    assert whole is not None and head is not None
    assert (head if tail is None else head.then(tail)) == whole
    latest = max(t for _, t in run)
    assert (whole.low, whole.high, whole.time_ms) == (min(p for p, _ in run), max(p for p, _ in run), latest)
    assert whole.last == [p for p, t in run if t == latest][-1]


def test_the_last_print_is_the_latest_whatever_the_order_in_the_frame() -> None:
    newest_first = prints_of([(D(3), 30), (D(2), 20), (D(1), 10)])
    assert newest_first == Prints(D(1), D(3), D(3), 30)
    assert prints_of([]) is None


events = st.one_of(
    st.tuples(st.just("book"), st.integers(29000, 31000), st.integers(0, 40)),
    st.tuples(st.just("crossed"), st.integers(29000, 31000), st.integers(0, 40)),
    st.tuples(st.just("trade"), st.integers(29000, 31000), st.integers(0, 400)),
    st.tuples(st.just("age"), st.integers(0, 2 * STALE), st.integers(0, 1)),
    st.tuples(st.just("learn"), st.integers(29000, 31000), st.integers(2, 40)),
)


@given(st.lists(events, max_size=40))
def test_each_reason_is_an_edge_not_a_level(script: list[tuple[str, int, int]]) -> None:
    """Between two passes ``reference`` and ``trade`` come at most once each; ``market`` never twice without a
    healthy book between; and a book exactly as the last pass saw it raises nothing."""
    watcher = Watcher(LADDER, STALE)
    since_learn: list[WakeReason] = []
    market_open = True  # may ``market`` be raised now
    book_ok: bool | None = None  # whether the last book was two-sided and uncrossed (None: no book yet)
    for kind, a, b in script:
        if kind == "learn":
            ticker = Ticker(D(a), D(a + b), None)
            since_learn = list(watcher.learn(*_standing(LADDER, ticker)))
            assert set(since_learn) <= REF
            assert watcher.on_book(Book(ticker.bid, ticker.ask, 0)) == NOTHING  # as the pass saw it
            market_open, book_ok = True, True
            continue
        healthy: bool | None = None
        if kind == "book":
            raised = watcher.on_book(Book(D(a), D(a + b + 1), 0))
            healthy = book_ok = True
        elif kind == "crossed":
            raised = watcher.on_book(Book(D(a + b), D(a), 0))
            healthy = book_ok = False
        elif kind == "trade":
            raised = watcher.on_prints(Prints(D(a), D(a + b), D(a + b), 0))
        else:
            raised = watcher.on_age(a)
            healthy = None if book_ok is None else book_ok and a <= STALE
        if WakeReason.MARKET in raised:
            assert market_open
            market_open = False
        if healthy:
            market_open = True
        since_learn += raised - MARKET
        assert since_learn.count(WakeReason.REFERENCE) <= 1
        assert since_learn.count(WakeReason.TRADE) <= 1
