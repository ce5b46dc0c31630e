"""What a scheduler says about one pass, the daemon's and a cluster member's alike: its log line (fields and level)
and its metrics."""

from __future__ import annotations

import logging

from rebalancer.engine.runner import PassReport
from rebalancer.vocab import ActionKind, OutcomeStatus, PassResult


def pass_log_level(report: PassReport) -> int:
    """A pass that found nothing to do is logged at debug: a quiet daemon's log shows only what changed."""
    return logging.DEBUG if report.result == PassResult.NO_CHANGES else logging.INFO


def pass_fields(report: PassReport) -> dict[str, object]:
    """The fields of a pass's log line: job, result, placed, cancelled, kept, rejected, duration_ms, and where its
    prices came from (``prices``: ``rest`` or ``stream``)."""
    execution = report.execution
    return {
        "job": report.job,
        "result": report.result,
        "placed": execution.count(OutcomeStatus.PLACED) if execution else 0,
        "cancelled": execution.count(OutcomeStatus.CANCELLED) if execution else 0,
        "kept": report.plan.summary.get(ActionKind.KEEP, 0),
        "rejected": len(execution.rejected) if execution else 0,
        "duration_ms": report.duration_ms,
        "prices": report.snapshot.ticker.source,
    }
