"""``limits.max_blind`` / ``on_blind``: how long a job has gone without a trusted market price, and whether that is
long enough to act on.

Pure: the state store says when the job last saw a price (``Sight``), the pass says whether it sees one now, and
``blindness`` answers. A pass *sees a price* when it observes a reference (``Plan.observed_reference``): the
ticker was read, the book was neither crossed nor empty, another venue's quote (for a job that names one) was
fresh. A pass whose market data cannot be read or that the guards refuse observes none. A price the jump guard
holds back (``limits.max_jump``) is observed all the same: it is the market's, and the next pass trusts it if it
stands; the jump guard itself keeps that pass from placing.

Blindness is counted from the last pass that saw a price or, for a job that never saw one, from its first
recorded pass. It ends by itself on the first pass that sees a price again: unlike ``max_loss`` nothing has to be
resumed. Every time here is the pass's own clock (``wall``), so tests step it instead of waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import Enum

from rebalancer.core.guards import places_anything
from rebalancer.job import Job, OnBlind
from rebalancer.models import format_decimal

BLIND = "blind for "
"""How the plan's blind line starts (a warning of the pass record, which ``rebalancer status`` finds by it)."""


@dataclass(frozen=True, slots=True)
class Sight:
    """What the state store knows of a job's sight of the market, read with the pass's inputs.

    ``seen_at``: the newest recorded pass that observed a price; ``last_pass``: the newest recorded pass of any kind;
    ``first_pass``: the job's first recorded pass (None when the store has none).
    """

    seen_at: datetime | None = None
    last_pass: datetime | None = None
    first_pass: datetime | None = None

    def since(self, now: datetime) -> datetime:
        """Since when the job has gone without a price, were this pass to see none."""
        return self.seen_at or self.first_pass or now

    def was_blind(self, max_blind: Decimal) -> bool:
        """True when the newest recorded pass was already blind: it saw no price, ``max_blind`` after the last."""
        last = self.last_pass
        if last is None or (self.seen_at is not None and last <= self.seen_at):
            return False
        return last - self.since(last) >= _span(max_blind)


@dataclass(frozen=True, slots=True)
class Blind:
    """A job blind for ``seconds`` (whole, rounded down) since ``since``, and what its ``on_blind`` makes of it.

    ``seen``: ``since`` is the last price the job saw (False: it has seen none since its first pass).
    """

    since: datetime
    seconds: int
    max_blind: Decimal
    on_blind: OnBlind
    seen: bool = True

    def sentence(self) -> str:
        """``blind for 45s: no trusted price since 2026-01-05 10:00:00 UTC; orders cancelled (on_blind: cancel)``."""
        when = f"{self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        since = f"since {when}" if self.seen else f"since the job's first pass at {when}"
        if self.on_blind is OnBlind.CANCEL:
            act = "orders cancelled, nothing placed until prices return"
        else:
            act = "orders left as they stand, nothing placed until prices return"
        return f"{BLIND}{self.seconds}s: no trusted price {since}; {act} (on_blind: {self.on_blind})"

    def to_dict(self) -> dict[str, object]:
        """The plan JSON's ``blind``."""
        return {
            "since": self.since.astimezone(UTC).isoformat(timespec="seconds"),
            "seen": self.seen,
            "seconds": self.seconds,
            "max_blind": format_decimal(self.max_blind),
            "on_blind": self.on_blind.value,
        }


class Turn(Enum):
    """How a pass changes a job's blindness: it goes blind, or it sees again."""

    ENTERED = "entered"
    LEFT = "left"


def blindness(job: Job, sight: Sight, sees: bool, now: datetime) -> Blind | None:
    """The job's blindness at ``now`` (None: not blind, or no ``limits.max_blind``); ``sees``: this pass saw a price.

    A job that places nothing (``rebalancer cancel``'s) is never blind: it cancels everything whatever the market.
    """
    max_blind = job.limits.max_blind_seconds
    if max_blind is None or sees or not places_anything(job):
        return None
    since = sight.since(now)
    if now - since < _span(max_blind):
        return None
    seconds = int((now - since).total_seconds())
    return Blind(since, seconds, max_blind, job.limits.on_blind, seen=sight.seen_at is not None)


def turn(job: Job, sight: Sight, blind: Blind | None) -> Turn | None:
    """Whether this pass (blind or not) enters or leaves blindness, against the newest recorded pass; a pass of a
    job that places nothing does neither."""
    max_blind = job.limits.max_blind_seconds
    if max_blind is None or not places_anything(job):
        return None
    was = sight.was_blind(max_blind)
    if blind is not None and not was:
        return Turn.ENTERED
    if blind is None and was:
        return Turn.LEFT
    return None


def _span(seconds: Decimal) -> timedelta:
    return timedelta(seconds=float(seconds))
