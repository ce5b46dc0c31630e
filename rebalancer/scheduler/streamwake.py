"""The market stream as a wake source: jobs with ``exchange.stream`` run a pass when their market moves.

One ``StreamHub`` per stream URL per process (``rebalancer.stream.client``; ``stream: sandbox`` is the embedded
sandbox's own) follows each watched symbol's book and trades. The hub's thread only keeps the newest book and folds
the trades of each symbol (``core.wake.Prints``), so a slow reader never holds up the socket; one thread of this
source then hands them to the ``Watcher`` of every job on that symbol (jobs are indexed by URL and symbol) and turns
the reasons raised into ``wake(name, reason)`` calls, at most one pass per ``min_gap`` (``core.wake.next_pass``: a
wake inside the gap is delayed to its end, several coalescing into one).

Every ``STREAM_CHECK_SECONDS`` it looks at each symbol's book: silent past ``stale_seconds`` or the connection
down, the jobs of that symbol fall back to polling on their schedule (their ticker is read over REST), which is
said once per change (a log line, ``rebalancer_stream_polling``, the status pages) and raised as ``market`` so the
guards can act; when the book comes back they follow the stream again. After every pass the scheduler tells the
source what the pass left (``learn``).
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from rebalancer.core.wake import Book, Prints, Watcher, book_of, next_pass, prints_of
from rebalancer.defaults import STREAM_CHECK_SECONDS, STREAM_STALE_SECONDS
from rebalancer.engine.connect import stream_url
from rebalancer.engine.runner import PassReport
from rebalancer.engine.streamfed import StreamFed
from rebalancer.errors import RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.models import Order, Ticker
from rebalancer.scheduler.metrics import Metrics, stream_label
from rebalancer.stream.client import Received, StreamHub, StreamStats, Subscription, subscribe
from rebalancer.stream.frames import DEPTH, Depth, Trades, channel
from rebalancer.vocab import ActionKind, OutcomeStatus, WakeReason

log = logging.getLogger("rebalancer.stream")

NO_BOOK = "no book yet"
Wake = Callable[[str, WakeReason], None]
Resolver = Callable[[Job], contextlib.AbstractContextManager[str]]
Opener = Callable[[Job], contextlib.AbstractContextManager[Exchange]]


def standing(report: PassReport) -> tuple[Order, ...]:
    """The job's orders as its pass left them: the open orders it kept and the placements confirmed on the book."""
    kept = {a.order_id for a in report.plan.actions if a.action is ActionKind.KEEP}
    orders = [o for o in report.snapshot.open_orders if o.id in kept]
    for outcome in report.execution.outcomes if report.execution else ():
        if outcome.action is ActionKind.PLACE and outcome.status is OutcomeStatus.PLACED and outcome.order_id:
            orders.append(Order(outcome.order_id, outcome.side, outcome.price, outcome.volume))
    return tuple(orders)


@dataclass(frozen=True, slots=True)
class FeedState:
    """Where a job's market data comes from now (``stream``, or ``polling`` and why) and how many passes' orders
    its watcher has learnt."""

    source: str
    why: str = ""
    stream: str = ""
    learnt: int = 0


@dataclass(eq=False)
class _Watch:
    """One job on the stream."""

    job: Job
    watcher: Watcher
    feed: _Feed
    last_pass_ms: int | None = None  # when its last pass was asked for or ended, for ``min_gap``
    delayed: tuple[int, WakeReason] | None = None  # a wake held back until the gap's end
    last_wake: WakeReason | None = None
    learnt: int = 0

    @property
    def gap_ms(self) -> int:
        return int(self.job.schedule.min_gap_seconds * 1000)


@dataclass(eq=False)
class _Feed:
    """One symbol of one stream: its subscription, its jobs, and what arrived since the source last looked."""

    url: str
    symbol: str
    subscription: Subscription
    jobs: dict[str, _Watch] = field(default_factory=dict)
    book: Book | None = None
    prints: Prints | None = None
    lag_ms: list[int] = field(default_factory=list)
    fresh: bool = False
    why: str = NO_BOOK


class StreamWakes:
    """The stream wake source (``scheduler.plugs.WakeSource``) of one process; see the module doc."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        stale_seconds: float = STREAM_STALE_SECONDS,
        resolve: Resolver = stream_url,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self.stale_seconds = stale_seconds
        self._resolve = resolve
        self._clock = clock
        self._cond = threading.Condition()
        self._watches: dict[str, _Watch] = {}
        self._feeds: dict[tuple[str, str], _Feed] = {}
        self._dirty: set[tuple[str, str]] = set()
        self._delayed: list[tuple[int, str]] = []  # (due ms, job) heap of held-back wakes
        self._urls: dict[str, str] = {}  # a job's ``stream`` value → the URL it resolved to
        self._hubs: dict[str, StreamHub] = {}  # the hub of each URL whose connection changes are told here
        self._held = contextlib.ExitStack()  # the embedded sandbox, while a job follows its stream
        self._wake: Wake | None = None
        self._thread: threading.Thread | None = None
        self._stopped = False
        metrics.follow_streams(self.stats)

    # --- WakeSource -------------------------------------------------------------------------------------------

    def add(self, job: Job) -> None:
        """Follow ``job``'s symbol on its stream (a job without one is ignored); replaces an older version. A stream
        that cannot be had (the sandbox serving none) is logged, and the job polls."""
        if job.exchange.stream is None:
            return
        try:
            url = self._url(job)
        except RebalancerError as exc:
            log.error("market stream not followed: the job polls", extra={"job": job.name, "error": str(exc)})
            return
        key = (url, job.symbol.lower())
        self.remove(job.name)
        with self._cond:
            feed = self._feeds.get(key)
        if feed is None:
            insecure = job.exchange.insecure
            subscription = subscribe(url, job.symbol, lambda frame: self._received(key, frame), insecure=insecure)
            with self._cond:
                feed = self._feeds.setdefault(key, _Feed(url, key[1], subscription))
                hub, told = subscription.hub, self._hubs.get(url)
                self._hubs[url] = hub
            if feed.subscription is not subscription:
                subscription.close()
            if told is not hub:
                hub.on_connection(lambda connected: self._connection(url, connected))
        stale_ms = int(self.stale_seconds * 1000)
        with self._cond:
            self._watches[job.name] = feed.jobs[job.name] = _Watch(job, Watcher(job, stale_ms), feed)
        self._polling(job.name, feed)

    def remove(self, name: str) -> None:
        """Stop following the job named ``name``; the symbol's subscription ends with its last job."""
        with self._cond:
            feed = self._drop(name)
        if feed is not None and not feed.jobs:
            feed.subscription.close()
        for metric in (self.metrics.stream_polling, self.metrics.stream_fallbacks):
            with contextlib.suppress(KeyError):
                metric.remove(name)

    def start(self, wake: Wake) -> None:
        """Start calling ``wake`` from this source's thread."""
        self._wake = wake
        self._thread = threading.Thread(target=self._run, name="rebalancer-stream-wakes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop calling it; every subscription closed."""
        with self._cond:
            self._stopped = True
            feeds = list(self._feeds.values())
            self._feeds.clear()
            self._watches.clear()
            self._cond.notify_all()
        for feed in feeds:
            feed.subscription.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._held.close()

    # --- what the scheduler tells and asks ---------------------------------------------------------------------

    def feeding(self, opener: Opener) -> Opener:
        """``opener`` with each stream job's ticker taken from this source while its stream is fresh."""

        @contextlib.contextmanager
        def open_fed(job: Job) -> Iterator[Exchange]:
            with opener(job) as exchange:
                if job.exchange.stream is None:
                    yield exchange
                else:
                    yield StreamFed(exchange, job, lambda: self.ticker(job.name))

        return open_fed

    def learn(self, name: str, report: PassReport | None) -> None:
        """A pass of ``name`` ended (``report`` None: skipped or failed): the watcher learns the orders it left,
        and what the market did meanwhile may wake the job again at once."""
        with self._cond:
            watch = self._watches.get(name)
            if watch is None:
                return
            now = self._now_ms()
            watch.last_pass_ms = now
            if report is None:
                return
            watch.learnt += 1
            wake = self._raise(watch, watch.watcher.learn(report.snapshot, standing(report)), now)
        self._emit([wake])

    def ticker(self, name: str) -> Ticker | None:
        """The job's market as streamed, while its stream is fresh; None when it polls."""
        with self._cond:
            watch = self._watches.get(name)
            if watch is None or not watch.feed.fresh:
                return None
            return watch.watcher.ticker()

    def state(self, name: str) -> FeedState | None:
        """Where the job's market data comes from now; None for a job without a stream."""
        with self._cond:
            watch = self._watches.get(name)
            if watch is None:
                return None
            feed = watch.feed
            source, why = ("stream", "") if feed.fresh else ("polling", feed.why)
            return FeedState(source, why, stream_label(feed.url), watch.learnt)

    def last_wake(self, name: str) -> WakeReason | None:
        """The last reason this source woke ``name`` for."""
        with self._cond:
            watch = self._watches.get(name)
            return None if watch is None else watch.last_wake

    def stats(self) -> list[StreamStats]:
        """Each followed stream's counters (one hub per URL)."""
        with self._cond:
            hubs = {feed.url: feed.subscription.hub for feed in self._feeds.values()}
        return [hub.stats() for hub in hubs.values()]

    # --- the hub's thread ---------------------------------------------------------------------------------------

    def _received(self, key: tuple[str, str], frame: Received) -> None:
        """A frame of a followed symbol (the hub's thread): keep the newest book, fold the trades, say so."""
        message = frame.message
        if isinstance(message, Depth):
            update: Book | Prints | None = book_of(message.bids, message.asks, message.ts_ms)
        elif isinstance(message, Trades):
            update = prints_of([t.price for t in message.trades], message.ts_ms)
        else:
            return
        with self._cond:
            feed = self._feeds.get(key)
            if feed is None or update is None:
                return
            if isinstance(update, Book):
                feed.book = update
            else:
                feed.prints = update if feed.prints is None else feed.prints.then(update)
            feed.lag_ms.append(frame.received_ms - message.ts_ms)
            self._dirty.add(key)
            self._cond.notify()

    def _connection(self, url: str, connected: bool) -> None:
        """The connection to ``url`` opened or was lost (the hub's thread): lost, its jobs poll at once; they follow
        the stream again when a book arrives."""
        if connected:
            return
        with self._cond:
            for feed in self._feeds.values():
                if feed.url == url and feed.fresh:
                    feed.fresh, feed.why = False, "stream disconnected"
                    self._say(feed)

    # --- this source's thread ------------------------------------------------------------------------------------

    def _run(self) -> None:
        next_check = 0.0
        while True:
            with self._cond:
                if self._stopped:
                    return
                timeout = max(0.0, next_check - time.monotonic())
                if self._delayed:
                    timeout = min(timeout, max(0.0, (self._delayed[0][0] - self._now_ms()) / 1000))
                if not self._dirty:
                    self._cond.wait(timeout)
                if self._stopped:
                    return
                keys, self._dirty = self._dirty, set()
                arrived = [(self._feeds[k], self._take(self._feeds[k])) for k in keys if k in self._feeds]
            for feed, (book, prints, lags) in arrived:
                self._hand(feed, book, prints, lags)
            self._release_delayed()
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + STREAM_CHECK_SECONDS
                self._check()

    @staticmethod
    def _take(feed: _Feed) -> tuple[Book | None, Prints | None, list[int]]:
        taken = (feed.book, feed.prints, feed.lag_ms)
        feed.book, feed.prints, feed.lag_ms = None, None, []
        return taken

    def _hand(self, feed: _Feed, book: Book | None, prints: Prints | None, lags: list[int]) -> None:
        """Give what arrived for ``feed``'s symbol to each of its jobs' watchers."""
        label = stream_label(feed.url)
        for lag in lags:
            self.metrics.stream_lag.labels(label).observe(max(0, lag) / 1000)
        wakes = []
        with self._cond:
            now = self._now_ms()
            if book is not None and not feed.fresh:
                feed.fresh, feed.why = True, ""
                self._say(feed)
            for watch in list(feed.jobs.values()):
                reasons = watch.watcher.on_book(book) if book is not None else frozenset()
                if prints is not None:
                    reasons |= watch.watcher.on_prints(prints)
                wakes.append(self._raise(watch, reasons, now))
        self._emit(wakes)

    def _check(self) -> None:
        """Each followed book's age: stale ones fall back to polling (and raise ``market``), fresh ones follow."""
        with self._cond:
            feeds = list(self._feeds.values())
        wakes = []
        for feed in feeds:
            hub = feed.subscription.hub
            stats, age = hub.stats(), hub.age(channel(feed.symbol, DEPTH))
            with self._cond:
                if not stats.connected:
                    why = f"stream disconnected: {stats.last_error or 'connecting'}"
                elif age is None or age > self.stale_seconds:
                    why = f"no book for {age or 0:.1f}s"
                else:
                    continue  # a book arrives before a feed turns fresh (``_hand``)
                if feed.fresh:
                    feed.fresh, feed.why = False, why
                    self._say(feed)
                if age is not None:
                    now = self._now_ms()
                    wakes += [self._raise(w, w.watcher.on_age(int(age * 1000)), now) for w in feed.jobs.values()]
        self._emit(wakes)

    def _release_delayed(self) -> None:
        """Send the held-back wakes whose gap has passed."""
        due: list[tuple[str, WakeReason]] = []
        with self._cond:
            now = self._now_ms()
            while self._delayed and self._delayed[0][0] <= now:
                _, name = heapq.heappop(self._delayed)
                watch = self._watches.get(name)
                if watch is None or watch.delayed is None or watch.delayed[0] > now:
                    continue
                reason, watch.delayed = watch.delayed[1], None
                watch.last_pass_ms, watch.last_wake = now, reason
                due.append((name, reason))
        self._emit(due)

    # --- helpers (``_cond`` held where said) ---------------------------------------------------------------------

    def _raise(self, watch: _Watch, reasons: Iterable[WakeReason], now: int) -> tuple[str, WakeReason] | None:
        """(held) The wake ``reasons`` call for now; or None, with the wake held back until the job's ``min_gap``
        has passed (several held-back wakes are one, named by the most urgent reason)."""
        wake = next_pass(now, reasons, watch.last_pass_ms, watch.gap_ms)
        if wake is None:
            return None
        if watch.delayed is not None:
            held_at, held = watch.delayed
            watch.delayed = (held_at, min(held, wake.reason, key=list(WakeReason).index))
            return None
        if wake.at_ms > now:
            watch.delayed = (wake.at_ms, wake.reason)
            heapq.heappush(self._delayed, (wake.at_ms, watch.job.name))
            self._cond.notify()
            return None
        watch.last_pass_ms, watch.last_wake = now, wake.reason
        return watch.job.name, wake.reason

    def _emit(self, wakes: Iterable[tuple[str, WakeReason] | None]) -> None:
        """Call ``wake`` for each wake (outside the lock: the scheduler takes its own)."""
        wake = self._wake
        if wake is None:
            return
        for item in wakes:
            if item is not None:
                wake(*item)

    def _say(self, feed: _Feed) -> None:
        """(held) Tell the change of a symbol's feed: one log line, the metric of each of its jobs."""
        label = stream_label(feed.url)
        for name in feed.jobs:
            self._polling(name, feed)
        if feed.fresh:
            log.info("market data from the stream", extra={"stream": label, "symbol": feed.symbol})
        else:
            extra = {"stream": label, "symbol": feed.symbol, "why": feed.why, "jobs": len(feed.jobs)}
            log.warning("market stream stale: polling on schedule", extra=extra)

    def _polling(self, name: str, feed: _Feed) -> None:
        self.metrics.stream_polling.labels(name).set(0 if feed.fresh else 1)
        if not feed.fresh and feed.why != NO_BOOK:
            self.metrics.stream_fallbacks.labels(name).inc()

    def _drop(self, name: str) -> _Feed | None:
        """(held) Forget the job named ``name``; its feed, if it had one."""
        watch = self._watches.pop(name, None)
        if watch is None:
            return None
        watch.feed.jobs.pop(name, None)
        if not watch.feed.jobs:
            self._feeds.pop((watch.feed.url, watch.feed.symbol), None)
        return watch.feed

    def _url(self, job: Job) -> str:
        """The URL of the job's stream (the embedded sandbox's held while this source lives)."""
        value = job.exchange.stream or ""
        url = self._urls.get(value)
        if url is None:
            try:
                url = self._held.enter_context(self._resolve(job))
            except ValueError as exc:
                raise RebalancerError(f"job {job.name}: exchange.stream: {exc}") from None
            self._urls[value] = url
        return url

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)
