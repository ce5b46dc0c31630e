"""One job's labelled metric series, looked up once for as long as its slot is loaded.

prometheus-client's ``labels()`` takes a lock, checks the values and looks the child up on every call; a pass made
nine such calls. A slot keeps its job's children here instead (``Slot.series``). Children are the registry's own,
so what they count is what ``/metrics`` shows; ``Metrics.forget`` removes them only when the slot is retired, and a
job loaded again gets a new slot and new look-ups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rebalancer.scheduler.metrics import Metrics


@dataclass(frozen=True, slots=True)
class JobSeries:
    """The children of one job's per-job series; those with a second label (a pass's result) by that label."""

    metrics: Metrics
    job: str
    pass_duration: Any
    last_pass: Any
    lateness: Any
    placed: Any
    cancelled: Any
    gate_refusals: Any
    open_orders: Any
    last_success: Any
    paused: Any
    _passes: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, metrics: Metrics, job: str) -> JobSeries:
        """Look up (or make) every child of ``job`` once."""
        return cls(
            metrics,
            job,
            metrics.pass_duration.labels(job),
            metrics.last_pass.labels(job),
            metrics.lateness.labels(job),
            metrics.placed.labels(job),
            metrics.cancelled.labels(job),
            metrics.gate_refusals.labels(job),
            metrics.open_orders.labels(job),
            metrics.last_success.labels(job),
            metrics.paused.labels(job),
        )

    def passes(self, result: str) -> Any:
        """The job's ``rebalancer_passes_total`` child of ``result`` (a pass result or a skip)."""
        child = self._passes.get(result)
        if child is None:
            child = self._passes[result] = self.metrics.passes.labels(self.job, result)
        return child
