"""One replay: the market's events in time order, the job woken as the daemon would wake it, its real pass run.

At each wake-up the driver calls ``rebalancer.engine.runner.run_pass`` (mode ``run``, applying) with the simulated
venue, a throw-away in-memory state store and the replay's clocks, so ladder, diff, guards, funding, skew, limits,
lifecycle, the loss limit and ``after_fill`` act as they do live. Between wake-ups the books and prints go to the
venue, which fills the resting orders. Like the daemon, it skips the passes of a job that is paused (``paused:
true`` in its file, or by its loss limit: nobody resumes it during a replay).

Wake-ups come from the job's ``schedule`` (``rebalancer.replay.timer``) and, for a job with ``exchange.stream``,
from the market stream as the daemon's stream wake source would raise them (``rebalancer.replay.follow``: the same
``core.wake.Watcher``, fed the replayed books and prints, at most one pass per ``min_gap``). Wakes due together are
one pass, named by the most urgent reason. The replay starts at the first book at or after ``--from`` (the
last book before it stands as the market then) and ends with the last event at or before ``--to``; a window with
no event in it (wholly before the first book or after the last event) is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from rebalancer.core.wake import most_urgent
from rebalancer.engine.runner import PassReport, run_pass
from rebalancer.engine.streamfed import StreamFed
from rebalancer.errors import ConfigError, RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.models import ZERO, SymbolRules
from rebalancer.replay.follow import Follow
from rebalancer.replay.ledger import Ledger
from rebalancer.replay.market import Book, Event, Market, Print
from rebalancer.replay.matching import FillModel
from rebalancer.replay.result import ReplayResult
from rebalancer.replay.timer import Timer, to_datetime
from rebalancer.replay.venue import SimVenue
from rebalancer.state.store import StateStore
from rebalancer.vocab import AccountUse, Mode, PausedBy, WakeReason

DEFAULT_QUOTE = Decimal(1_000_000)
"""Without ``--balances`` the account holds this much quote coin, and base coin worth as much at the first mid."""
PROGRESS_EVERY = 20_000
"""Events between two progress reports."""


@dataclass(frozen=True, slots=True)
class Options:
    """How to replay: fill model, batch latency, maker fee (a fraction), the account's balances (None: the
    default), the window (epoch ms, or offsets from the market's first event; None: all), whether to keep the
    curves, fills and levels, and a progress callback given the market time reached."""

    fill: FillModel = FillModel.TOUCH
    latency_ms: int = 0
    fee: Decimal = ZERO
    balances: dict[str, Decimal] | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    from_offset_ms: int | None = None
    to_offset_ms: int | None = None
    keep_detail: bool = False
    progress: Callable[[int], None] | None = None


@dataclass
class Run:
    """What a replay produced: the result and, with ``keep_detail``, the ledger (curves, fills) and ladder levels."""

    result: ReplayResult
    ledger: Ledger
    levels: list[tuple[int, tuple[Decimal, ...], tuple[Decimal, ...]]] = field(default_factory=list)
    start_ms: int = 0
    end_ms: int = 0


class Driver:
    """Replays ``market`` for ``job`` under ``options``; ``run()`` once."""

    def __init__(self, job: Job, market: Market, rules: SymbolRules, options: Options) -> None:
        if job.reference.source is not None:
            raise ConfigError(
                f"job {job.name} takes its reference from another venue (reference.source): a replay has only "
                "the recorded market's prices; replay a copy of the job with reference: mid, bid, ask or last"
            )
        self.job = job
        self.market = market
        self.rules = rules
        self.options = options
        self._events: Iterator[Event] = market.events
        self._next: Event | None = None
        self._done = False
        self._count = 0
        self.now_ms = 0
        self.wakes = {reason: 0 for reason in ("timer", "reference", "trade", "market")}
        self.passes = 0
        self.failed = 0
        self.trips = 0
        self.paused_ms: dict[str, int] = {}
        self._pause: str | None = None
        self._pause_since = 0
        self._stopped = job.paused
        self.levels: list[tuple[int, tuple[Decimal, ...], tuple[Decimal, ...]]] = []
        self.from_ms = options.from_ms
        self.to_ms: int | None = None
        self._follow = Follow(job) if job.exchange.stream is not None else None

    def run(self) -> Run:
        """Replay from the first book to the last event; the result."""
        first = self._peek()
        if first is not None:
            self._window(first.t_ms)
        book = self._first_book()
        start = book.t_ms
        ledger = Ledger(ZERO, keep_detail=self.options.keep_detail)
        venue = self._venue(book, ledger)
        timer = Timer(self.job, start)
        self.now_ms = start
        if self._follow is not None:
            self._follow.on_book(venue.market(), start)
        self._pause, self._pause_since = (PausedBy.FILE.value if self.job.paused else None), start
        with StateStore("sqlite://") as store:
            while (upcoming := self._peek()) is not None:
                due = self._due(timer)
                if due is None or due >= upcoming.t_ms:
                    self._apply(venue, self._take())
                    continue
                self._advance(venue, due)
                reasons = [WakeReason.TIMER] if timer.due_ms is not None and timer.due_ms <= self.now_ms else []
                streamed = self._follow.take(self.now_ms) if self._follow is not None else None
                if streamed is not None:
                    reasons.append(streamed)
                if not reasons:
                    continue
                self.wakes[most_urgent(reasons).value] += 1
                report = None if self._stopped else self._pass(venue, store)
                if WakeReason.TIMER in reasons:
                    timer.fired(self.now_ms)
                if self._follow is not None:
                    self._follow.passed(self.now_ms, report)
        end = self.now_ms
        venue.learn_fills()
        self._pause_to(end)
        ledger.finish(end)
        result = self._result(venue, ledger, end - start)
        return Run(result, ledger, self.levels, start, end)

    def _due(self, timer: Timer) -> int | None:
        """When the next pass may be due: the timer's next fire, or a stream wake (or a book turning stale)."""
        follow = self._follow.due_ms if self._follow is not None else None
        if timer.due_ms is None or follow is None:
            return timer.due_ms if follow is None else follow
        return min(timer.due_ms, follow)

    def _result(self, venue: SimVenue, ledger: Ledger, length_ms: int) -> ReplayResult:
        counts = venue.counts
        return ReplayResult(
            seconds=length_ms // 1000,
            passes=self.passes,
            failed_passes=self.failed,
            wakes=dict(self.wakes),
            place=counts.place,
            cancel=counts.cancel,
            batches=counts.batches,
            requests=counts.requests,
            fills=venue.learnt_fills,
            buy_volume=ledger.buy_volume,
            sell_volume=ledger.sell_volume,
            fees=ledger.fees,
            base_start=ledger.base_start,
            base_end=ledger.base,
            base_min=ledger.base_min,
            base_max=ledger.base_max,
            realised=ledger.realised,
            unrealised=ledger.unrealised,
            total=ledger.total,
            max_drawdown=ledger.max_drawdown,
            paused_ms=dict(sorted(self.paused_ms.items())),
            loss_limit_trips=self.trips,
        )

    def _venue(self, book: Book, ledger: Ledger) -> SimVenue:
        balances = self.options.balances
        if balances is None:
            bid, ask = book.best_bid, book.best_ask
            mid = (bid + ask) / 2 if bid is not None and ask is not None else (bid or ask)
            assert mid is not None
            base = self.rules.round_volume(DEFAULT_QUOTE / mid)
            balances = {self.rules.quote.lower(): DEFAULT_QUOTE, self.rules.base.lower(): base}
        base_start = balances.get(self.rules.base.lower(), ZERO)
        ledger.base = ledger.base_min = ledger.base_max = ledger.base_start = base_start
        venue = SimVenue(
            self.rules,
            dict(balances),
            ledger,
            model=self.options.fill,
            fee=self.options.fee,
            latency_ms=self.options.latency_ms,
            page_size=self.job.exchange.page_size,
            dedicated=self.job.exchange.account is AccountUse.DEDICATED,
            advance=lambda until: self._advance(venue, until),
        )
        venue.now_ms = book.t_ms
        venue.on_book(book)
        return venue

    def _pass(self, venue: SimVenue, store: StateStore) -> PassReport | None:
        venue.learn_fills()
        exchange: Exchange = venue
        if self._follow is not None:
            follow = self._follow
            exchange = StreamFed(venue, self.job, lambda: follow.ticker(venue.market(), self.now_ms))
        try:
            report = run_pass(
                self.job,
                exchange,
                store,
                apply=True,
                mode=Mode.RUN,
                clock=lambda: self.now_ms / 1000,
                wall=lambda: to_datetime(self.now_ms),
            )
        except RebalancerError:
            self.passes += 1
            self.failed += 1
            return None
        self.passes += 1
        plan = report.plan
        if plan.paused_by is PausedBy.MAX_LOSS:
            self.trips += 1
            self._stopped = True
        self._pause_to(self.now_ms)
        self._pause = None if plan.paused_by is None else str(plan.paused_by)
        if self.options.keep_detail:
            buys = tuple(sorted(o.price for o in venue.open.values() if o.side.value == "BUY"))
            sells = tuple(sorted(o.price for o in venue.open.values() if o.side.value == "SELL"))
            if not self.levels or self.levels[-1][1:] != (buys, sells):
                self.levels.append((self.now_ms, buys, sells))
        return report

    def _pause_to(self, now_ms: int) -> None:
        if self._pause is not None and now_ms > self._pause_since:
            self.paused_ms[self._pause] = self.paused_ms.get(self._pause, 0) + now_ms - self._pause_since
        self._pause_since = now_ms

    def _window(self, first_ms: int) -> None:
        options = self.options
        if options.from_offset_ms is not None:
            self.from_ms = first_ms + options.from_offset_ms
        self.to_ms = window_end(options, first_ms)
        if self.from_ms is not None and self.to_ms is not None and self.to_ms <= self.from_ms:
            raise ConfigError("--to must be later than --from")
        if self._next is not None and self.to_ms is not None and self._next.t_ms > self.to_ms:
            self._next, self._done = None, True

    def _first_book(self) -> Book:
        """The book standing at the start: the first one, or with ``--from`` the last one before it (events before
        the start only set the market's state; their prints fill nothing)."""
        latest: Book | None = None
        start = self.from_ms
        while (event := self._peek()) is not None:
            if start is not None and latest is not None and event.t_ms >= start:
                break
            self._take()
            if isinstance(event, Book) and (event.bids or event.asks):
                latest = event
                if start is None:
                    return event
        after_the_end = event is None and start is not None and latest is not None and latest.t_ms < start
        if latest is None or after_the_end:
            raise ConfigError(f"{self.market.name}: no order book of {self.job.symbol} in the chosen window")
        return Book(max(latest.t_ms, start or 0), latest.bids, latest.asks)

    def _advance(self, venue: SimVenue, until_ms: int) -> None:
        """Run the market on to ``until_ms``: every event at or before it goes to the venue."""
        while (event := self._peek()) is not None and event.t_ms <= until_ms:
            self._apply(venue, self._take())
        self.now_ms = max(self.now_ms, until_ms)
        venue.now_ms = self.now_ms

    def _apply(self, venue: SimVenue, event: Event) -> None:
        self.now_ms = max(self.now_ms, event.t_ms)
        venue.now_ms = self.now_ms
        if isinstance(event, Print):
            venue.on_print(event)
            if self._follow is not None:
                self._follow.on_print(event.price, self.now_ms)
        else:
            venue.on_book(event)
            if self._follow is not None:
                self._follow.on_book(venue.market(), self.now_ms)

    def _peek(self) -> Event | None:
        if self._next is None and not self._done:
            self._next = next(self._events, None)
            if self._next is None:
                self._done = True
            elif self.to_ms is not None and self._next.t_ms > self.to_ms:
                self._next, self._done = None, True
        return self._next

    def _take(self) -> Event:
        event = self._peek()
        assert event is not None
        self._next = None
        self._count += 1
        if self.options.progress is not None and self._count % PROGRESS_EVERY == 0:
            self.options.progress(event.t_ms)
        return event


def window_end(options: Options, first_ms: int) -> int | None:
    """The last moment ``options`` replay (``--to``) of a market whose first event is at ``first_ms``; None: its end."""
    return options.to_ms if options.to_offset_ms is None else first_ms + options.to_offset_ms


def events_read(events: Iterator[Event], options: Options) -> Iterator[Event]:
    """The events a replay under ``options`` reads: up to the first one after its end, which it reads to know."""
    end: int | None = None
    for index, event in enumerate(events):
        if index == 0:
            end = window_end(options, event.t_ms)
        yield event
        if end is not None and event.t_ms > end:
            return


def replay(job: Job, market: Market, rules: SymbolRules, options: Options) -> Run:
    """Replay ``market`` for ``job`` under ``options`` (see the module docstring)."""
    return Driver(job, market, rules, options).run()
