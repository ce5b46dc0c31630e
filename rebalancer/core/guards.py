"""Market-data and rejection guards of one pass: when to place nothing, and which levels to hold back.

Pure, like the ladder and the diff: values in, values out; the runner supplies what the state store knows
(the reference the last pass observed, the levels backing off after repeated rejections).

* **Suspect market data pauses placements.** A crossed book, a reference that cannot be read (an empty side,
  no last trade) or a reference that moved more than ``limits.max_jump`` since the last pass: the plan places
  nothing, keeps what stands, and cancels only owned orders outside the band. The band is measured from the
  last *trusted* reference: the previous pass's when the current one is suspect; with none, nothing is
  cancelled. A genuine move is seen again by the next pass, which then compares against it and proceeds, so a
  move pauses exactly one pass. A fixed reference never pauses, and neither does a job with nothing to place
  (``rebalancer cancel`` must work on any book).
* **Held levels are not retried.** A level the state store holds back after repeated rejections loses its
  placement; the order that would have been cancelled to make room for it (the cancel nearest its price on
  its side, unless it is outside the band) stays, so holding a level never leaves a gap the ladder had filled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal

from rebalancer.core import ladder
from rebalancer.core.diff import Diff
from rebalancer.errors import UnsafePlanError
from rebalancer.job import Job, Reference, ReferenceKind
from rebalancer.models import Order, Ticker, format_decimal
from rebalancer.vocab import CancelReason

PAUSED = "placements paused: "
_SHOWN_PERCENT = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Reading:
    """The reference of one pass as the guards judge it.

    ``observed``: what the market says now (None when it cannot be read or the book is crossed): the runner
    records it, so the next pass compares against it. ``trusted``: the reference the plan may hang from and
    measure the band from (None: no reference can be trusted). ``paused``: why placements are paused, or None.
    """

    observed: Decimal | None
    trusted: Decimal | None
    paused: str | None = None


def places_anything(job: Job) -> bool:
    """True when the job declares something to place (a ladder side or a fixed order)."""
    return job.buy is not None or job.sell is not None or bool(job.orders)


def read_reference(job: Job, ticker: Ticker, previous: Decimal | None, problem: str | None = None) -> Reading:
    """Judge this pass's reference against the book and against ``previous`` (the last pass's observation).

    ``ticker`` is the quote the reference is read from (another venue's for a job that names one); ``problem``
    says why that venue (or this one's ticker) gave no usable quote (unreachable, stale, garbled), which pauses
    placements too, even those of a fixed reference: the book they would join is unknown.
    """
    if job.reference.kind is ReferenceKind.FIXED:
        price = ladder.reference_price(job, ticker)
        return Reading(price, price) if problem is None else Reading(None, price, PAUSED + problem)
    fallback = previous if previous is not None and previous > 0 else None
    if problem is not None:
        return Reading(None, fallback, PAUSED + problem)
    if ticker.crossed:
        assert ticker.bid is not None and ticker.ask is not None
        why = f"the book is crossed (bid {format_decimal(ticker.bid)} ≥ ask {format_decimal(ticker.ask)})"
        return Reading(None, fallback, PAUSED + why)
    try:
        price = ladder.reference_price(job, ticker)
    except UnsafePlanError:
        kind = job.reference.kind.value
        why = f"no '{kind}' price to hang the ladder from (bid {_or_none(ticker.bid)}, ask {_or_none(ticker.ask)}, "
        why += f"last {_or_none(ticker.last)})"
        return Reading(None, fallback, PAUSED + why)
    limit = job.limits.max_jump
    if fallback is None or limit is None:
        return Reading(price, price)
    moved = abs(price - fallback)
    if moved <= limit.of(fallback):
        return Reading(price, price)
    if limit.percent:
        share = (moved * 100 / fallback).quantize(_SHOWN_PERCENT, rounding=ROUND_CEILING)
        why = f"reference moved {format_decimal(share)}% since the last pass (limit {limit})"
    else:
        why = f"reference moved {format_decimal(moved)} since the last pass (limit {limit})"
    why += f": {format_decimal(fallback)} → {format_decimal(price)}"
    return Reading(price, fallback, PAUSED + why)


def anchored(job: Job, reference: Decimal) -> Job:
    """The same job hung from a fixed ``reference``: the ladder the last trusted reference implies."""
    return replace(job, reference=Reference(ReferenceKind.FIXED, reference))


def pause(result: Diff) -> tuple[Diff, list[Order]]:
    """A paused diff: no placements, only ``outside_band`` cancels; returns it and the orders left alone."""
    cancel = tuple((o, why) for o, why in result.cancel if why == CancelReason.OUTSIDE_BAND)
    left = [o for o, why in result.cancel if why != CancelReason.OUTSIDE_BAND]
    return Diff(keep=result.keep, cancel=cancel, place=(), pending=result.pending), left


def left_alone_warning(orders: list[Order]) -> str | None:
    """The warning for owned orders a paused plan neither keeps for a level nor cancels."""
    if not orders:
        return None
    ids = ", ".join(o.id for o in orders)
    return f"{len(orders)} owned order(s) left as they stand while placements are paused: {ids}"


def hold(result: Diff, held: Mapping[str, str]) -> tuple[Diff, list[str]]:
    """Drop the placements of held levels and spare the cancel each would have replaced; returns the warnings.

    ``held`` maps a level name to why it is held (``until 10:42:05 after 3 rejections (code 19: ...)``).
    """
    if not held:
        return result, []
    warnings: list[str] = []
    cancel = list(result.cancel)
    keep = list(result.keep)
    place = []
    for target in result.place:
        reason = held.get(target.level)
        if reason is None:
            place.append(target)
            continue
        warnings.append(f"{target.level} held back {reason}")
        spare = [
            (abs(o.price - target.price), o.id, k)
            for k, (o, why) in enumerate(cancel)
            if o.side is target.side and why != CancelReason.OUTSIDE_BAND
        ]
        if spare:
            _, _, k = min(spare)
            order = cancel.pop(k)[0]
            keep.append((order, target))
    return Diff(keep=tuple(keep), cancel=tuple(cancel), place=tuple(place), pending=result.pending), warnings


def _or_none(value: Decimal | None) -> str:
    return "none" if value is None else format_decimal(value)
