"""Whether the market stream proves that an order the job cancelled could not have filled. Pure: values in, values
out.

A watched order that left the book is looked up with ``order_info`` to learn the fills between the last look and its
end. For an order the job itself cancelled, the public trade stream can stand in for that read: if the stream was
whole from the moment the order was last seen with its deal volume until now, and no trade printed at or through its
price (a BUY at P: a trade at P or lower; a SELL at P: at P or higher, whatever the taker's side), nothing can have
filled it. Any doubt sends the read: an order we did not cancel (it most likely filled), a record that does not
cover the whole window (subscribed, reconnected or garbage received since), a silence longer than the job's
staleness bound, a frame that arrived later than ``SETTLE_MS`` after its own time, or a cancel answered less than
``SETTLE_MS`` ago (a trade printed just before it may still be on its way).

A server that stops pushing one symbol's trades while the connection and its depth frames stay alive looks like a
quiet market. So one in every ``AUDIT_EVERY`` reads the witness would save is made anyway (``audited``); when such a
read shows a deal volume above the one last seen (``caught``), the stream missed a fill, and the witness of that
stream never vouches again in the process (``why_read`` with ``distrusted``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from rebalancer.models import Side

SETTLE_MS = 1000
"""How long after our cancel was answered the stream must have run on, and the most a frame may lag its own time,
for the stream's silence to count: a trade printed before the cancel has arrived by then."""

SILENCE_FLOOR_MS = 100
"""Shorter gaps between frames are not recorded; a job whose staleness bound is shorter is always read."""
KEEP_MS = 15 * 60 * 1000
"""How far back the stream's record goes: an order last seen before that is always read."""
AUDIT_EVERY = 10
"""One in this many of the reads the witness would save is made anyway, to check that the stream told the truth."""


@dataclass(frozen=True, slots=True)
class TapeView:
    """What the stream's record of one symbol says about the window from ``since_ms`` to ``now_ms`` (receive times).

    ``covered``: the record is whole over the window (subscribed and acknowledged before it, no reconnect, no
    garbage frame, nothing pruned); ``prices``: the trades received in it; ``longest_silence_ms``: the longest time
    in it without a frame of the symbol, the time since the last one included; ``lagging``: a frame in it arrived
    more than ``SETTLE_MS`` after its own time.
    """

    covered: bool
    prices: Sequence[Decimal] = ()
    longest_silence_ms: int = 0
    lagging: bool = False


@dataclass(frozen=True, slots=True)
class Sighting:
    """What the job knows of one order it watched: side and price, the deal volume the store holds for it, the
    deal volume and time it was last seen with (an open-orders read that listed it), and when our own cancel of it
    was answered (None: we did not cancel it)."""

    side: Side
    price: Decimal
    deal_volume: Decimal
    seen_deal_volume: Decimal
    seen_ms: int
    cancelled_ms: int | None


def why_read(
    order: Sighting, tape: TapeView | None, now_ms: int, stale_ms: int, *, distrusted: bool = False
) -> str | None:
    """Why the order's ``order_info`` must be read; None when the stream proves it could not have filled since it
    was last seen (then it is forgotten with the deal volume last seen, and the read is saved). A ``distrusted``
    stream (one caught missing a fill) proves nothing."""
    if distrusted:
        return "the stream was caught missing a fill"
    if order.cancelled_ms is None:
        return "not cancelled by the job"
    if order.seen_deal_volume != order.deal_volume:
        return "last seen with another deal volume than the one watched"
    if order.cancelled_ms < order.seen_ms:
        return "listed after our cancel"
    if now_ms < order.cancelled_ms + SETTLE_MS:
        return "cancelled too recently"
    if tape is None or not tape.covered:
        return "the stream's record does not cover the window"
    if tape.longest_silence_ms > stale_ms or stale_ms < SILENCE_FLOOR_MS:
        return "the stream was silent too long"
    if tape.lagging:
        return "the stream lagged"
    if any(reaches(order.side, order.price, price) for price in tape.prices):
        return "a trade printed at or through its price"
    return None


def reaches(side: Side, price: Decimal, traded: Decimal) -> bool:
    """Whether a trade at ``traded`` is at or through a ``side`` order's ``price`` (so that it could have filled)."""
    return traded <= price if side is Side.BUY else traded >= price


def audited(saved: int, every: int) -> bool:
    """Whether the ``saved``-th read (counted from 1) the witness would save is made anyway: exactly one in ``every``
    (every one when ``every`` is 1 or less), deterministic so that a test and an operator can count on it."""
    return every <= 1 or saved % every == 0


def caught(seen_deal_volume: Decimal, read_deal_volume: Decimal) -> bool:
    """Whether an audited read shows a fill the stream said was impossible: a deal volume above the one last seen."""
    return read_deal_volume > seen_deal_volume
