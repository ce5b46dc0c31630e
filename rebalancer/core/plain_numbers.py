"""Plain numbers where a percentage is usual: ``first: "0.6"`` is legal and means 0.6 quote units from the
reference, not 0.6 %. When such an absolute distance is smaller than ``PLAIN_DISTANCE_WARN_PERCENT`` of the
reference, the plan says what it means, so a forgotten ``%`` is seen before the ladder stands on the touch.

The keys looked at are the distances a percentage usually expresses: each side's ``first`` and linear ``step``,
``tolerance.price``, ``limits.band`` and ``limits.max_jump``.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from rebalancer.defaults import PLAIN_DISTANCE_WARN_PERCENT
from rebalancer.job import Amount, Job, Spacing
from rebalancer.models import Side, format_decimal


def plain_number_warnings(job: Job, reference: Decimal) -> list[str]:
    """One warning per plain-number distance of ``job`` below the threshold at ``reference`` (none without a
    reference), e.g. ``ladder.buy.first: "0.6" means 0.6 quote units (0.002 % of the reference 29941.07); write
    "0.6%" for a percentage``."""
    if reference <= 0:
        return []
    warnings = []
    for key, amount in _distances(job):
        if amount is None or amount.percent or amount.value <= 0:
            continue
        share = amount.value * 100 / reference
        if share < PLAIN_DISTANCE_WARN_PERCENT:
            value = format_decimal(amount.value)
            warnings.append(
                f'{key}: "{value}" means {value} quote units ({significant(share)} % of the reference '
                f'{format_decimal(reference)}); write "{value}%" for a percentage'
            )
    return warnings


def _distances(job: Job) -> Iterator[tuple[str, Amount | None]]:
    for side in (Side.BUY, Side.SELL):
        spec = job.side(side)
        if spec is not None:
            name = side.value.lower()
            yield f"ladder.{name}.first", spec.first
            if spec.spacing is Spacing.LINEAR:
                yield f"ladder.{name}.step", spec.step
    yield "tolerance.price", job.tolerance.price
    yield "limits.band", job.limits.band
    yield "limits.max_jump", job.limits.max_jump


def significant(value: Decimal, digits: int = 2) -> str:
    """``value`` to ``digits`` significant digits, without trailing zeros or an exponent: 0.0020039 → ``0.002``."""
    if value == 0:
        return "0"
    rounded = value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1))
    return format(rounded.normalize(), "f")
