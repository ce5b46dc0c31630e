"""A job's exchange whose ticker comes from the market stream while the stream is fresh.

A pass of a job with ``exchange.stream`` reads its bid and ask from the streamed book and its last price from the
streamed trades (``Ticker.source`` is ``stream``), so that a pass woken by the stream sends no ticker request; it
reads the open orders, the balances and everything else over REST as always (this API family has no private
stream). When the stream is down, its book silent past the bound, or it lacks a price the job's reference needs,
the ticker is read over REST as before (``source`` ``rest``).

With a ``Witness`` (the daemon's and the cluster member's stream source give one per job), it also remembers when
each of the job's orders was last listed by an open-orders read and when the job's own batch cancelled it, so that
a pass can skip the ``order_info`` of an order the stream proves could not have filled (``saw_no_fill``,
``core.witness``). One in ``audit_every`` of those reads is made anyway; one that shows a fill the stream missed
distrusts the witness of every job on that stream URL (``StreamTrust``) until the process ends, and says so once.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rebalancer.core.fills import Seen
from rebalancer.core.witness import AUDIT_EVERY, KEEP_MS, Sighting, TapeView, audited, caught, why_read
from rebalancer.exchange import Exchange
from rebalancer.job import Job, ReferenceKind
from rebalancer.models import Balances, BatchAnswer, FundingNeed, Order, SymbolRules, Target, Ticker

FreshTicker = Callable[[], "Ticker | None"]
"""The job's symbol as streamed now, or None when the stream is not fresh."""
Opener = Callable[[Job], contextlib.AbstractContextManager[Exchange]]
TapeOf = Callable[[int, int], "TapeView | None"]
"""The record of the job's symbol from ``since_ms`` to ``now_ms``; None when the job's stream keeps none."""
CLEAN, MISSED = "clean", "missed_fill"
SKIPPED = "skipped"
"""What a witness counts: an audited read by its result, or a read saved."""
"""The results of an audited read: the stream told the truth, or it missed a fill."""

log = logging.getLogger(__name__)


@dataclass(eq=False)
class StreamTrust:
    """Whether the witnesses of one stream URL may still vouch: not once an audited read caught the stream missing
    a fill, until the process ends (shared by every job on the stream; ``stream``: its URL as logs show it)."""

    stream: str = ""
    distrusted: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def distrust(self) -> bool:
        """Distrust the stream from now on; True the first time (so that it is said once)."""
        with self._lock:
            first, self.distrusted = not self.distrusted, True
            return first


@dataclass(eq=False)
class Witness:
    """What one job's stream-fed passes remember of its orders across passes, and the stream's record to ask.

    ``seen``: per order id, the deal volume and time (ms) of the last open-orders read that listed it (the time the
    read was sent); ``cancelled``: per order id, when the job's own batch that cancelled it was answered. Both go
    with the process: an order the job cancelled before a restart is always read. ``saved``: the reads it could
    have saved, one in ``audit_every`` of them made anyway (``auditing``: per order id, the deal volume last seen);
    ``audits``: the audited reads by result (``CLEAN``, ``MISSED``). ``told`` hears each count as it is made
    (``SKIPPED``, ``CLEAN`` or ``MISSED``): the daemon's metrics.
    """

    tape: TapeOf
    stale_ms: int
    clock: Callable[[], float] = time.time
    job: str = ""
    trust: StreamTrust = field(default_factory=StreamTrust)
    audit_every: int = AUDIT_EVERY
    seen: dict[str, tuple[Decimal, int]] = field(default_factory=dict)
    cancelled: dict[str, int] = field(default_factory=dict)
    auditing: dict[str, Decimal] = field(default_factory=dict)
    skipped: int = 0
    saved: int = 0
    audits: dict[str, int] = field(default_factory=lambda: {CLEAN: 0, MISSED: 0})
    told: Callable[[str], None] = lambda counted: None

    def listed(self, orders: Sequence[Order], at_ms: int) -> None:
        """An open-orders read sent at ``at_ms`` listed ``orders``; what the stream no longer keeps is forgotten."""
        for order in orders:
            self.seen[order.id] = (order.deal_volume, at_ms)
        horizon = at_ms - KEEP_MS
        for order_id in [i for i, (_, at) in self.seen.items() if at < horizon]:
            del self.seen[order_id]
        for order_id in [i for i, at in self.cancelled.items() if at < horizon]:
            del self.cancelled[order_id]
        for order_id in [i for i in self.auditing if i not in self.seen]:
            del self.auditing[order_id]

    def cancelled_now(self, order_ids: Sequence[str]) -> None:
        """The job's own batch that cancelled ``order_ids`` ended now."""
        self.cancelled.update(dict.fromkeys(order_ids, self.now_ms()))

    def saw_no_fill(self, seen: Seen) -> bool:
        """True when the stream proves ``seen`` (a watched order that left the book) could not have filled since it
        was last listed (``core.witness.why_read``): its ``order_info`` need not be read. Counted in ``skipped``.
        False for one in ``audit_every`` of them all the same (``core.witness.audited``): that read is an audit,
        checked by ``read_back``."""
        last = self.seen.get(seen.order_id)
        if last is None or seen.order_id in self.auditing:
            return False
        now_ms = self.now_ms()
        sighting = Sighting(
            seen.side, seen.price, seen.deal_volume, last[0], last[1], self.cancelled.get(seen.order_id)
        )
        tape = self.tape(last[1], now_ms)
        if why_read(sighting, tape, now_ms, self.stale_ms, distrusted=self.trust.distrusted) is not None:
            return False
        self.saved += 1
        if audited(self.saved, self.audit_every):
            self.auditing[seen.order_id] = last[0]
            return False
        del self.seen[seen.order_id]
        self.cancelled.pop(seen.order_id, None)
        self.skipped += 1
        self.told(SKIPPED)
        return True

    def read_back(self, order: Order) -> None:
        """An ``order_info`` read answered ``order``: when it was an audit and shows a fill the stream missed
        (``core.witness.caught``), the stream is distrusted from now on and a warning says so once."""
        seen_volume = self.auditing.pop(order.id, None)
        if seen_volume is None:
            return
        missed = caught(seen_volume, order.deal_volume)
        result = MISSED if missed else CLEAN
        self.audits[result] += 1
        self.told(result)
        if missed and self.trust.distrust():
            log.warning(
                "market stream distrusted: an audited order_info found a fill its trades did not show; every order"
                " of its jobs is read from now on",
                extra={
                    "stream": self.trust.stream,
                    "job": self.job,
                    "order": order.id,
                    "seen_deal_volume": str(seen_volume),
                    "deal_volume": str(order.deal_volume),
                },
            )

    def now_ms(self) -> int:
        """The witness's clock in ms (the stream's receive times are on the same clock)."""
        return int(self.clock() * 1000)


def stream_fed(
    opener: Opener, fresh: Callable[[str], Ticker | None], witness: Callable[[str], Witness | None] | None = None
) -> Opener:
    """``opener`` with the exchange of each job that has a stream wrapped in ``StreamFed``, its ticker asked of
    ``fresh(job name)`` first, its orders remembered by ``witness(job name)`` when given."""

    @contextlib.contextmanager
    def open_fed(job: Job) -> Iterator[Exchange]:
        with opener(job) as exchange:
            if job.exchange.stream is None:
                yield exchange
            else:
                told = None if witness is None else functools.partial(witness, job.name)
                yield StreamFed(exchange, job, lambda: fresh(job.name), told)

    return open_fed


class StreamFed:
    """``exchange`` with ``ticker`` for the job's symbol taken from ``fresh`` when it answers (see the module doc)."""

    def __init__(
        self, exchange: Exchange, job: Job, fresh: FreshTicker, witness: Callable[[], Witness | None] | None = None
    ) -> None:
        self.exchange = exchange
        self._symbol = job.symbol
        self._needs_last = job.reference.kind is ReferenceKind.LAST
        self._fresh = fresh
        self._witness = witness

    def saw_no_fill(self, seen: Seen) -> bool:
        """Whether the job's stream proves that ``seen``, which left the book, could not have filled since it was
        last listed (``Witness.saw_no_fill``); always False without a witness."""
        witness = self._told()
        return witness is not None and witness.saw_no_fill(seen)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.exchange, name)  # what a client offers beside the protocol (base_url, ...)

    def ticker(self, symbol: str) -> Ticker:
        """The streamed ticker of the job's symbol when fresh and complete enough for the job, else a REST read."""
        if symbol == self._symbol:
            streamed = self._fresh()
            if streamed is not None and not (self._needs_last and streamed.last is None):
                return streamed
        return self.exchange.ticker(symbol)

    def _told(self) -> Witness | None:
        """The job's witness now (a job joins its stream after its exchange is opened); None without one."""
        return None if self._witness is None else self._witness()

    def rules(self, symbol: str) -> SymbolRules:
        """The exchange's ``rules``."""
        return self.exchange.rules(symbol)

    def balances(self, need: FundingNeed | None = None) -> Balances:
        """The exchange's ``balances``."""
        return self.exchange.balances(need)

    def forget_balances(self) -> None:
        """The exchange's ``forget_balances``."""
        self.exchange.forget_balances()

    def open_orders(self, symbol: str) -> tuple[Order, ...]:
        """The exchange's ``open_orders``: always over REST. The witness notes what it listed, as of when it was
        asked."""
        witness = self._told() if symbol.lower() == self._symbol.lower() else None
        asked_ms = None if witness is None else witness.now_ms()
        orders = self.exchange.open_orders(symbol)
        if witness is not None and asked_ms is not None:
            witness.listed(orders, asked_ms)
        return orders

    def order_info(self, symbol: str, order_id: str) -> Order:
        """The exchange's ``order_info``. The witness checks what it answered when the read was an audit."""
        order = self.exchange.order_info(symbol, order_id)
        witness = self._told() if symbol.lower() == self._symbol.lower() else None
        if witness is not None:
            witness.read_back(order)
        return order

    def replace(self, rules: SymbolRules, cancel_ids: Sequence[str], place: Sequence[Target]) -> BatchAnswer:
        """The exchange's ``replace``. The witness notes the orders cancelled, as of when the batch ended (answered
        or failed: the cancel may have been done either way)."""
        try:
            return self.exchange.replace(rules, cancel_ids, place)
        finally:
            witness = self._told() if rules.symbol.lower() == self._symbol.lower() else None
            if witness is not None:
                witness.cancelled_now(cancel_ids)

    def cancel_all(self, symbol: str) -> None:
        """The exchange's ``cancel_all``."""
        self.exchange.cancel_all(symbol)

    def close(self) -> None:
        """The exchange's ``close``."""
        self.exchange.close()
