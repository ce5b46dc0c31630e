"""``engine.streamfed.Witness``: what a job remembers of its orders, and when it lets the stream vouch for one."""

from __future__ import annotations

from decimal import Decimal

from rebalancer.core.fills import Seen
from rebalancer.core.witness import KEEP_MS, SETTLE_MS, TapeView
from rebalancer.engine.streamfed import CLEAN, MISSED, StreamTrust, Witness
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


def _vouchable(witness: Witness, clock: Clock, order_id: str) -> Seen:
    """An order ``order_id`` listed unfilled and cancelled by the job, settled: one the witness may vouch for."""
    witness.listed([Order(order_id, Side.BUY, D("100"), D("1"), D("0.25"))], clock.ms)
    witness.cancelled_now([order_id])
    clock.ms += SETTLE_MS
    return Seen(order_id, Side.BUY, D("100"), D("0.25"), volume=D("1"))


def test_one_in_n_of_the_reads_it_would_save_is_made_and_a_clean_one_changes_nothing() -> None:
    witness, clock, _ = _witness()
    witness.audit_every = 3
    vouched = [witness.saw_no_fill(_vouchable(witness, clock, str(i))) for i in range(1, 7)]
    assert vouched == [True, True, False, True, True, False] and witness.skipped == 4
    assert set(witness.auditing) == {"3", "6"}
    assert not witness.saw_no_fill(Seen("3", Side.BUY, D("100"), D("0.25"), volume=D("1"))), "read until answered"
    witness.read_back(Order("3", Side.BUY, D("100"), D("1"), D("0.25")))
    assert witness.audits == {CLEAN: 1, MISSED: 0} and not witness.trust.distrusted


def test_an_audit_that_finds_a_fill_distrusts_every_witness_of_the_stream() -> None:
    trust = StreamTrust("ws://stream")
    witness, clock, _ = _witness()
    other, other_clock, _ = _witness()
    witness.trust = other.trust = trust
    witness.audit_every = 1
    assert not witness.saw_no_fill(_vouchable(witness, clock, "1"))
    witness.read_back(Order("1", Side.BUY, D("100"), D("1"), D("0.5")))  # filled further than the stream said
    assert witness.audits == {CLEAN: 0, MISSED: 1} and trust.distrusted
    assert not other.saw_no_fill(_vouchable(other, other_clock, "2")), "the other job on the stream reads too"
    assert other.saved == 0 and other.skipped == 0
    witness.read_back(Order("9", Side.BUY, D("100"), D("1"), D("1")))  # not an audit: nothing counted
    assert witness.audits[MISSED] == 1
