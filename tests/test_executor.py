"""The executor against a scripted in-memory exchange: the gate at its entry, the fence, lost and refused batches,
answers that settle a batch, the read-back, and how every sent order's outcome is decided.

The sandbox tests cover the same code over HTTP; these tables pin each branch fast (they are the mutation set of
``rebalancer/engine/executor.py``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from rebalancer.core.gate import Book, Checkpoint
from rebalancer.core.plan import Action, Plan, order_action
from rebalancer.engine import executor, readback
from rebalancer.engine.executor import LATE, OrderOutcome, execute
from rebalancer.errors import (
    AuthError,
    LeaseLost,
    OutcomeUnknown,
    RateLimited,
    RejectedError,
    TransientError,
    UnsafePlanError,
)
from rebalancer.job import Limits
from rebalancer.models import (
    BatchAnswer,
    BatchRequest,
    Order,
    OrderStatus,
    ResultGroup,
    Side,
    SymbolRules,
    Target,
)
from rebalancer.vocab import ActionKind, CancelReason, OutcomeStatus
from tests.core.kit import RULES, D, job, side_ladder

B, S = Side.BUY, Side.SELL
P, C = ActionKind.PLACE, ActionKind.CANCEL
PLACED, CANCELLED, REJECTED, UNKNOWN = (
    OutcomeStatus.PLACED,
    OutcomeStatus.CANCELLED,
    OutcomeStatus.REJECTED,
    OutcomeStatus.UNKNOWN,
)
JOB = job(buy=side_ladder(levels=5), sell=side_ladder(levels=5), limits=Limits(post_only=False, max_jump=None))
OK = "0"


def o(oid: str, side: Side, price: str, volume: str = "0.0100", **kw: object) -> Order:
    return Order(oid, side, D(price), D(volume), **kw)  # type: ignore[arg-type]


def place(level: str, side: Side, price: str, volume: str = "0.0100") -> Action:
    return Action(P, side, D(price), D(volume), level=level)


def cancel(order: Order) -> Action:
    return Action(C, order.side, order.price, order.volume, order_id=order.id, reason=CancelReason.NOT_IN_LADDER)


def plan_of(*actions: Action) -> Plan:
    PLANNED[:] = [a for a in actions if a.action is not ActionKind.KEEP]
    return Plan("test-job", "btcusdt", D(30000), None, None, "sha256:x", order_action(actions))


def gate_of(book: Sequence[Order], owned: frozenset[str] | None = None) -> Checkpoint:
    return Checkpoint(JOB, Book(RULES, tuple(book), owned, None, None, None))


def group(*ids: str, code: str = OK, message: str = "ok") -> ResultGroup:
    return ResultGroup(code, message, tuple(ids))


@dataclass
class Scripted:
    """An exchange whose every answer is scripted: ``writes`` (answers or errors, one per batch, each optionally
    with orders it adds to the book and ids it removes), ``reads`` (books or errors) and ``infos`` (order_info)."""

    writes: list[object] = field(default_factory=list)
    reads: list[object] = field(default_factory=list)
    infos: dict[str, object] = field(default_factory=dict)
    sent: list[tuple[tuple[str, ...], tuple[Target, ...]]] = field(default_factory=list)
    read_count: int = 0
    asked: list[str] = field(default_factory=list)

    def replace(self, rules: SymbolRules, cancel_ids: Sequence[str], place: Sequence[Target]) -> BatchAnswer:
        assert rules is RULES
        self.sent.append((tuple(cancel_ids), tuple(place)))
        outcome = self.writes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, BatchAnswer)
        return outcome

    def open_orders(self, symbol: str) -> tuple[Order, ...]:
        assert symbol == "btcusdt"
        self.read_count += 1
        outcome = self.reads.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return tuple(outcome)  # type: ignore[arg-type]

    def order_info(self, symbol: str, order_id: str) -> Order:
        assert symbol == "btcusdt"
        self.asked.append(order_id)
        outcome = self.infos.get(order_id, AuthError("no such order"))
        if isinstance(outcome, Exception):
            raise outcome
        assert isinstance(outcome, Order)
        return outcome


def run(
    exchange: Scripted,
    plan: Plan,
    book: Sequence[Order] = (),
    *,
    limit: int = 1000,
    fence: Callable[[], None] | None = None,
    hook: list[tuple[int, BatchRequest | None, BatchAnswer | None, str | None]] | None = None,
    sleeps: list[float] | None = None,
    owned: frozenset[str] | None = None,
) -> executor.Execution:
    def on_batch(i: int, request: BatchRequest | None, answer: BatchAnswer | None, error: str | None) -> None:
        if hook is not None:
            hook.append((i, request, answer, error))

    return execute(
        exchange,  # type: ignore[arg-type]
        RULES,
        plan,
        book,
        gate=gate_of(book, owned),
        on_batch=on_batch,
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        batch_limit=limit,
        fence=fence,
    )


def shape(execution: executor.Execution) -> list[tuple[object, ...]]:
    """Each outcome as (action, status, order id, level, code, message); side, price and volume are checked
    against the plan's action of the same order or level."""
    by_key = {a.order_id or a.level: a for a in PLANNED}
    for x in execution.outcomes:
        a = by_key[x.order_id if x.action is C else x.level]
        assert (x.side, x.price, x.volume) == (a.side, a.price, a.volume), (x, a)
    return [(x.action.value, x.status.value, x.order_id, x.level, x.code, x.message) for x in execution.outcomes]


PLANNED: list[Action] = []


OLD = o("1", B, "29000.00")
BUY0 = place("buy[0]", B, "29850.00")
SELL0 = place("sell[0]", S, "30150.00")


# --- the gate at the entry ----------------------------------------------------------------------------------------


def test_a_plan_the_gate_refuses_sends_nothing_and_names_each_problem() -> None:
    exchange = Scripted()
    bad = plan_of(place("buy[9]", B, "29850.00"), place("buy[0]", S, "30150.00"), BUY0)
    with pytest.raises(UnsafePlanError) as caught:
        run(exchange, bad)
    assert str(caught.value) == (
        "refused by the pre-trade gate: buy[9] BUY 29850.00 × 0.0100: not a level the job declares (level); "
        "buy[0] SELL 30150.00 × 0.0100: the level is a buy level (side)"
    )
    assert exchange.sent == [] and exchange.read_count == 0


def test_a_cancel_of_an_order_the_job_does_not_own_sends_nothing() -> None:
    exchange = Scripted()
    with pytest.raises(UnsafePlanError, match="not an order this job owns"):
        run(exchange, plan_of(cancel(OLD)), [OLD], owned=frozenset())
    assert exchange.sent == []


# --- answers that settle the batch ---------------------------------------------------------------------------------


def test_an_answer_that_names_every_order_settles_without_a_read_back() -> None:
    exchange = Scripted(writes=[BatchAnswer(place=(group("11", "12"),), cancel=(group("1"),))])
    hook: list[tuple[int, BatchRequest | None, BatchAnswer | None, str | None]] = []
    execution = run(exchange, plan_of(cancel(OLD), BUY0, SELL0), [OLD], hook=hook)
    assert execution.confirmed and execution.error is None and exchange.read_count == 0
    assert shape(execution) == [
        ("cancel", "cancelled", "1", None, None, None),
        ("place", "placed", "11", "buy[0]", None, None),
        ("place", "placed", "12", "sell[0]", None, None),
    ]
    assert exchange.sent == [(("1",), (executor_target(BUY0), executor_target(SELL0)))]
    assert [(i, a is not None, e) for i, _, a, e in hook] == [(0, True, None)]
    assert execution.count(PLACED) == 2 and execution.count(CANCELLED, C) == 1 and execution.count(PLACED, C) == 0
    assert execution.rejected == () and execution.book_after == () and not execution.fenced


def executor_target(action: Action) -> Target:
    assert action.level is not None
    return Target(action.level, action.side, action.price, action.volume)


@pytest.mark.parametrize(
    "answer",
    [
        BatchAnswer(place=(group("11", code="5"),), cancel=(group("1"),)),  # a failed group
        BatchAnswer(place=(group("11"),), cancel=(group("1", code="8"),)),
        BatchAnswer(place=(group("11"),), cancel=()),  # the cancel is not named
        BatchAnswer(place=(group("11", "12"),), cancel=(group("1"),)),  # more ids than placements
        BatchAnswer(place=(), cancel=(group("1"),)),  # fewer
        BatchAnswer(place=(group("1"),), cancel=(group("1"),)),  # the cancelled id given as the new one
        BatchAnswer(place=(group("7"),), cancel=(group("1"),)),  # an id that was on the book before
        BatchAnswer(place=(group("11"),), cancel=(group("1", "99"),)),  # a cancel id that was not asked for
    ],
    ids=["place failed", "cancel failed", "cancel unnamed", "extra id", "no id", "old id", "known id", "odd cancel"],
)
def test_an_answer_that_leaves_anything_open_is_read_back(answer: BatchAnswer) -> None:
    seven = o("7", S, "31000.00")
    new = o("11", B, "29850.00")
    exchange = Scripted(writes=[answer], reads=[[seven, new]])
    execution = run(exchange, plan_of(cancel(OLD), BUY0), [OLD, seven])
    assert exchange.read_count == 1
    assert execution.confirmed
    assert shape(execution)[1] == ("place", "placed", "11", "buy[0]", None, None)


def test_duplicate_new_ids_are_not_settled() -> None:
    exchange = Scripted(
        writes=[BatchAnswer(place=(group("11", "11"),))],
        reads=[[o("11", B, "29850.00"), o("12", S, "30150.00")]],
    )
    execution = run(exchange, plan_of(BUY0, SELL0))
    assert exchange.read_count == 1
    assert [x.order_id for x in execution.outcomes] == ["11", "12"]


def test_a_cancel_id_answered_under_placements_still_settles() -> None:
    exchange = Scripted(writes=[BatchAnswer(place=(group("1", "11"),), cancel=())])
    execution = run(exchange, plan_of(cancel(OLD), BUY0), [OLD])
    assert exchange.read_count == 0
    assert shape(execution) == [
        ("cancel", "cancelled", "1", None, None, None),
        ("place", "placed", "11", "buy[0]", None, None),
    ]


def test_batches_follow_the_batch_limit_and_each_answer_settles_its_own() -> None:
    two = o("2", S, "31000.00")
    writes = [BatchAnswer(cancel=(group("1"),)), BatchAnswer(place=(group("11"),), cancel=(group("2"),))]
    exchange = Scripted(writes=list(writes))
    execution = run(exchange, plan_of(cancel(OLD), cancel(two), BUY0), [OLD, two], limit=1)
    assert [c for c, _ in exchange.sent] == [("1",), ("2",)]
    assert [len(p) for _, p in exchange.sent] == [0, 1]
    assert execution.confirmed and exchange.read_count == 0
    assert execution.answers == tuple(writes)
    assert [x.order_id for x in execution.outcomes] == ["1", "2", "11"]


def test_one_answer_missing_of_two_is_not_settled() -> None:
    assert executor.from_answers(plan_of(BUY0), [], [BatchAnswer()], []) is None


# --- the fence -----------------------------------------------------------------------------------------------------


def test_a_fence_that_refuses_before_anything_is_sent_raises() -> None:
    exchange = Scripted()

    def fence() -> None:
        raise LeaseLost("lease gone")

    with pytest.raises(LeaseLost):
        run(exchange, plan_of(BUY0), fence=fence)
    assert exchange.sent == []


def test_a_fence_that_refuses_a_later_batch_stops_and_reads_back_what_was_sent() -> None:
    two = o("2", S, "31000.00")
    calls: list[int] = []

    def fence() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise LeaseLost("lease gone")

    exchange = Scripted(writes=[BatchAnswer(cancel=(group("1"),))], reads=[[two]])
    execution = run(exchange, plan_of(cancel(OLD), cancel(two)), [OLD, two], limit=1, fence=fence)
    assert execution.fenced and execution.error == "batch 2 not sent: lease gone"
    assert len(exchange.sent) == 1 and exchange.read_count == 1
    assert shape(execution) == [("cancel", "cancelled", "1", None, None, None)]
    assert execution.confirmed


# --- lost answers, refusals, failures ------------------------------------------------------------------------------


def test_a_lost_answer_stops_sending_and_what_is_not_seen_stays_unknown() -> None:
    lost = OutcomeUnknown("timed out", may_land_late=True)
    lost.request = BatchRequest("btcusdt", mass_cancel='["1"]')
    exchange = Scripted(writes=[lost], reads=[[OLD]])
    hook: list[tuple[int, BatchRequest | None, BatchAnswer | None, str | None]] = []
    execution = run(exchange, plan_of(cancel(OLD), BUY0, SELL0), [OLD], hook=hook)
    assert execution.error == "answer lost, reading the book back: timed out"
    assert execution.may_land_late and not execution.confirmed
    assert shape(execution) == [
        ("cancel", "unknown", "1", None, None, LATE),
        ("place", "unknown", None, "buy[0]", None, LATE),
        ("place", "unknown", None, "sell[0]", None, LATE),
    ]
    assert hook == [(0, lost.request, None, "timed out")]


def test_a_lost_answer_whose_writes_show_on_the_book_is_settled_and_not_late() -> None:
    exchange = Scripted(
        writes=[OutcomeUnknown("gone", may_land_late=True)],
        reads=[[o("11", B, "29850.00")]],
    )
    execution = run(exchange, plan_of(cancel(OLD), BUY0), [OLD])
    assert execution.confirmed and not execution.may_land_late
    assert shape(execution) == [
        ("cancel", "cancelled", "1", None, None, None),
        ("place", "placed", "11", "buy[0]", None, None),
    ]


def test_a_lost_answer_without_late_landing_says_so() -> None:
    exchange = Scripted(writes=[OutcomeUnknown("500")], reads=[[]])
    execution = run(exchange, plan_of(BUY0))
    assert not execution.may_land_late and not execution.confirmed


def test_a_refused_batch_is_reported_against_both_kinds_and_sending_goes_on() -> None:
    two = o("2", S, "31000.00")
    refused = RejectedError("balance too low", code="3")
    exchange = Scripted(
        writes=[refused, BatchAnswer(place=(group("11"),))],
        reads=[[OLD, o("11", B, "29850.00")]],
    )
    hook: list[tuple[int, BatchRequest | None, BatchAnswer | None, str | None]] = []
    execution = run(exchange, plan_of(cancel(OLD), cancel(two), BUY0), [OLD, two], limit=1, hook=hook)
    assert len(exchange.sent) == 2
    assert shape(execution) == [
        ("cancel", "rejected", "1", None, "3", str(refused)),
        ("cancel", "cancelled", "2", None, None, None),
        ("place", "placed", "11", "buy[0]", None, None),
    ]
    assert [(i, a is None, e) for i, _, a, e in hook] == [(0, True, str(refused)), (1, False, None)]
    assert execution.error is None and execution.confirmed
    assert execution.rejected == (execution.outcomes[0],)


def test_a_refusal_without_a_code_is_filed_as_unknown_code() -> None:
    exchange = Scripted(writes=[RejectedError("no")], reads=[[]])
    execution = run(exchange, plan_of(BUY0))
    assert shape(execution) == [("place", "rejected", None, "buy[0]", "?", "no")]


def test_a_failure_before_anything_is_sent_raises_and_is_recorded() -> None:
    failure = TransientError("502")
    exchange = Scripted(writes=[failure])
    hook: list[tuple[int, BatchRequest | None, BatchAnswer | None, str | None]] = []
    with pytest.raises(TransientError):
        run(exchange, plan_of(BUY0), hook=hook)
    assert hook == [(0, None, None, "502")]


def test_a_failure_after_a_batch_was_sent_stops_and_reads_back() -> None:
    two = o("2", S, "31000.00")
    exchange = Scripted(writes=[BatchAnswer(cancel=(group("1"),)), AuthError("denied")], reads=[[two]])
    execution = run(exchange, plan_of(cancel(OLD), cancel(two)), [OLD, two], limit=1)
    assert execution.error == "batch 2 not sent: denied" and not execution.fenced
    assert shape(execution) == [("cancel", "cancelled", "1", None, None, None)]
    assert len(exchange.sent) == 2 and exchange.read_count == 1


def test_a_recording_hook_that_fails_never_stops_the_pass() -> None:
    exchange = Scripted(writes=[BatchAnswer(place=(group("11"),))])

    def broken(*_: object) -> None:
        raise RuntimeError("disk full")

    execution = execute(exchange, RULES, plan_of(BUY0), (), gate=gate_of(()), on_batch=broken)  # type: ignore[arg-type]
    assert execution.confirmed


def test_the_default_batch_limit_is_the_exchanges_1000() -> None:
    places = [place(f"buy[{i}]", B, "29000.00") for i in range(5)]
    exchange = Scripted(writes=[BatchAnswer(place=(group(*[str(10 + i) for i in range(5)]),))])
    many = job(buy=side_ladder(levels=5), limits=Limits(post_only=False, max_jump=None))
    execution = execute(
        exchange,  # type: ignore[arg-type]
        RULES,
        plan_of(*places),
        (),
        gate=Checkpoint(many, Book(RULES, (), None, None, None, None)),
    )
    assert len(exchange.sent) == 1 and execution.confirmed


# --- the read-back -------------------------------------------------------------------------------------------------


def test_an_unreadable_book_leaves_every_sent_order_unknown() -> None:
    exchange = Scripted(writes=[OutcomeUnknown("lost")], reads=[AuthError("denied")])
    execution = run(exchange, plan_of(cancel(OLD), BUY0), [OLD])
    reason = "book could not be read back: denied"
    assert execution.error == f"answer lost, reading the book back: lost; {reason}"
    assert shape(execution) == [
        ("cancel", "unknown", "1", None, None, reason),
        ("place", "unknown", None, "buy[0]", None, reason),
    ]
    assert not execution.confirmed and not execution.fenced


def test_an_unreadable_book_after_an_unsettled_answer_says_only_that() -> None:
    exchange = Scripted(writes=[BatchAnswer(place=(group(code="5"),))], reads=[AuthError("denied")])
    execution = run(exchange, plan_of(BUY0))
    assert execution.error == "book could not be read back: denied"
    assert execution.answers != ()


def test_the_read_back_retries_transient_failures_with_growing_capped_pauses() -> None:
    sleeps: list[float] = []
    exchange = Scripted(reads=[TransientError("a"), OutcomeUnknown("b"), RateLimited("c", retry_after=60), [OLD]])
    assert executor.read_back(exchange, "btcusdt", sleep=sleeps.append) == (OLD,)  # type: ignore[arg-type]
    assert sleeps == [0.25, 0.5, 5.0]


def test_the_read_back_gives_up_after_four_attempts_and_never_retries_other_errors() -> None:
    sleeps: list[float] = []
    exchange = Scripted(reads=[TransientError("a")] * 4)
    with pytest.raises(TransientError):
        executor.read_back(exchange, "btcusdt", sleep=sleeps.append)  # type: ignore[arg-type]
    assert sleeps == [0.25, 0.5, 1.0] and exchange.read_count == 4
    auth = Scripted(reads=[AuthError("x"), [OLD]])
    with pytest.raises(AuthError):
        executor.read_back(auth, "btcusdt", sleep=sleeps.append)  # type: ignore[arg-type]
    rate = Scripted(reads=[RateLimited("slow"), RateLimited("slow", retry_after=0.1), [OLD]])
    pauses: list[float] = []
    executor.read_back(rate, "btcusdt", sleep=pauses.append)  # type: ignore[arg-type]
    assert pauses == [0.25, 0.1]


# --- deciding outcomes from the book -------------------------------------------------------------------------------


def unsettled(*groups: ResultGroup, cancel_groups: tuple[ResultGroup, ...] = ()) -> BatchAnswer:
    """An answer that does not settle its batch (a failed group), so the book decides."""
    return BatchAnswer(place=(*groups, group(code="99", message="x")), cancel=cancel_groups)


def test_a_cancel_still_open_is_rejected_with_the_failure_that_names_it() -> None:
    two = o("2", B, "29100.00")
    answer = BatchAnswer(
        place=(group(code="8", message="first"),),  # a cancel's code with no ids: filed with the cancels
        cancel=(group("2", code="22", message="already gone"),),
    )
    exchange = Scripted(writes=[answer], reads=[[OLD, two]])
    execution = run(exchange, plan_of(cancel(OLD), cancel(two)), [OLD, two])
    assert shape(execution) == [
        ("cancel", "rejected", "2", None, "22", "already gone"),
        ("cancel", "rejected", "1", None, "8", "first"),
    ]


def test_a_cancel_still_open_without_any_failure_is_still_on_the_book() -> None:
    exchange = Scripted(writes=[BatchAnswer(place=(), cancel=())], reads=[[OLD]])
    execution = run(exchange, plan_of(cancel(OLD)), [OLD])
    assert shape(execution) == [("cancel", "rejected", "1", None, None, "still on the book")]


def test_a_cancel_pending_order_counts_as_cancelled() -> None:
    pending = o("1", B, "29000.00", status=OrderStatus.CANCEL_PENDING)
    exchange = Scripted(writes=[unsettled()], reads=[[pending]])
    execution = run(exchange, plan_of(cancel(OLD)), [OLD])
    assert shape(execution) == [("cancel", "cancelled", "1", None, None, None)]


def test_placements_are_paired_with_new_orders_of_their_shape_answered_ids_first() -> None:
    twin_a, twin_b = o("30", B, "29850.00"), o("20", B, "29850.00")  # someone else's twin has the lower id
    exchange = Scripted(writes=[unsettled(group("30"))], reads=[[twin_b, twin_a]])
    execution = run(exchange, plan_of(BUY0))
    assert shape(execution) == [("place", "placed", "30", "buy[0]", None, None)]


def test_new_orders_are_paired_by_numeric_id_and_old_orders_never() -> None:
    old_twin = o("5", B, "29850.00")
    exchange = Scripted(writes=[unsettled()], reads=[[old_twin, o("100", B, "29850.00"), o("99", B, "29850.00")]])
    two = [BUY0, place("buy[1]", B, "29850.00")]
    execution = run(exchange, plan_of(*two), [old_twin])
    assert [x.order_id for x in execution.outcomes] == ["99", "100"]


def test_a_placement_not_on_the_book_is_rejected_with_the_first_place_failure() -> None:
    answer = BatchAnswer(place=(group(code="31", message="price band"), group(code="32", message="later")))
    exchange = Scripted(writes=[answer], reads=[[]])
    execution = run(exchange, plan_of(BUY0))
    assert shape(execution) == [("place", "rejected", None, "buy[0]", "31", "price band")]


def test_a_placement_not_on_the_book_without_a_failure_is_said_so() -> None:
    exchange = Scripted(writes=[BatchAnswer(place=(), cancel=(group(code="9"),))], reads=[[]])
    execution = run(exchange, plan_of(BUY0))
    assert shape(execution) == [("place", "rejected", None, "buy[0]", None, "not on the book after the batch")]


def test_an_answered_id_that_traded_away_counts_as_placed() -> None:
    filled = o("11", B, "29850.00", status=OrderStatus.FILLED)
    partly = o("12", S, "30150.00", deal_volume=D("0.001"), status=OrderStatus.CANCELLED)
    exchange = Scripted(writes=[unsettled(group("11", "12"))], reads=[[]], infos={"11": filled, "12": partly})
    execution = run(exchange, plan_of(BUY0, SELL0))
    assert shape(execution) == [
        ("place", "placed", "11", "buy[0]", None, None),
        ("place", "placed", "12", "sell[0]", None, None),
    ]
    assert exchange.asked == ["11", "12"]


def test_an_answered_id_closed_without_trading_never_stood() -> None:
    closed = o("11", B, "29850.00", status=OrderStatus.CANCELLED)
    exchange = Scripted(writes=[unsettled(group("11"))], reads=[[]], infos={"11": closed})
    execution = run(exchange, plan_of(BUY0))
    assert shape(execution)[0][:2] == ("place", "rejected")
    assert execution.confirmed


@pytest.mark.parametrize(
    "info",
    [AuthError("no"), o("11", B, "29850.00", status=OrderStatus.NEW)],
    ids=["cannot be looked up", "open but not listed"],
)
def test_an_answered_id_that_cannot_be_settled_leaves_the_placement_unknown(info: object) -> None:
    exchange = Scripted(writes=[unsettled(group("11"))], reads=[[]], infos={"11": info})
    execution = run(exchange, plan_of(BUY0, SELL0))
    assert shape(execution) == [
        ("place", "unknown", None, "buy[0]", None, "answered as placed, but neither on the book nor found"),
        ("place", "rejected", None, "sell[0]", "99", "x"),
    ]
    assert not execution.confirmed and not execution.may_land_late


def test_answered_ids_already_listed_or_known_before_are_not_looked_up() -> None:
    seven = o("7", S, "31000.00")
    exchange = Scripted(writes=[unsettled(group("11", "7"))], reads=[[seven, o("11", B, "29850.00")]])
    run(exchange, plan_of(BUY0), [seven])
    assert exchange.asked == []


def test_at_most_fifty_answered_ids_are_looked_up_and_the_rest_stay_unsettled() -> None:
    found, opened = readback._closed_orders(
        Scripted(infos={str(i): o(str(i), B, "1.00", status=OrderStatus.FILLED) for i in range(60)}),  # type: ignore[arg-type]
        "btcusdt",
        [str(i) for i in range(53)],
    )
    assert len(found[(B, D("1.00"), D("0.0100"))]) == 50 and opened == 3
    assert readback._closed_orders(Scripted(), "btcusdt", [], limit=50) == ({}, 0)  # type: ignore[arg-type]


# --- failure groups filed under the action they speak of --------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "filed"),
    [
        (BatchAnswer(place=(group("1", code="8"),)), [(C, "8")]),  # names only cancel ids
        (BatchAnswer(place=(group("1", "11", code="8"),)), [(P, "8")]),
        (BatchAnswer(place=(group(code="8"),)), [(C, "8")]),  # a cancel code with no ids
        (BatchAnswer(place=(group(code="22"),)), [(C, "22")]),
        (BatchAnswer(place=(group(code="23"),)), [(P, "23")]),
        (BatchAnswer(cancel=(group(code="8"),)), [(C, "8")]),
        (BatchAnswer(cancel=(group("11", code="5"),)), [(C, "5")]),
        (BatchAnswer(place=(group("1"),), cancel=(group(),)), []),
    ],
)
def test_failed_groups_are_filed_under_what_they_speak_of(answer: BatchAnswer, filed: list[tuple[object, str]]) -> None:
    batch = plan_of(cancel(OLD), BUY0).batches()[0]
    assert [(kind, g.code) for kind, g in readback.failure_groups(answer, batch)] == filed


def test_outcome_values_turn_words_into_enums() -> None:
    outcome = OrderOutcome("place", B, D(1), D(1), "placed")  # type: ignore[arg-type]
    assert outcome.action is P and outcome.status is PLACED


def test_id_keys_put_numbers_in_numeric_order_before_text() -> None:
    assert sorted(["10", "9", "b", "a"], key=readback._id_key) == ["a", "b", "9", "10"]
    assert readback._id_key("12") == (12, "") and readback._id_key("x") == (0, "x")


# --- what an execution reports, field by field ---------------------------------------------------------------------


def test_an_empty_plan_sends_nothing_and_confirms_nothing() -> None:
    exchange = Scripted()
    execution = run(exchange, plan_of())
    assert execution == executor.Execution(outcomes=(), confirmed=False, error=None, answers=())
    assert execution.confirmed is False and exchange.sent == [] and exchange.read_count == 0


def test_a_settled_execution_is_neither_late_nor_fenced() -> None:
    answer = BatchAnswer(place=(group("11"),), request=BatchRequest("btcusdt", mass_place="[...]"))
    hook: list[tuple[int, BatchRequest | None, BatchAnswer | None, str | None]] = []
    execution = run(Scripted(writes=[answer]), plan_of(BUY0), hook=hook)
    assert execution.may_land_late is False and execution.fenced is False and execution.confirmed is True
    assert hook == [(0, answer.request, answer, None)]


def test_a_read_back_execution_carries_the_book_and_the_answers() -> None:
    answer = BatchAnswer(place=(group(code="5"),))
    book = [o("11", B, "29850.00")]
    execution = run(Scripted(writes=[answer], reads=[book]), plan_of(BUY0))
    assert execution.book_after == tuple(book) and execution.answers == (answer,)
    assert execution.may_land_late is False and execution.fenced is False and execution.error is None


def test_failed_writes_are_recorded_with_the_request_they_answer() -> None:
    refused, failed = RejectedError("no", code="3"), TransientError("502")
    refused.request = BatchRequest("btcusdt", mass_cancel='["1"]')
    failed.request = BatchRequest("btcusdt", mass_place="[...]")
    two = o("2", S, "31000.00")
    hook: list[tuple[int, BatchRequest | None, BatchAnswer | None, str | None]] = []
    run(
        Scripted(writes=[refused, failed], reads=[[OLD, two]]),
        plan_of(cancel(OLD), cancel(two)),
        [OLD, two],
        limit=1,
        hook=hook,
    )
    assert [(i, r) for i, r, _, _ in hook] == [(0, refused.request), (1, failed.request)]


def test_an_unreadable_book_keeps_late_landing_and_the_fence_in_the_report() -> None:
    calls: list[int] = []

    def fence() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise LeaseLost("lease gone")

    two = o("2", S, "31000.00")
    exchange = Scripted(writes=[BatchAnswer(cancel=(group("1"),))], reads=[AuthError("denied")])
    fenced = run(exchange, plan_of(cancel(OLD), cancel(two)), [OLD, two], limit=1, fence=fence)
    assert fenced.fenced is True and fenced.confirmed is False and fenced.may_land_late is False
    assert len(fenced.answers) == 1
    late = run(Scripted(writes=[OutcomeUnknown("t", may_land_late=True)], reads=[AuthError("x")]), plan_of(BUY0))
    assert late.may_land_late is True and late.fenced is False and late.answers == ()


def test_the_read_back_after_a_batch_waits_with_the_passes_sleep() -> None:
    sleeps: list[float] = []
    exchange = Scripted(writes=[OutcomeUnknown("lost")], reads=[TransientError("busy"), [o("11", B, "29850.00")]])
    execution = run(exchange, plan_of(BUY0), sleeps=sleeps)
    assert sleeps == [0.25] and execution.confirmed


def test_the_gate_and_a_failing_recorder_say_so_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(UnsafePlanError):
        run(Scripted(), plan_of(place("buy[9]", B, "29850.00")))
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "pre-trade gate: buy[9] BUY 29850.00 × 0.0100: not a level the job declares (level)"
    ]
    caplog.clear()

    def broken(*_: object) -> None:
        raise RuntimeError("disk full")

    two = o("2", S, "31000.00")
    exchange = Scripted(writes=[BatchAnswer(cancel=(group("1"),)), BatchAnswer(cancel=(group("2"),))])
    execute(
        exchange,  # type: ignore[arg-type]
        RULES,
        plan_of(cancel(OLD), cancel(two)),
        (OLD, two),
        gate=gate_of((OLD, two)),
        on_batch=broken,
        batch_limit=1,
    )
    assert [r.getMessage() for r in caplog.records] == ["could not record batch 1", "could not record batch 2"]


def test_every_placement_an_unsettled_answer_leaves_open_stays_unknown() -> None:
    three = [BUY0, SELL0, place("buy[1]", B, "29800.00")]
    exchange = Scripted(writes=[unsettled(group("11", "12"))], reads=[[]])
    execution = run(exchange, plan_of(*three))
    assert [x.status for x in execution.outcomes] == [UNKNOWN, UNKNOWN, REJECTED]


def test_closed_order_lookups_count_each_order_they_cannot_settle() -> None:
    infos: dict[str, object] = {
        "1": AuthError("no"),
        "2": o("2", B, "1.00", status=OrderStatus.NEW),
        "3": o("3", B, "1.00", status=OrderStatus.FILLED),
        "4": AuthError("no"),
    }
    found, opened = readback._closed_orders(Scripted(infos=infos), "btcusdt", ["1", "2", "3", "4"])  # type: ignore[arg-type]
    assert opened == 3 and [x.id for x in found[(B, D("1.00"), D("0.0100"))]] == ["3"]


def test_a_cancel_reports_the_cancelled_orders_values_even_beside_a_keep_of_the_same_id() -> None:
    kept = Action(ActionKind.KEEP, B, D("29999.00"), D("0.5000"), order_id="1", level="buy[4]")
    execution = run(Scripted(writes=[BatchAnswer(cancel=(group("1"),))]), plan_of(cancel(OLD), kept), [OLD])
    assert shape(execution) == [("cancel", "cancelled", "1", None, None, None)]
