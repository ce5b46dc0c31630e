"""When a job runs its next pass, and why. Pure: values in, values out.

A job wakes for four reasons (the words of logs, history, metrics and the pages):

- ``timer``: its ``schedule`` is due;
- ``reference``: the market moved so that the ladder computed from it would differ from the job's orders as they
  stood after its last pass (``ladder_moved``: the same ladder and diff a pass runs, no I/O);
- ``trade``: a trade printed at or through the price of one of its resting orders (``trade_reaches``: a possible
  fill);
- ``market``: its book crossed, emptied or went stale (``market_alarm``), so that the guards can act.

However many reasons come, two passes of one job are at least ``min_gap`` apart (``next_pass``; ``Pacer`` keeps
one job's gap and the wake it holds back until the gap's end).

``Watcher`` turns one job's stream into those signals, edge-triggered: it is told the job's orders after each pass
(``learn``), every streamed book (``on_book``), every batch of trades (``on_prints``) and how old the book is
(``on_age``), and answers the reasons each raises. The daemon's stream wake source and ``rebalancer replay`` drive
the same watcher: it reads no clock and does no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.core.ladder import quote_of, reference_price
from rebalancer.core.plan import draft_plan
from rebalancer.core.witness import reaches
from rebalancer.errors import RebalancerError
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Order, PriceSource, Ticker
from rebalancer.vocab import WakeReason

NONE: frozenset[WakeReason] = frozenset()
STANDING_MEMORY = 256
"""How many reference prices a watcher remembers the ladder left its orders standing at: a market flickering between
a few prices runs the ladder once per price between two passes."""
UNDECIDED = (RebalancerError, ValueError, ArithmeticError)
"""What the ladder may raise on a market it cannot hang from (a price that rounds to nothing, say): no decision."""


@dataclass(frozen=True, slots=True)
class Wake:
    """A pass to run at ``at_ms`` for ``reason``."""

    at_ms: int
    reason: WakeReason


def next_pass(now_ms: int, reasons: Iterable[WakeReason], last_pass_ms: int | None, min_gap_ms: int = 0) -> Wake | None:
    """The pass that ``reasons`` raised at ``now_ms`` call for: now, or once ``min_gap_ms`` has passed since the last
    pass if that is later; named by the first reason in ``WakeReason`` order. None without a reason."""
    raised = set(reasons)
    if not raised:
        return None
    reason = next(r for r in WakeReason if r in raised)
    earliest = now_ms if last_pass_ms is None else max(now_ms, last_pass_ms + max(min_gap_ms, 0))
    return Wake(earliest, reason)


def most_urgent(reasons: Iterable[WakeReason]) -> WakeReason:
    """The most urgent of ``reasons`` (at least one): the first in ``WakeReason`` order."""
    return min(reasons, key=_URGENCY.index)


_URGENCY = list(WakeReason)


@dataclass(slots=True)
class Pacer:
    """One job's ``min_gap``: which raised wakes run now and which one is held back until the gap's end.

    Several wakes inside one gap are one pass, named by the most urgent reason. A pass that ran answers a held wake
    raised before it started (it read the market after it); one raised while it ran stays held, as the pass may have
    read the market before what raised it. Times are given, never read: the live wake source and ``replay`` pace
    jobs alike.
    """

    gap_ms: int
    last_pass_ms: int | None = None  # when the last pass was asked for or ended
    held: Wake | None = None  # the wake held back until the gap's end
    held_raised_ms: int = 0  # when the latest reason merged into ``held`` was raised

    def offer(self, reasons: Iterable[WakeReason], now_ms: int) -> Wake | None:
        """The wake ``reasons`` raised at ``now_ms`` call for: one due now (run it), one due later (newly held: call
        ``release`` then), or None (nothing raised, or merged into the wake already held)."""
        wake = next_pass(now_ms, reasons, self.last_pass_ms, self.gap_ms)
        if wake is None:
            return None
        if self.held is not None:
            self.held = Wake(self.held.at_ms, most_urgent((self.held.reason, wake.reason)))
            self.held_raised_ms = now_ms
            return None
        if wake.at_ms > now_ms:
            self.held, self.held_raised_ms = wake, now_ms
        else:
            self.last_pass_ms = now_ms
        return wake

    def release(self, now_ms: int) -> WakeReason | None:
        """The held wake's reason once its gap has passed at ``now_ms`` (taken: the pass is asked for now)."""
        if self.held is None or self.held.at_ms > now_ms:
            return None
        reason, self.held = self.held.reason, None
        self.last_pass_ms = now_ms
        return reason

    def passed(self, now_ms: int, started_ms: int | None) -> None:
        """A pass ended at ``now_ms``; it started at ``started_ms`` (None: it was skipped or failed, and answered
        nothing). A held wake raised before that start is dropped: the pass answered it."""
        self.last_pass_ms = now_ms
        if started_ms is not None and self.held is not None and self.held_raised_ms <= started_ms:
            self.held = None


def trade_reaches(price: Decimal, orders: Sequence[Order]) -> bool:
    """True when a trade at ``price`` is at or through one of the resting ``orders`` (a buy at or above the
    trade's price, a sell at or below it)."""
    return any(o.remaining > 0 and reaches(o.side, o.price, price) for o in orders)


def market_alarm(bid: Decimal | None, ask: Decimal | None, age_ms: int, stale_ms: int) -> bool:
    """True when the book is crossed (bid at or above ask), has an empty side, or is older than ``stale_ms``."""
    if bid is None or ask is None:
        return True
    return bid >= ask or age_ms > stale_ms


def ladder_moved(job: Job, snapshot: MarketSnapshot, owned_ids: frozenset[str] | None) -> bool:
    """True when the plan made from ``snapshot`` (the streamed market, the job's orders as of its last pass) would
    cancel or place anything: the ladder and the diff of a pass, before the funding check (which only trims)."""
    return bool(ladder_changes(job, snapshot, owned_ids))


def ladder_changes(job: Job, snapshot: MarketSnapshot, owned_ids: frozenset[str] | None) -> frozenset[object]:
    """What the plan made from ``snapshot`` would change, as comparable keys: the ids it cancels and the targets it
    places (side, price, volume). Empty when the orders stand as the ladder wants them."""
    draft = draft_plan(job, snapshot, owned_ids)
    cancels = (order.id for order, _ in draft.result.cancel)
    places = ((t.side, t.price, t.volume) for t in draft.result.place)
    return frozenset((*cancels, *places))


@dataclass(frozen=True, slots=True)
class Book:
    """A streamed book as the watcher needs it: the best bid and ask (None for an empty side) and its time."""

    bid: Decimal | None
    ask: Decimal | None
    time_ms: int


def book_of(bids: Iterable[tuple[Decimal, Decimal]], asks: Iterable[tuple[Decimal, Decimal]], time_ms: int) -> Book:
    """The best bid and ask of a depth frame's levels (``(price, volume)``; a level of volume 0 is no level)."""
    bid = max((price for price, volume in bids if volume > 0), default=None)
    ask = min((price for price, volume in asks if volume > 0), default=None)
    return Book(bid, ask, time_ms)


@dataclass(frozen=True, slots=True)
class Prints:
    """Trades printed since the last look, folded: the lowest and highest price (all a resting order's reach
    depends on), the last price and the last time."""

    low: Decimal
    high: Decimal
    last: Decimal
    time_ms: int

    def then(self, later: Prints) -> Prints:
        """These prints followed by ``later``'s (the last price stays the latest trade's)."""
        last, at = (later.last, later.time_ms) if later.time_ms >= self.time_ms else (self.last, self.time_ms)
        return Prints(min(self.low, later.low), max(self.high, later.high), last, at)


def prints_of(trades: Iterable[tuple[Decimal, int]]) -> Prints | None:
    """The ``(price, time ms)`` trades of one frame folded; the last is the latest (the later one on a tie: a frame
    may list its trades newest first or last). None without any."""
    folded: Prints | None = None
    for price, time_ms in trades:
        one = Prints(price, price, price, time_ms)
        folded = one if folded is None else folded.then(one)
    return folded


class Watcher:
    """One job's wake-ups from its market stream (see the module doc). Not thread-safe: one caller at a time.

    - ``reference``: the ladder and diff of a pass, run on the streamed book and the orders of the last pass, would
      change something the last pass left as it was. The ladder runs once per reference price between two passes
      (an unchanged reference, or one it already found the orders standing at, does not run it); raised once, then
      not again until the next ``learn``.
    - ``trade``: prints at or through one of those orders; raised once until the next ``learn``.
    - ``market``: the book turned crossed, one-sided or stale (raised when it turns, not while it stays so).
    """

    def __init__(self, job: Job, stale_ms: int) -> None:
        self.job = job
        self.stale_ms = stale_ms
        self.book: Book | None = None
        self.last: Decimal | None = None  # the last streamed trade's price
        self._basis: MarketSnapshot | None = None  # the last pass's snapshot with the job's orders after it
        self._owned: frozenset[str] = frozenset()
        self._baseline: frozenset[object] = frozenset()  # what the last pass left undone (held levels, funding)
        self._standing_at: set[Decimal] = set()  # reference prices at which the ladder left the orders as they are
        self._reference_armed = False
        self._trade_armed = False
        self._alarmed = False

    def learn(self, snapshot: MarketSnapshot, orders: Sequence[Order]) -> frozenset[WakeReason]:
        """A pass ended: ``snapshot`` is what it read (rules, balances, quote) and ``orders`` the job's orders as it
        left them (kept and placed). Re-arms ``reference`` and ``trade``; answers what the latest book and prints
        already raise against the new orders (the market may have moved while the pass ran)."""
        basis = dataclasses.replace(snapshot, open_orders=tuple(orders))
        self._basis = basis
        self._owned = frozenset(o.id for o in orders)
        self._baseline = self._changes(basis) or frozenset()
        here = self._reference(basis.ticker)
        self._standing_at = set() if here is None else {here}
        self._reference_armed = self._trade_armed = True
        return NONE if self.book is None else self._moved()

    def on_book(self, book: Book) -> frozenset[WakeReason]:
        """A streamed book: ``market`` when it turns crossed or one-sided, ``reference`` when the ladder moved."""
        self.book = book
        if self._alarm(market_alarm(book.bid, book.ask, 0, self.stale_ms)):
            return frozenset({WakeReason.MARKET})
        return NONE if self._alarmed else self._moved()

    def on_prints(self, prints: Prints) -> frozenset[WakeReason]:
        """Trades printed: ``trade`` when one is at or through a resting order of the job."""
        self.last = prints.last
        if not self._trade_armed or self._basis is None:
            return NONE
        orders = self._basis.open_orders
        if trade_reaches(prints.low, orders) or trade_reaches(prints.high, orders):
            self._trade_armed = False
            return frozenset({WakeReason.TRADE})
        return NONE

    def on_age(self, age_ms: int) -> frozenset[WakeReason]:
        """The book is ``age_ms`` old (no frame since): ``market`` when that makes it stale. Nothing before the
        first book (until then the job polls)."""
        if self.book is None:
            return NONE
        alarm = market_alarm(self.book.bid, self.book.ask, age_ms, self.stale_ms)
        return frozenset({WakeReason.MARKET}) if self._alarm(alarm) else NONE

    def ticker(self) -> Ticker | None:
        """The market as streamed: bid and ask from the book, last from the trades; None before the first book."""
        if self.book is None:
            return None
        return Ticker(self.book.bid, self.book.ask, self.last, self.book.time_ms, PriceSource.STREAM)

    def _alarm(self, alarm: bool) -> bool:
        """Note whether the book is alarming; True when it just turned so."""
        raised = alarm and not self._alarmed
        self._alarmed = alarm
        return raised

    def _moved(self) -> frozenset[WakeReason]:
        ticker = self.ticker()
        if not self._reference_armed or self._basis is None or ticker is None:
            return NONE
        price = self._reference(ticker)
        if price is None or price in self._standing_at:
            return NONE
        changes = self._changes(dataclasses.replace(self._basis, ticker=ticker))
        if changes is None or changes == self._baseline:
            if len(self._standing_at) >= STANDING_MEMORY:
                self._standing_at.clear()
            self._standing_at.add(price)
            return NONE
        self._reference_armed = False
        return frozenset({WakeReason.REFERENCE})

    def _reference(self, ticker: Ticker) -> Decimal | None:
        """The job's reference price on ``ticker``; None when the market cannot give one (the guards' case)."""
        assert self._basis is not None
        try:
            return reference_price(self.job, quote_of(self.job, dataclasses.replace(self._basis, ticker=ticker)))
        except UNDECIDED:
            return None

    def _changes(self, snapshot: MarketSnapshot) -> frozenset[object] | None:
        try:
            return ladder_changes(self.job, snapshot, self._owned)
        except UNDECIDED:  # a market the ladder refuses: ``market``, the timer's pass and the guards deal with it
            return None
