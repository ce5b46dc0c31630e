"""The cluster's shared rate budget taken in blocks: one transaction for several requests, and still never more than
the key allows in any window, whichever member sends when — on a fresh PostgreSQL database.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rebalancer.cluster.ratelimit import SharedBudget, SharedKeyLimiter
from rebalancer.exchange.profile import RateLimit
from rebalancer.state.cluster import RateTokens
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from rebalancer.vocab import RateKind

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)


def most_in_any_window(sends: list[int], period: int) -> int:
    """The largest number of ``sends`` (epoch ms, as the store counts) inside one window [t, t + period)."""
    ordered = sorted(sends)
    most, first = 0, 0
    for last, at in enumerate(ordered):
        while ordered[first] + period <= at:
            first += 1
        most = max(most, last - first + 1)
    return most


def test_most_in_any_window_counts_half_open_windows() -> None:
    assert most_in_any_window([], 1000) == 0
    assert most_in_any_window([0, 500, 999, 1000], 1000) == 3
    assert most_in_any_window([0, 1000, 2000], 1000) == 1
    assert most_in_any_window([1030, 1263, 1501, 1567, 1753, 2030], 1000) == 5


def test_a_block_takes_half_of_what_is_free_and_counts_its_later_tokens_at_the_end_of_its_hold(
    cluster_url: str,
) -> None:
    with StateStore(cluster_url) as store:

        def take(now: datetime) -> RateTokens:
            return store.take_rate_tokens("k:read", 10, 1.0, most=8, hold_seconds=0.5, now=now)

        assert take(T0) == (5, 0.0, to_ms(T0) + 500), "half of the 10 free; the 4 later ones counted at +0.5 s"
        assert [take(T0)[0] for _ in range(4)] == [2, 1, 1, 1], "half of what is left, at least one"
        assert take(T0 + 100 * MS)[:2] == (0, 0.9), "full: the tokens counted at T0 leave the window at +1 s"
        # At +1 s the five tokens counted at T0 left; the five counted at +0.5 s stay until +1.5 s.
        assert take(T0 + 1000 * MS)[0] == 2
        assert take(T0 + 1400 * MS)[0] == 1, "7 of 10 still counted: 3 free, a block of one"
        assert take(T0 + 1500 * MS)[0] == 3, "the +0.5 s tokens left: 2 + 1 counted (+1 s, +1.4 s), 7 free"


def test_tokens_a_member_never_sent_go_back_with_its_next_block(cluster_url: str) -> None:
    with StateStore(cluster_url) as store:
        first = store.take_rate_tokens("k:read", 10, 1.0, most=8, hold_seconds=0.5, now=T0)
        assert first.taken == 5
        again = store.take_rate_tokens(
            "k:read", 10, 1.0, most=8, hold_seconds=0.5, give_back=(first.until_ms, 4), now=T0 + 600 * MS
        )
        assert again.taken == 4, "4 unsent returned: 1 counted, 9 free, half taken"
        other = store.take_rate_tokens("k:read", 10, 1.0, most=1, hold_seconds=0.5, now=T0 + 600 * MS)
        assert other.taken == 1


LIMIT = RateLimit(10, 1.0)
# Member 0 takes a block at 0 and spends it at 0.49 s, the others take singles, and at 1 s the block's first token
# leaves the window: counted at the hold's end, the late tokens keep the others waiting until 1.5 s.
LATE_BLOCK = [(0, 0), (0, 490), (0, 0), (0, 0), (0, 0), (1, 0), (1, 0)] + [(2, 0)] * 4 + [(2, 510), (2, 0), (1, 0)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=2),
            st.one_of(st.integers(min_value=0, max_value=300), st.sampled_from([0, 0, 490, 500, 510, 1000])),
        ),
        min_size=1,
        max_size=80,
    )
)
@example(steps=LATE_BLOCK)
def test_members_taking_blocks_never_exceed_the_rate_in_any_window(
    cluster_url: str, steps: list[tuple[int, int]]
) -> None:
    """Three members on one key, each asking for a token when it is its turn, on one simulated clock: whatever the
    order and the pauses, the requests sent (a token in hand) never exceed the limit in any window of its period."""
    clock = [T0]
    bucket = f"{uuid.uuid4().hex}:read"
    stores = [StateStore(cluster_url) for _ in range(3)]
    try:
        budgets = [SharedBudget(store, clock=lambda: clock[0]) for store in stores]
        sends: list[int] = []
        for member, pause_ms in steps:
            clock[0] += pause_ms * MS
            if budgets[member].take(bucket, LIMIT) == 0.0:
                sends.append(to_ms(clock[0]) - to_ms(T0))
        assert most_in_any_window(sends, int(LIMIT.period * 1000)) <= LIMIT.count, sorted(sends)
    finally:
        for store in stores:
            store.close()


def test_members_hammering_one_key_never_exceed_its_rate(cluster_url: str) -> None:
    """Three members (each its own connection and budget), four threads each, requesting as fast as they may for a
    few seconds: the requests let through never exceed the key's limit in any window (less a scheduling margin:
    the time is taken when the request would leave, after the token)."""
    limit = RateLimit(6, 1.0)
    members = [StateStore(cluster_url) for _ in range(3)]
    sends: list[int] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + 3.0

    def hammer(limiter: SharedKeyLimiter) -> None:
        while time.monotonic() < stop_at:
            limiter.acquire(RateKind.READ)
            with lock:
                sends.append(time.time_ns() // 1_000_000)

    try:
        threads = []
        for store in members:
            budget = SharedBudget(store)
            for _ in range(4):
                limiter = SharedKeyLimiter(budget, "hammered", limit, limit)
                threads.append(threading.Thread(target=hammer, args=(limiter,)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for store in members:
            store.close()
    assert len(sends) >= limit.count, "the members sent something"
    assert most_in_any_window(sends, 900) <= limit.count
