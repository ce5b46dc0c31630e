"""``engine.streamfed.Witness``: what a job remembers of its orders, and when it lets the stream vouch for one."""

from __future__ import annotations

from decimal import Decimal

from rebalancer.core.fills import Seen
from rebalancer.core.witness import KEEP_MS, SETTLE_MS, TapeView
from rebalancer.engine.streamfed import Witness
from rebalancer.models import Order, Side

D = Decimal
BUY = Order("7", Side.BUY, D("100"), D("1"), D("0.25"))
WHOLE = TapeView(True)
WATCHED = Seen("7", Side.BUY, D("100"), D("0.25"), volume=D("1"))


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> float:
        return self.ms / 1000


def _witness(tape: TapeView | None = WHOLE) -> tuple[Witness, Clock, list[tuple[int, int]]]:
    asked: list[tuple[int, int]] = []

    def view(since_ms: int, now_ms: int) -> TapeView | None:
        asked.append((since_ms, now_ms))
        return tape

    clock = Clock()
    return Witness(view, 5_000, clock), clock, asked


def test_an_order_listed_then_cancelled_is_vouched_for_once_over_the_window_since_its_listing() -> None:
    witness, clock, asked = _witness()
    witness.listed([BUY], 999_000)
    witness.cancelled_now(["7"])
    clock.ms += SETTLE_MS
    assert witness.saw_no_fill(WATCHED) and witness.skipped == 1
    assert asked == [(999_000, clock.ms)]
    assert not witness.saw_no_fill(WATCHED), "forgotten once vouched for"


def test_no_memory_another_deal_volume_or_no_cancel_of_ours_means_a_read() -> None:
    witness, clock, _ = _witness()
    witness.cancelled_now(["7"])
    clock.ms += SETTLE_MS
    assert not witness.saw_no_fill(WATCHED), "never listed (after a restart, say)"
    witness.listed([Order("7", Side.BUY, D("100"), D("1"), D("0.5"))], clock.ms - SETTLE_MS)
    assert not witness.saw_no_fill(WATCHED), "listed with more filled than the job holds"
    other, clock, _ = _witness()
    other.listed([BUY], clock.ms)
    clock.ms += SETTLE_MS
    assert not other.saw_no_fill(WATCHED), "not cancelled by the job"
    assert witness.skipped == other.skipped == 0


def test_a_stream_without_a_record_means_a_read_and_old_memories_go() -> None:
    witness, clock, _ = _witness(tape=None)
    witness.listed([BUY], clock.ms)
    witness.cancelled_now(["7"])
    clock.ms += SETTLE_MS
    assert not witness.saw_no_fill(WATCHED)
    witness.listed([], clock.ms + KEEP_MS + 1)
    assert witness.seen == {} and witness.cancelled == {}
