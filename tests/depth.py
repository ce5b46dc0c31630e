"""How hard the property tests search: the CI profile by default, a deeper one with ``REBALANCER_LONG=1``.

``examples(n)`` is the number of Hypothesis examples a test asks for: ``n`` in CI, twenty times as many in the long
profile (run by hand, never in ``.ci/run``), a quarter in the quick one that mutation testing uses.
"""

from __future__ import annotations

import os

from hypothesis import settings

LONG = os.environ.get("REBALANCER_LONG", "") not in ("", "0")
QUICK = os.environ.get("REBALANCER_QUICK", "") not in ("", "0")

settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("long", deadline=None, print_blob=True, max_examples=2000)
settings.load_profile("long" if LONG else "ci")


def examples(n: int) -> int:
    """The example budget of a property test that asks for ``n`` in CI (a quarter with ``REBALANCER_QUICK=1``,
    which ``tools/mutation.sh`` sets: a mutant is run against every test that covers it, hundreds of times)."""
    if LONG:
        return n * 20
    return max(n // 4, 10) if QUICK else n
