"""The market stream as a wake source: jobs with ``exchange.stream`` run a pass when their market moves.

One ``StreamHub`` per stream URL per process (``rebalancer.stream.client``; ``stream: sandbox`` is the embedded
sandbox's own) follows each watched symbol's book and trades. The hub's thread only drops them in an ``Inbox``
(``scheduler.streaminbox``: the newest book, the trades folded), so the socket never waits for the work they cause;
this source's own thread hands them to the ``Watcher`` of every job on that symbol (jobs are indexed by URL and
symbol) and turns the reasons raised into ``wake(name, reason)`` calls, at most one pass per ``min_gap``
(``core.wake.Pacer``: a wake inside the gap is delayed to its end, several coalescing into one, and a pass answers
one raised before it started).

Every ``STREAM_CHECK_SECONDS`` it looks at each symbol's book: silent past a job's own ``exchange.stream_stale``
or the connection down, that job falls back to polling on its schedule (its ticker is read over REST), which is
said once per change (a log line for the jobs that changed together, ``rebalancer_stream_polling``, the status
pages) and raised as ``market`` so the guards can act; when a book comes back it follows the stream again. After
every pass the scheduler tells the source what the pass left (``learn``).

Each job has a ``Witness`` (``engine.streamfed``) over its symbol's tape (``stream.tape``), so that its passes skip
the ``order_info`` of an order they cancelled that the stream proves could not have filled
(counted in ``rebalancer_order_info_skipped_total``); the witnesses of one stream URL share its ``StreamTrust``,
lost for the process once an audited read catches the stream missing a fill
(``rebalancer_order_info_audits_total``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from rebalancer.core.wake import Book, Pacer, Watcher
from rebalancer.defaults import STREAM_CHECK_SECONDS
from rebalancer.engine.connect import stream_url
from rebalancer.engine.runner import PassReport
from rebalancer.engine.streamfed import SKIPPED, Opener, StreamTrust, Witness, stream_fed
from rebalancer.errors import RebalancerError
from rebalancer.job import Job
from rebalancer.models import Ticker
from rebalancer.scheduler.metrics import Metrics, stream_label
from rebalancer.scheduler.report import standing
from rebalancer.scheduler.streaminbox import Arrived, Inbox, Key
from rebalancer.stream.client import StreamHub, StreamStats, Subscription, subscribe
from rebalancer.stream.frames import DEPTH, channel
from rebalancer.vocab import WakeReason

log = logging.getLogger("rebalancer.stream")

Wake = Callable[[str, WakeReason], None]
Resolver = Callable[[Job], contextlib.AbstractContextManager[str]]


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
    pacer: Pacer
    witness: Witness
    learnt: int = 0
    fresh: bool = False  # its market data comes from the stream (else it polls, for ``why``)
    why: str = "no book yet"
    stale_seconds: float = field(init=False)  # the book silent this long, the job polls (``exchange.stream_stale``)

    def __post_init__(self) -> None:
        self.stale_seconds = float(self.job.exchange.stream_stale_seconds)


@dataclass(eq=False)
class _Feed:
    """One symbol of one stream: its subscription, its jobs, and what arrived since the source last looked."""

    url: str
    symbol: str
    subscription: Subscription
    jobs: dict[str, _Watch] = field(default_factory=dict)
    latest: Book | None = None  # the newest book and last price handed on (a job added later starts from them)
    last: Decimal | None = None


class StreamWakes:
    """The stream wake source (``scheduler.plugs.WakeSource``) of one process; see the module doc."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        resolve: Resolver = stream_url,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metrics = metrics
        self._resolve = resolve
        self._clock = clock
        self._lock = threading.RLock()  # the jobs, their feeds and watchers
        self._watches: dict[str, _Watch] = {}
        self._feeds: dict[Key, _Feed] = {}
        self._inbox = Inbox(clock)  # what the hubs' threads hand over, and the held-back wakes
        self._urls: dict[str, str] = {}  # a job's ``stream`` value → the URL it resolved to
        self._hubs: dict[str, StreamHub] = {}  # the hub of each URL whose connection changes are told here
        self._trusts: dict[str, StreamTrust] = {}  # per URL: may its witnesses vouch (``engine.streamfed``)
        self._held = contextlib.ExitStack()  # the embedded sandbox, while a job follows its stream
        self._wake: Wake | None = None
        self._thread: threading.Thread | None = None
        metrics.follow_streams(self.stats)

    def add(self, job: Job) -> None:
        """Follow ``job``'s symbol on its stream (a job without one is ignored); replaces an older version. A stream
        that cannot be had (the sandbox serving none) is logged, and the job polls."""
        if job.exchange.stream is None:
            self.remove(job.name)
            return
        try:
            url = self._url(job)
        except RebalancerError as exc:
            log.error("market stream not followed: the job polls", extra={"job": job.name, "error": str(exc)})
            self.remove(job.name)
            return
        key = (url, job.symbol.lower())
        with self._lock:
            feed = self._feeds.get(key)
        if feed is None:
            insecure = job.exchange.insecure
            subscription = subscribe(url, job.symbol, lambda frame: self._inbox.frame(key, frame), insecure=insecure)
            with self._lock:
                feed = self._feeds.setdefault(key, _Feed(url, key[1], subscription))
                hub, told = subscription.hub, self._hubs.get(url)
                self._hubs[url] = hub
            if feed.subscription is not subscription:
                subscription.close()
            if told is not hub:
                hub.on_connection(lambda connected: None if connected else self._inbox.lost(url))
                hub.on_garbage(lambda: self._inbox.garbage(url))
        pacer = Pacer(int(job.schedule.min_gap_seconds * 1000))
        stale_ms = int(job.exchange.stream_stale_seconds * 1000)
        tape = self._inbox.tape(key)
        with self._lock:
            trust = self._trusts.setdefault(url, StreamTrust(stream_label(url)))  # kept while the process runs
        witness = Witness(tape.view, stale_ms, self._clock, job=job.name, trust=trust, told=self._teller(job.name))
        watch = _Watch(job, Watcher(job, stale_ms), feed, pacer, witness)
        hub = feed.subscription.hub
        age = hub.age(channel(feed.symbol, DEPTH)) if hub.stats().connected else None
        with self._lock:
            watch.watcher.book, watch.watcher.last = feed.latest, feed.last
            # A job joining a symbol already followed follows the stream at once if the book is young enough for it.
            if feed.latest is not None and age is not None:
                watch.fresh = age <= watch.stale_seconds
                watch.why = "" if watch.fresh else f"no book for {age:.1f}s"
            old = self._drop(job.name)  # an older version of the job: its feed stays if it is this one
            self._feeds.setdefault(key, feed)
            self._watches[job.name] = feed.jobs[job.name] = watch
        if old is not None and old is not feed and not old.jobs:
            self._close(old)
        self._polling(watch)

    def remove(self, name: str) -> None:
        """Stop following the job named ``name``; the symbol's subscription ends with its last job."""
        with self._lock:
            feed = self._drop(name)
        if feed is not None and not feed.jobs:
            self._close(feed)
        for metric in (self.metrics.stream_polling, self.metrics.stream_fallbacks, self.metrics.order_info_skipped):
            with contextlib.suppress(KeyError):
                metric.remove(name)

    def start(self, wake: Wake) -> None:
        """Start calling ``wake`` from this source's thread."""
        self._wake = wake
        self._thread = threading.Thread(target=self._run, name="rebalancer-stream-wakes", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop calling it; every subscription closed."""
        self._inbox.close()
        with self._lock:
            feeds = list(self._feeds.values())
            self._feeds.clear()
            self._watches.clear()
        for feed in feeds:
            self._close(feed)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._held.close()

    def feeding(self, opener: Opener) -> Opener:
        """``opener`` with each stream job's ticker taken from this source while its stream is fresh, and its
        orders remembered by its witness."""
        return stream_fed(opener, self.ticker, self.witness)

    def witness(self, name: str) -> Witness | None:
        """The job's witness of no fill (``engine.streamfed.Witness``); None for a job not on the stream."""
        with self._lock:
            watch = self._watches.get(name)
            return None if watch is None else watch.witness

    def learn(self, name: str, report: PassReport | None) -> None:
        """A pass of ``name`` ended (``report`` None: skipped or failed): the watcher learns the orders it left,
        and what the market did meanwhile may wake the job again at once."""
        with self._lock:
            watch = self._watches.get(name)
            if watch is None:
                return
            now = self._now_ms()
            watch.pacer.passed(now, None if report is None else now - report.duration_ms)
            if report is None:
                return
            watch.learnt += 1
            wake = self._raise(watch, watch.watcher.learn(report.snapshot, standing(report)), now)
        self._emit([wake])

    def _teller(self, name: str) -> Callable[[str], None]:
        """What job ``name``'s witness tells as it counts: a saved read or an audit's result, into the metrics."""

        def tell(counted: str) -> None:
            if name not in self._watches:  # removed meanwhile: its series are gone and stay gone
                return
            if counted == SKIPPED:
                self.metrics.order_info_skipped.labels(name).inc()
            else:
                self.metrics.order_info_audits.labels(name, counted).inc()

        return tell

    def ticker(self, name: str) -> Ticker | None:
        """The job's market as streamed, while its stream is fresh; None when it polls."""
        with self._lock:
            watch = self._watches.get(name)
            if watch is None or not watch.fresh:
                return None
            return watch.watcher.ticker()

    def state(self, name: str) -> FeedState | None:
        """Where the job's market data comes from now; None for a job without a stream."""
        with self._lock:
            watch = self._watches.get(name)
            if watch is None:
                return None
            source, why = ("stream", "") if watch.fresh else ("polling", watch.why)
            return FeedState(source, why, stream_label(watch.feed.url), watch.learnt)

    def stats(self) -> list[StreamStats]:
        """Each followed stream's counters (one hub per URL)."""
        with self._lock:
            hubs = {feed.url: feed.subscription.hub for feed in self._feeds.values()}
        return [hub.stats() for hub in hubs.values()]

    def _disconnected(self, urls: set[str]) -> None:
        """The connections to ``urls`` were lost: their jobs poll at once; they follow the stream again when a book
        arrives."""
        with self._lock:
            for feed in self._feeds.values():
                if feed.url in urls:
                    self._turn(feed, [w for w in feed.jobs.values() if w.fresh], "stream disconnected")

    def _run(self) -> None:
        while not self._inbox.closed:
            try:
                self._serve()
            except Exception:  # a bug here must not end every job's wake-ups: say it, go on after a breath
                log.exception("stream wake-ups failed; going on")
                self._inbox.pause(STREAM_CHECK_SECONDS)

    def _serve(self) -> None:
        next_check = 0.0
        while (taken := self._inbox.take(max(0.0, next_check - time.monotonic()))) is not None:
            if taken.lost:
                self._disconnected(taken.lost)
            for key, arrived in taken.arrived.items():
                self._hand(key, arrived)
            self._release_delayed(taken.due)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + STREAM_CHECK_SECONDS
                self._check()

    def _hand(self, key: Key, arrived: Arrived) -> None:
        """Give what arrived for a symbol to each of its jobs' watchers."""
        book, prints = arrived.book, arrived.prints
        label = stream_label(key[0])
        for lag in arrived.lag_ms:
            self.metrics.stream_lag.labels(label).observe(max(0, lag) / 1000)
        wakes = []
        with self._lock:
            feed = self._feeds.get(key)
            if feed is None:
                return
            now = self._now_ms()
            feed.latest = book or feed.latest
            feed.last = prints.last if prints is not None else feed.last
            if book is not None:
                self._turn(feed, [w for w in feed.jobs.values() if not w.fresh], "")
            for watch in list(feed.jobs.values()):
                reasons = watch.watcher.on_book(book) if book is not None else frozenset()
                if prints is not None:
                    reasons |= watch.watcher.on_prints(prints)
                wakes.append(self._raise(watch, reasons, now))
        self._emit(wakes)

    def _check(self) -> None:
        """Each followed book's age: stale ones fall back to polling (and raise ``market``), fresh ones follow."""
        with self._lock:
            feeds = list(self._feeds.values())
        wakes = []
        for feed in feeds:
            hub = feed.subscription.hub
            stats, age = hub.stats(), hub.age(channel(feed.symbol, DEPTH))
            with self._lock:
                watches = list(feed.jobs.values())
                if not stats.connected:
                    why = f"stream disconnected: {stats.last_error or 'connecting'}"
                else:  # each job by its own bound; a book arrives before a job turns fresh (``_hand``)
                    why = f"no book for {age or 0:.1f}s"
                    watches = [w for w in watches if age is None or age > w.stale_seconds]
                self._turn(feed, [w for w in watches if w.fresh], why)
                if age is not None:
                    now = self._now_ms()
                    wakes += [self._raise(w, w.watcher.on_age(int(age * 1000)), now) for w in feed.jobs.values()]
        self._emit(wakes)

    def _release_delayed(self, names: list[str]) -> None:
        """Send the held-back wakes of ``names`` whose gap has passed."""
        due: list[tuple[str, WakeReason]] = []
        now = self._now_ms()
        with self._lock:
            for name in names:
                watch = self._watches.get(name)
                reason = None if watch is None else watch.pacer.release(now)
                if reason is not None:
                    due.append((name, reason))
        self._emit(due)

    def _raise(self, watch: _Watch, reasons: Iterable[WakeReason], now: int) -> tuple[str, WakeReason] | None:
        """(held) The wake ``reasons`` call for now; or None, with the wake held back until the job's ``min_gap``
        has passed (``core.wake.Pacer``)."""
        wake = watch.pacer.offer(reasons, now)
        if wake is None:
            return None
        if wake.at_ms > now:
            self._inbox.delay(wake.at_ms, watch.job.name)
            return None
        return watch.job.name, wake.reason

    def _emit(self, wakes: Iterable[tuple[str, WakeReason] | None]) -> None:
        """Call ``wake`` for each wake (outside the lock: the scheduler takes its own)."""
        wake = self._wake
        if wake is None:
            return
        for item in wakes:
            if item is not None:
                wake(*item)

    def _turn(self, feed: _Feed, watches: list[_Watch], why: str) -> None:
        """(held) ``watches`` of a symbol's feed change over together: to the stream (``why`` empty) or to polling
        for ``why``. Told once: one log line, the metrics of each job."""
        if not watches:
            return
        fresh = not why
        for watch in watches:
            watch.fresh, watch.why = fresh, why
            self._polling(watch)
            if not fresh:
                self.metrics.stream_fallbacks.labels(watch.job.name).inc()
        extra: dict[str, object] = {"stream": stream_label(feed.url), "symbol": feed.symbol, "jobs": len(watches)}
        if fresh:
            log.info("market data from the stream", extra=extra)
        else:
            log.warning("market stream stale: polling on schedule", extra={**extra, "why": why})

    def _polling(self, watch: _Watch) -> None:
        self.metrics.stream_polling.labels(watch.job.name).set(0 if watch.fresh else 1)

    def _drop(self, name: str) -> _Feed | None:
        """(held) Forget the job named ``name``; its feed, if it had one."""
        watch = self._watches.pop(name, None)
        if watch is None:
            return None
        watch.feed.jobs.pop(name, None)
        if not watch.feed.jobs:
            self._feeds.pop((watch.feed.url, watch.feed.symbol), None)
        return watch.feed

    def _close(self, feed: _Feed) -> None:
        """End a feed no job follows any more: its subscription and its tape."""
        feed.subscription.close()
        self._inbox.drop_tape((feed.url, feed.symbol))

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
