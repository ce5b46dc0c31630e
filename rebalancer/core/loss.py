"""``limits.max_loss``: what a job lost on its own fills, its open position marked at the most pessimistic price.

Pure. The total is exact: minus (the cash flow of the fills plus the net base position times the mark).
The realised part is the loss on the volume both bought and sold (matched at the average buy and sell prices) and
does not depend on any price; the unrealised part is the rest, the open position marked. ``mark_price`` picks the
mark among every price the pass has (the trusted reference, the reference observed now, this venue's own book):
a long position is marked at the lowest of them and its bid, a short one at the highest and its ask, so a stale or
unreachable reference can never hide a loss the venue's book shows. Figures are losses: positive means money
lost, negative money made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from rebalancer.core.fills import Fill
from rebalancer.models import ZERO, Side, format_decimal, quantize


@dataclass(frozen=True, slots=True)
class Loss:
    """The running loss of a job since ``since`` (None: since its first fill), and its ``limit``."""

    since: datetime | None
    realised: Decimal
    unrealised: Decimal
    limit: Decimal

    @property
    def total(self) -> Decimal:
        """Realised plus unrealised."""
        return self.realised + self.unrealised

    @property
    def tripped(self) -> bool:
        """True when the loss is past the limit."""
        return self.total > self.limit

    def sentence(self, places: int) -> str:
        """``loss 512.30 of limit 500 since 2026-01-05 10:00:00 UTC (realised 12.30, unrealised 500.00)``."""
        since = "its first fill" if self.since is None else f"{self.since.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        return (
            f"loss {_shown(self.total, places)} of limit {format_decimal(self.limit)} since {since} "
            f"(realised {_shown(self.realised, places)}, unrealised {_shown(self.unrealised, places)})"
        )

    def to_dict(self, places: int) -> dict[str, str | None]:
        """The plan JSON's ``loss``: decimals as text at ``places`` (rounded toward the larger loss)."""
        return {
            "since": None if self.since is None else self.since.astimezone(UTC).isoformat(timespec="seconds"),
            "realised": _shown(self.realised, places),
            "unrealised": _shown(self.unrealised, places),
            "total": _shown(self.total, places),
            "limit": format_decimal(self.limit),
        }


def net_base(fills: Sequence[Fill]) -> Decimal:
    """The open position of ``fills``: base bought minus base sold (positive long, negative short)."""
    return sum((f.volume if f.side is Side.BUY else -f.volume for f in fills), ZERO)


def mark_price(
    net: Decimal, references: Sequence[Decimal | None], bid: Decimal | None, ask: Decimal | None
) -> Decimal | None:
    """The price to mark an open position of ``net`` base at: the most pessimistic one available.

    Long: the lowest of the ``references`` and this venue's ``bid`` (what selling it would fetch at best); short:
    the highest of them and the ``ask``. Prices that are None or not positive are not prices. None when there is
    none (a flat position is marked at zero: it has nothing to mark).
    """
    if net == 0:
        return ZERO
    book = bid if net > 0 else ask
    prices = [p for p in (*references, book) if p is not None and p > 0]
    if not prices:
        return None
    return min(prices) if net > 0 else max(prices)


def loss_of(fills: Sequence[Fill], reference: Decimal, limit: Decimal, since: datetime | None) -> Loss:
    """The loss of ``fills``, their open position marked at ``reference`` (see ``mark_price``)."""
    bought = sum((f.volume for f in fills if f.side is Side.BUY), ZERO)
    sold = sum((f.volume for f in fills if f.side is Side.SELL), ZERO)
    paid = sum((f.price * f.volume for f in fills if f.side is Side.BUY), ZERO)
    received = sum((f.price * f.volume for f in fills if f.side is Side.SELL), ZERO)
    total = -((received - paid) + (bought - sold) * reference)
    matched = min(bought, sold)
    realised = ZERO if matched == 0 else _matched_value(paid, bought, matched) - _matched_value(received, sold, matched)
    return Loss(since, realised + ZERO, total - realised, limit)


def _matched_value(value: Decimal, volume: Decimal, matched: Decimal) -> Decimal:
    """The part of a side's ``value`` (paid or received for ``volume``) that its ``matched`` volume carries, at the
    side's average price: exactly ``value`` when the whole side is matched, so a flat book's loss is all realised and
    its unrealised part exactly zero (an average's rounding left 1E-32 there)."""
    return value if matched == volume else value * matched / volume


def _shown(value: Decimal, places: int) -> str:
    shown = quantize(value, places, up=True)
    return format_decimal(abs(shown) if shown == 0 else shown)
