"""A plain number where a percentage is usual (``first: "0.6"``) is legal; the plan says what it means when the
distance is that small (``rebalancer.core.plain_numbers``)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.plain_numbers import plain_number_warnings, significant
from rebalancer.core.plan import compute_plan
from rebalancer.defaults import PLAIN_DISTANCE_WARN_PERCENT
from rebalancer.job import Limits, Spacing, Tolerance
from tests.core.kit import D, ab, job, pct, side_ladder, snapshot
from tests.depth import examples

REF = D("30000")


@pytest.mark.parametrize(
    ("given_job", "expected"),
    [
        (
            job(buy=side_ladder(first=ab("0.6"))),
            [
                'ladder.buy.first: "0.6" means 0.6 quote units (0.002 % of the reference 30000); write "0.6%" for a '
                "percentage"
            ],
        ),
        (job(buy=side_ladder(first=pct("0.6"))), []),  # a percentage says what it means
        (job(sell=side_ladder(first=ab("15"))), []),  # exactly 0.05 %: not below the threshold
        (
            job(sell=side_ladder(first=ab("14.99"))),
            [
                'ladder.sell.first: "14.99" means 14.99 quote units (0.05 % of the reference 30000); '
                'write "14.99%" for a percentage'
            ],
        ),
        (job(sell=side_ladder(first=ab("0"))), []),  # on the reference: nothing a % would change
        (
            job(buy=side_ladder(step=ab("0.25"))),
            [
                'ladder.buy.step: "0.25" means 0.25 quote units (0.00083 % of the reference 30000); write "0.25%" for '
                "a percentage"
            ],
        ),
        (job(buy=side_ladder(step=pct("1"), spacing=Spacing.GEOMETRIC)), []),
        (
            job(buy=side_ladder(), tolerance=Tolerance(price=ab("0.1"))),
            [
                'tolerance.price: "0.1" means 0.1 quote units (0.00033 % of the reference 30000); write "0.1%" for a '
                "percentage"
            ],
        ),
        (job(buy=side_ladder(), tolerance=Tolerance(size=ab("0.001"))), []),  # a volume, not a distance
        (
            job(buy=side_ladder(), limits=Limits(band=ab("10"), max_jump=ab("5"))),
            [
                'limits.band: "10" means 10 quote units (0.033 % of the reference 30000); write "10%" for a percentage',
                'limits.max_jump: "5" means 5 quote units (0.017 % of the reference 30000); write "5%" for a '
                "percentage",
            ],
        ),
        (job(buy=side_ladder(), limits=Limits(band=ab("900"), max_jump=None)), []),
    ],
)
def test_small_plain_distances_are_said(given_job, expected) -> None:
    assert plain_number_warnings(given_job, REF) == expected


def test_no_reference_no_warning() -> None:
    assert plain_number_warnings(job(buy=side_ladder(first=ab("0.6"))), D(0)) == []


@given(
    value=st.decimals(min_value=D("0.0001"), max_value=D("100000"), places=4),
    reference=st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2),
)
@settings(max_examples=examples(200), deadline=None)
def test_warned_exactly_when_the_distance_is_below_the_threshold(value: Decimal, reference: Decimal) -> None:
    warnings = plain_number_warnings(job(buy=side_ladder(first=ab(str(value)))), reference)
    assert bool(warnings) == (value / reference < PLAIN_DISTANCE_WARN_PERCENT / 100)
    assert all(w.startswith("ladder.buy.first:") for w in warnings)


@pytest.mark.parametrize(
    ("value", "shown"),
    [("0.0020039", "0.002"), ("0.00083333", "0.00083"), ("0.05", "0.05"), ("12.34", "12"), ("0", "0"), ("250", "250")],
)
def test_significant_digits(value: str, shown: str) -> None:
    assert significant(D(value)) == shown


def test_the_warning_is_in_the_plan() -> None:
    plan = compute_plan(job(buy=side_ladder(first=ab("0.6"))), snapshot(), None)
    assert any(w.startswith('ladder.buy.first: "0.6" means 0.6 quote units') for w in plan.warnings)
