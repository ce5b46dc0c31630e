"""Send: the write-ahead, then the plan's batches behind the pre-trade gate and the lease's fence.

The write-ahead (``StateStore.record_presend``) is committed before the first batch, and only when it matters: the
pass places orders (an in-flight record, so that a pass after a crash adopts what landed instead of placing it
twice) or its loss limit pauses the job (the pause must hold even if sending fails). It carries the ownership the
tracker settled this pass. Behind a lease, a pass that places orders commits it at the first batch's fence, the
lease checked in the same transaction (``WriteAheadFence``). A cancel-only pass needs none: a cancel cannot double.
The batches, as sent and as answered, are collected in memory and recorded with the pass's outcome.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rebalancer.core import gate
from rebalancer.core.plan import Plan
from rebalancer.engine.decide import Decision
from rebalancer.engine.executor import Execution, Fence, execute
from rebalancer.engine.fence import LeaseFence
from rebalancer.errors import RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.models import BatchAnswer, BatchRequest, MarketSnapshot, format_decimal
from rebalancer.state.outcome import BatchWrite, Origin, OwnershipChange, PreSend
from rebalancer.state.records import Placement
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode


@dataclass(frozen=True, slots=True)
class Ahead:
    """What the write-ahead left: the pass row and in-flight record it opened (None when there was none), and the
    ownership still to be written by the outcome (empty once the write-ahead carried it)."""

    pass_id: int | None
    in_flight: int | None
    ownership: OwnershipChange


@dataclass(frozen=True, slots=True)
class Sent:
    """What sending did: the execution (None when ``execute`` refused before sending anything), every batch as sent
    and answered, and the error that stopped it (``LeaseLost`` when the pass was fenced)."""

    execution: Execution | None
    batches: tuple[BatchWrite, ...]
    error: RebalancerError | None = None


class WriteAheadFence:
    """The fence of a pass that places orders behind a lease: its first call, right before the first batch, commits
    the write-ahead with the lease checked inside the same transaction (``LeaseLost``, nothing written, when it is
    not current). One transaction where the write-ahead and the fencing read took two; the write-ahead is still
    committed before anything is sent. Later calls are the lease's fence. ``ahead``: what the first call committed
    (None before it, or when it refused)."""

    def __init__(self, store: StateStore, presend: PreSend, fence: LeaseFence) -> None:
        self._store = store
        self._presend = dataclasses.replace(presend, fence=fence.check)
        self._fence = fence
        self.ahead: Ahead | None = None

    def __call__(self) -> None:
        """Commit the write-ahead under the lease check the first time; check the lease every later time."""
        if self.ahead is not None:
            self._fence()
            return
        pass_id, in_flight = self._store.record_presend(self._presend)
        self.ahead = Ahead(pass_id, in_flight, OwnershipChange())


def write_ahead(
    job: Job,
    store: StateStore,
    mode: Mode,
    decision: Decision,
    ownership: OwnershipChange,
    now: datetime,
    origin: Origin,
    fence: Fence | None = None,
) -> tuple[Ahead, Fence | None]:
    """Commit the write-ahead when the plan places orders or pauses the job; else write nothing. Returns what was
    committed and the fence to send behind.

    A plan that places orders (and pauses nothing) behind a lease's fence leaves its write-ahead to that fence's
    first call (``WriteAheadFence``); a loss-limit pause is committed here, so it holds even if the gate refuses.
    """
    plan = decision.plan
    if not plan.placements and decision.pause is None:
        return Ahead(None, None, ownership), fence
    placements = tuple(Placement.of(t.side, format_decimal(t.price), format_decimal(t.volume)) for t in plan.placements)
    presend = PreSend(
        job.name, mode, now, placements=placements, ownership=ownership, pause=decision.pause, origin=origin
    )
    if decision.pause is None and isinstance(fence, LeaseFence):
        return Ahead(None, None, ownership), WriteAheadFence(store, presend, fence)
    pass_id, in_flight = store.record_presend(presend)
    return Ahead(pass_id, in_flight, OwnershipChange()), fence


def committed(ahead: Ahead, fence: Fence | None) -> Ahead:
    """What the write-ahead committed once sending is over: ``ahead``, unless ``fence`` committed it."""
    if isinstance(fence, WriteAheadFence) and fence.ahead is not None:
        return fence.ahead
    return ahead


def send(
    job: Job,
    exchange: Exchange,
    snapshot: MarketSnapshot,
    plan: Plan,
    checkpoint: gate.Checkpoint,
    fence: Fence | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Sent:
    """Send ``plan`` (``rebalancer.engine.executor.execute``), collecting each batch; nothing is written here.

    ``execute`` raises only before anything was sent (the gate refused, the fence fell): that error is returned in
    ``Sent.error`` so the outcome can record it.
    """
    batches: list[BatchWrite] = []

    def collect(index: int, request: BatchRequest | None, answer: BatchAnswer | None, error: str | None) -> None:
        params = request.params() if request is not None else {"symbol": job.symbol}
        batches.append(BatchWrite(index, params, answer_json(answer), error, clock()))

    try:
        execution = execute(
            exchange,
            snapshot.rules,
            plan,
            snapshot.open_orders,
            gate=checkpoint,
            on_batch=collect,
            batch_limit=job.exchange.max_batch,
            fence=fence,
        )
    except RebalancerError as exc:
        return Sent(None, tuple(batches), exc)
    return Sent(execution, tuple(batches))


def answer_json(answer: BatchAnswer | None) -> object | None:
    """A batch answer as the store keeps it: per kind, each result group's code, message and order ids."""
    if answer is None:
        return None
    return {
        kind: [{"code": g.code, "msg": g.message, "order_id": list(g.order_ids)} for g in groups]
        for kind, groups in (("mass_place", answer.place), ("mass_cancel", answer.cancel))
    }
