"""The scheduler core the daemon and a cluster member share: the table of loaded jobs and the frame of one pass.

``JobTable`` opens every job's exchange (all or nothing at start; one by one on reload, a job that cannot be opened
keeping its old version), closes them, and keeps each job's last plan for the status pages. ``run_slot`` frames one
pass: claim it (``Coordination.claim``: pause, backoff, version, lease), run it, let go of what only it held, record
how it ended, then count it: metrics, the failure streak (the webhook told once per streak) and one log line. A pass
that stops on the pause switch its store read found on (``JobPaused``) is the plug's pause skip instead.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime

from rebalancer.core.plan import Plan
from rebalancer.engine.runner import JobPaused, PassReport
from rebalancer.errors import RebalancerError
from rebalancer.exchange import Exchange
from rebalancer.job import Job
from rebalancer.notify import Notifier, post
from rebalancer.scheduler.metrics import Metrics
from rebalancer.scheduler.plugs import Coordination, Due, Finished, Slot
from rebalancer.scheduler.report import pass_fields, pass_log_level
from rebalancer.vocab import ActionKind, NotifyKind, OutcomeStatus, PassResult, Skip

Opener = Callable[[Job], contextlib.AbstractContextManager[Exchange]]


class JobTable:
    """The jobs one process loaded, by name, with their open exchanges and last plans."""

    def __init__(self, opener: Opener) -> None:
        self.slots: dict[str, Slot] = {}
        self.lock = threading.RLock()
        self._opener = opener
        self._plans: dict[str, tuple[Plan, datetime]] = {}

    @property
    def jobs(self) -> dict[str, Job]:
        """The jobs now loaded, by name."""
        with self.lock:
            return {name: slot.job for name, slot in self.slots.items()}

    def get(self, name: str) -> Slot | None:
        """The slot of ``name``, if loaded."""
        with self.lock:
            return self.slots.get(name)

    def last_plan(self, name: str) -> tuple[Plan, datetime] | None:
        """The plan of the job's latest pass in this process and when it ended, for the status pages."""
        with self.lock:
            return self._plans.get(name)

    def note_plan(self, name: str, plan: Plan) -> None:
        """Keep ``plan`` as the job's latest."""
        with self.lock:
            self._plans[name] = (plan, datetime.now(UTC))

    def open(self, job: Job) -> Slot:
        """Connect to the job's exchange; the slot holds the connection until ``close``."""
        closer = contextlib.ExitStack()
        try:
            exchange = closer.enter_context(self._opener(job))
        except BaseException:
            closer.close()
            raise
        return Slot(job=job, exchange=exchange, closer=closer)

    def open_all(self, jobs: Sequence[Job]) -> list[Slot]:
        """A slot for every job, or none: one that cannot be opened closes the others and raises."""
        slots: list[Slot] = []
        try:
            for job in jobs:
                slots.append(self.open(job))
        except BaseException:
            for slot in slots:
                self.close(slot)
            raise
        return slots

    def gone(self, wanted: Mapping[str, Job]) -> list[Slot]:
        """The slots of jobs not in ``wanted``."""
        with self.lock:
            return [slot for name, slot in self.slots.items() if name not in wanted]

    def put(self, slot: Slot) -> Slot | None:
        """Load ``slot``; the slot it replaces, if any."""
        with self.lock:
            old = self.slots.get(slot.job.name)
            self.slots[slot.job.name] = slot
        return old

    def pop(self, name: str) -> Slot | None:
        """Unload ``name`` (its last plan is forgotten too)."""
        with self.lock:
            self._plans.pop(name, None)
            return self.slots.pop(name, None)

    def take_all(self) -> list[Slot]:
        """Unload every job and return their slots."""
        with self.lock:
            slots = list(self.slots.values())
            self.slots.clear()
        return slots

    def close(self, slot: Slot) -> None:
        """Close the slot's exchange connection (errors ignored: the job is going anyway)."""
        with contextlib.suppress(Exception):
            slot.closer.close()


def run_slot(
    plug: Coordination, table: JobTable, metrics: Metrics, slot: Slot, due: Due, fields: Mapping[str, object]
) -> PassReport | Skip | PassResult | None:
    """One pass of ``slot``'s job with every rule of the scheduler: the report; a ``Skip`` when the plug passed it
    over; ``PassResult.ERROR`` when the pass raised; None when the job was closed meanwhile."""
    if slot.closed:
        return None
    claim = plug.claim(slot, due)
    if isinstance(claim, Skip):
        return claim
    name = slot.job.name
    started = time.monotonic()
    try:
        report = plug.run(slot, claim)
    except JobPaused:
        plug.release(slot, claim)
        return plug.paused(slot, claim)
    except RebalancerError as exc:
        _ran(metrics, slot, started)
        plug.release(slot, claim)
        failed(plug, metrics, slot, plug.finish(slot, claim, exc), exc, {**fields, **claim.fields})
        return PassResult.ERROR
    except BaseException:
        _ran(metrics, slot, started)
        plug.release(slot, claim)
        raise
    _ran(metrics, slot, started)
    plug.release(slot, claim)
    table.note_plan(name, report.plan)
    account(plug, metrics, slot, report, plug.finish(slot, claim, report), {**fields, **claim.fields})
    return report


def _ran(metrics: Metrics, slot: Slot, started: float) -> None:
    """A pass ran (however it ended; a pass that stopped on the pause switch is a skip): count it for ``ready``,
    observe its duration and note when it ended."""
    slot.passes += 1
    series = slot.series(metrics)
    series.pass_duration.observe(time.monotonic() - started)
    series.last_pass.set(time.time())


def failed(
    plug: Coordination, metrics: Metrics, slot: Slot, done: Finished, exc: BaseException, fields: Mapping[str, object]
) -> None:
    """Count a pass that raised: the metric, the streak (the webhook told once) and its log line."""
    job = slot.job
    why = str(exc) if isinstance(exc, RebalancerError) else type(exc).__name__
    tell_failing(plug.notifier, job, done.failures, why)
    slot.series(metrics).passes(PassResult.ERROR).inc()
    line = {"job": job.name, **fields, "failures": done.failures, "retry_in_s": round(done.retry_in, 1)}
    if isinstance(exc, RebalancerError):
        plug.log.error("pass failed", extra={**line, "error": str(exc)})
    else:
        plug.log.error("pass crashed", exc_info=exc, extra=line)


def account(
    plug: Coordination,
    metrics: Metrics,
    slot: Slot,
    report: PassReport,
    done: Finished,
    fields: Mapping[str, object],
) -> None:
    """Count a pass that ended with a report: its metrics, the failure streak and its log line."""
    job, series = slot.job, slot.series(metrics)
    execution = report.execution
    placed = execution.count(OutcomeStatus.PLACED) if execution else 0
    series.passes(report.result).inc()
    series.placed.inc(placed)
    series.cancelled.inc(execution.count(OutcomeStatus.CANCELLED) if execution else 0)
    series.gate_refusals.inc(report.gate_refusals)
    for outcome in execution.rejected if execution else ():
        metrics.rejected.labels(job.name, outcome.code or "unknown").inc()
    for fill in report.fills:  # a counter's value is a float: fine for a gauge of activity, never for money
        metrics.filled.labels(job.name, fill.side.value).inc(float(fill.volume))
    kept = report.plan.summary.get(ActionKind.KEEP, 0)
    series.open_orders.set(kept + placed)
    if report.result is PassResult.FENCED:
        # Not a failure of the job: the lease moved on, and the next pass asks for it again.
        line = {**pass_fields(report, kept), **fields, "error": report.error}
        plug.log.warning("pass fenced: lease lost before sending", extra=line)
        return
    if report.failed:
        tell_failing(plug.notifier, job, done.failures, report.error or str(report.result))
    else:
        series.last_success.set(time.time())
    level = pass_log_level(report)
    if plug.log.isEnabledFor(level):  # a quiet pass's line is at debug: not built when it would be dropped
        plug.log.log(level, "pass", extra={**pass_fields(report, kept), **fields})


def tell_failing(notifier: Notifier, job: Job, streak: int, why: str) -> None:
    """At ``notify.after_failures`` failed passes in a row, tell the job's webhook (once per streak)."""
    if job.notify is not None and streak == job.notify.after_failures:
        post(job, NotifyKind.FAILING, f"{streak} passes in a row failed; the last: {why}", notifier)
