"""What a scheduler says about one pass, the daemon's and a cluster member's alike: its log line (fields and level)
and its metrics; and what it left standing, which the stream's watcher learns."""

from __future__ import annotations

import logging

from rebalancer.engine.runner import PassReport
from rebalancer.models import Order
from rebalancer.vocab import ActionKind, OutcomeStatus, PassResult


def pass_log_level(report: PassReport) -> int:
    """A pass that found nothing to do is logged at debug: a quiet daemon's log shows only what changed."""
    return logging.DEBUG if report.result == PassResult.NO_CHANGES else logging.INFO


def pass_fields(report: PassReport, kept: int | None = None) -> dict[str, object]:
    """The fields of a pass's log line: job, result, placed, cancelled, kept, rejected, duration_ms, and where its
    prices came from (``prices``: ``rest`` or ``stream``). ``kept``: the plan's keeps, when the caller counted them."""
    execution = report.execution
    return {
        "job": report.job,
        "result": report.result,
        "placed": execution.count(OutcomeStatus.PLACED) if execution else 0,
        "cancelled": execution.count(OutcomeStatus.CANCELLED) if execution else 0,
        "kept": report.plan.summary.get(ActionKind.KEEP, 0) if kept is None else kept,
        "rejected": len(execution.rejected) if execution else 0,
        "duration_ms": report.duration_ms,
        "prices": report.snapshot.ticker.source,
    }


def standing(report: PassReport) -> tuple[Order, ...]:
    """The job's orders as its pass left them: the open orders it kept and the placements confirmed on the book."""
    kept = {a.order_id for a in report.plan.actions if a.action is ActionKind.KEEP}
    orders = [o for o in report.snapshot.open_orders if o.id in kept]
    for outcome in report.execution.outcomes if report.execution else ():
        if outcome.action is ActionKind.PLACE and outcome.status is OutcomeStatus.PLACED and outcome.order_id:
            orders.append(Order(outcome.order_id, outcome.side, outcome.price, outcome.volume))
    return tuple(orders)
