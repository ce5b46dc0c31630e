"""The market stream's wake-ups in a replay, for a job with ``exchange.stream``.

The daemon's stream wake source (``rebalancer.scheduler.streamwake``) hands every streamed book and trade of the
job's symbol to the job's ``core.wake.Watcher`` and turns the reasons it raises into passes, at most one per
``schedule.min_gap`` (``core.wake.Pacer``: a wake inside the gap is held to its end, several held ones being one,
named by the most urgent reason, and a pass answers a held wake raised before it); after every pass the watcher
learns the orders the pass left. ``Follow`` does the same on the replay's clock with the same watcher: the
recording's books (with the account's own orders in them, as the live stream shows them) and prints go to it as they
come, and a book silent for longer than the job's ``exchange.stream_stale`` is reported stale the moment it is
(``market``), where the daemon notices within its next look (``STREAM_CHECK_SECONDS``). While the book is fresh a
pass reads its ticker from the stream (``StreamFed``), so it sends no ticker request, as live.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal

from rebalancer.core.wake import Book, Pacer, Wake, Watcher, most_urgent, prints_of
from rebalancer.engine.runner import PassReport
from rebalancer.job import Job
from rebalancer.models import PriceSource, Ticker
from rebalancer.scheduler.report import standing
from rebalancer.vocab import WakeReason


class Follow:
    """One job's stream wake-ups over the replayed market; see the module doc."""

    def __init__(self, job: Job) -> None:
        stale_ms = int(job.exchange.stream_stale_seconds * 1000)
        self.watcher = Watcher(job, stale_ms)
        self.stale_ms = stale_ms
        self.pacer = Pacer(int(job.schedule.min_gap_seconds * 1000))
        self.asked: Wake | None = None  # a wake given and not yet run (its time, the most urgent reason)
        self.book_ms: int | None = None  # when the last book came
        self.stale_at: int | None = None  # when that book turns stale, if no other comes

    @property
    def due_ms(self) -> int | None:
        """The next moment this needs the replay's attention: a wake to run or release, or the book going stale."""
        moments = [w.at_ms for w in (self.asked, self.pacer.held) if w is not None]
        if self.stale_at is not None:
            moments.append(self.stale_at)
        return min(moments, default=None)

    def on_book(self, market: Ticker, now_ms: int) -> None:
        """A book came at ``now_ms``; ``market`` is its best bid and ask with the account's own orders in it."""
        self.book_ms, self.stale_at = now_ms, now_ms + self.stale_ms + 1
        self._raise(self.watcher.on_book(Book(market.bid, market.ask, now_ms)), now_ms)

    def on_print(self, price: Decimal, now_ms: int) -> None:
        """A trade printed at ``price``."""
        prints = prints_of([(price, now_ms)])
        assert prints is not None
        self._raise(self.watcher.on_prints(prints), now_ms)

    def take(self, now_ms: int) -> WakeReason | None:
        """At ``now_ms``: the book's age told if it just turned stale, a held wake released if its gap has passed;
        the reason of the pass to run now, if any (taken)."""
        if self.stale_at is not None and self.stale_at <= now_ms and self.book_ms is not None:
            self.stale_at = None
            self._raise(self.watcher.on_age(now_ms - self.book_ms), now_ms)
        if (released := self.pacer.release(now_ms)) is not None:
            self._ask(released, now_ms)
        if self.asked is None or self.asked.at_ms > now_ms:
            return None
        reason, self.asked = self.asked.reason, None
        return reason

    def passed(self, now_ms: int, report: PassReport | None) -> None:
        """A pass ended at ``now_ms`` (``report`` None: skipped or failed): the watcher learns the orders it left,
        and what the market did meanwhile may ask for another pass."""
        self.pacer.passed(now_ms, None if report is None else now_ms)  # a replayed pass takes no replayed time
        if report is not None:
            self._raise(self.watcher.learn(report.snapshot, standing(report)), now_ms)

    def ticker(self, market: Ticker, now_ms: int) -> Ticker | None:
        """The job's market as streamed (``market`` at the last book's time), while the book is fresh; else None."""
        if self.book_ms is None or now_ms - self.book_ms > self.stale_ms:
            return None
        return dataclasses.replace(market, time=self.book_ms, source=PriceSource.STREAM)

    def _raise(self, reasons: Iterable[WakeReason], now_ms: int) -> None:
        wake = self.pacer.offer(reasons, now_ms)
        if wake is not None and wake.at_ms <= now_ms:
            self._ask(wake.reason, now_ms)

    def _ask(self, reason: WakeReason, now_ms: int) -> None:
        at = now_ms if self.asked is None else self.asked.at_ms
        self.asked = Wake(at, reason if self.asked is None else most_urgent((self.asked.reason, reason)))
