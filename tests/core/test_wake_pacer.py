"""``core.wake.Pacer``: one job's ``min_gap`` — which raised wakes run now, which wait, and what a pass answers."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from rebalancer.core.wake import Pacer, Wake, most_urgent
from rebalancer.vocab import WakeReason

REFERENCE, TRADE, MARKET, TIMER = WakeReason.REFERENCE, WakeReason.TRADE, WakeReason.MARKET, WakeReason.TIMER


def test_the_first_wake_runs_at_once_and_one_inside_the_gap_waits_for_its_end() -> None:
    pacer = Pacer(1000)
    assert pacer.offer({REFERENCE}, 0) == Wake(0, REFERENCE)
    assert pacer.offer({TRADE}, 300) == Wake(1000, TRADE)  # newly held: release it at 1000
    assert pacer.offer({REFERENCE}, 400) is None  # merged into the held one
    assert pacer.release(999) is None
    assert pacer.release(1000) is TRADE  # named by the most urgent of those merged
    assert pacer.release(1000) is None


def test_nothing_raised_is_no_wake() -> None:
    assert Pacer(1000).offer((), 0) is None


def test_a_pass_answers_a_held_wake_raised_before_it_started() -> None:
    pacer = Pacer(1000)
    pacer.offer({REFERENCE}, 0)
    pacer.offer({TRADE}, 200)  # held until 1000
    pacer.passed(500, started_ms=300)  # e.g. the timer's pass: it read the market after the trade
    assert pacer.held is None and pacer.release(2000) is None


def test_a_held_wake_raised_while_the_pass_ran_stays() -> None:
    pacer = Pacer(1000)
    pacer.offer({REFERENCE}, 0)
    pacer.offer({TRADE}, 400)
    pacer.passed(500, started_ms=300)  # the pass may have read the market before the trade
    assert pacer.release(1500) is TRADE


def test_a_skipped_or_failed_pass_answers_nothing_but_restarts_the_gap() -> None:
    pacer = Pacer(1000)
    pacer.offer({REFERENCE}, 0)
    pacer.offer({TRADE}, 200)
    pacer.passed(500, started_ms=None)
    assert pacer.held == Wake(1000, TRADE)
    assert pacer.offer({MARKET}, 1200) is None  # merged: still one pass
    assert pacer.release(1200) is MARKET


@given(
    st.lists(st.tuples(st.integers(0, 50), st.sampled_from(list(WakeReason))), min_size=1, max_size=60),
    st.integers(0, 2000),
)
def test_passes_asked_are_never_closer_than_the_gap(steps: list[tuple[int, WakeReason]], gap: int) -> None:
    pacer, now, asked = Pacer(gap), 0, []
    for step, reason in steps:
        now += step
        if pacer.release(now) is not None:
            asked.append(now)
        wake = pacer.offer({reason}, now)
        if wake is not None and wake.at_ms <= now:
            asked.append(now)
    assert all(later - earlier >= gap for earlier, later in itertools.pairwise(asked))


def test_most_urgent_follows_the_vocabulary_order() -> None:
    assert most_urgent((TIMER, REFERENCE, TRADE)) is TRADE
    assert most_urgent((TIMER, MARKET)) is MARKET
