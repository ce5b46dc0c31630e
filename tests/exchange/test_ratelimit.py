"""The per-key rate limiter, driven by a fake clock (no test ever sleeps for real)."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter, limiter_for


class FakeClock:
    """A clock that only moves when the limiter sleeps (or the test advances it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


READS = RateLimit(10, 1.0)
WRITES = RateLimit(100, 10.0)


def limiter(clock: FakeClock, read: RateLimit = READS, write: RateLimit = WRITES) -> KeyLimiter:
    return KeyLimiter(read, write, clock=clock, sleep=clock.sleep)


def test_requests_within_the_limit_do_not_wait() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    assert [lim.acquire("read") for _ in range(10)] == [0.0] * 10
    assert clock.sleeps == []


def test_the_eleventh_read_waits_for_the_window() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    for _ in range(10):
        lim.acquire("read")
    waited = lim.acquire("read")
    assert waited == 1.0
    assert clock.now == 1001.0


def test_reads_and_writes_have_separate_windows() -> None:
    clock = FakeClock()
    lim = limiter(clock, read=RateLimit(1, 1.0), write=RateLimit(1, 10.0))
    lim.acquire("read")
    assert lim.acquire("write") == 0.0
    assert lim.acquire("write") == 10.0


def test_back_off_holds_every_kind() -> None:
    clock = FakeClock()
    lim = limiter(clock)
    lim.back_off(2.5)
    assert lim.acquire("write") == 2.5
    lim.back_off(1.0)
    lim.back_off(0.5)  # a shorter hold does not shorten the longer one
    assert lim.acquire("read") == 1.0


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 5),
    period=st.sampled_from([0.5, 1.0, 3.0]),
    gaps=st.lists(st.sampled_from([0.0, 0.1, 0.25, 1.0]), min_size=1, max_size=30),
)
def test_no_window_ever_holds_more_than_the_limit(count: int, period: float, gaps: list[float]) -> None:
    clock = FakeClock()
    lim = limiter(clock, read=RateLimit(count, period))
    stamps = []
    for gap in gaps:
        clock.now += gap
        lim.acquire("read")
        stamps.append(clock.now)
    for i, start in enumerate(stamps):
        inside = [s for s in stamps[i:] if s < start + period]
        assert len(inside) <= count


def test_registry_shares_one_limiter_per_key_and_url() -> None:
    profile = ExchangeProfile()
    one = limiter_for("https://a.example/", "key-1", profile)
    assert limiter_for("https://a.example", "key-1", profile) is one
    assert limiter_for("https://a.example", "key-2", profile) is not one
    assert limiter_for("https://b.example", "key-1", profile) is not one


def test_every_limit_given_for_one_key_holds_so_the_stricter_wins() -> None:
    clock = FakeClock()
    lim = limiter(clock, read=RateLimit(10, 1.0))
    assert lim.also(RateLimit(4, 2.0), WRITES) is True
    assert lim.also(RateLimit(4, 2.0), WRITES) is False, "a limit already in force is not added twice"
    assert [lim.acquire("read") for _ in range(4)] == [0.0] * 4
    assert lim.acquire("read") == 2.0, "the fifth read waits for the 4-per-2s window, though 10/1s would allow it"


def test_the_registry_adds_a_second_jobs_stricter_limit_and_says_so(caplog) -> None:
    loose = ExchangeProfile(read_limit=RateLimit(10, 1.0))
    strict = ExchangeProfile(read_limit=RateLimit(2, 1.0))
    shared = limiter_for("https://strict.example", "key-s", loose)
    assert limiter_for("https://strict.example", "key-s", strict) is shared
    assert shared.limits["read"] == (RateLimit(10, 1.0), RateLimit(2, 1.0))
    assert "different rate limits" in caplog.text and "key-s" not in caplog.text
