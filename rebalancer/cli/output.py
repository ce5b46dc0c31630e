"""Human and JSON forms of what commands report besides the plan: apply results, validation problems, history."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rebalancer.engine.executor import Execution, OrderOutcome
from rebalancer.errors import Problem
from rebalancer.models import format_decimal
from rebalancer.vocab import ActionKind, OutcomeStatus

if TYPE_CHECKING:  # the state store pulls in SQLAlchemy: ~170 ms that `validate` does not need
    from rebalancer.state.store import PassRecord

_MARKS = {
    OutcomeStatus.PLACED: ("+", "green"),
    OutcomeStatus.CANCELLED: ("-", "red"),
    OutcomeStatus.REJECTED: ("!", "yellow"),
    OutcomeStatus.UNKNOWN: ("?", "magenta"),
}


def _style(text: str, color: str | None, enabled: bool) -> str:
    if not enabled or color is None:
        return text
    import click

    return click.style(text, fg=color)


def outcome_line(outcome: OrderOutcome, *, color: bool) -> str:
    """One line per order after apply: what was asked and what became of it."""
    mark, tint = _MARKS.get(outcome.status, (" ", None))
    what = f"{outcome.side.value:<4} {format_decimal(outcome.price)} × {format_decimal(outcome.volume)}"
    label = outcome.level or ""
    ident = f"order {outcome.order_id}" if outcome.order_id else ""
    detail = ""
    if outcome.status in (OutcomeStatus.REJECTED, OutcomeStatus.UNKNOWN):
        code = f"code {outcome.code}: " if outcome.code else ""
        detail = f"  ({code}{outcome.message or 'no reason given'})"
    settled = outcome.status in (OutcomeStatus.PLACED, OutcomeStatus.CANCELLED)
    verb = outcome.status if settled else f"{outcome.action} {outcome.status}"
    text = f"{mark} {verb:<16} {label:<10} {what}  {ident}{detail}".rstrip()
    return _style(text, tint, color)


def execution_text(execution: Execution, *, color: bool, done: str = "Apply complete") -> str:
    """Per-order results and a closing line, Terraform style."""
    lines = [outcome_line(o, color=color) for o in execution.outcomes]
    if execution.error:
        lines.append(_style(f"Warning: {execution.error}", "yellow", color))
    placed, cancelled = execution.count(OutcomeStatus.PLACED), execution.count(OutcomeStatus.CANCELLED)
    rejected, unknown = execution.count(OutcomeStatus.REJECTED), execution.count(OutcomeStatus.UNKNOWN)
    tail = f"{done}: {placed} placed, {cancelled} cancelled, {rejected} rejected"
    if unknown:
        tail += f", {unknown} unconfirmed"
    lines.append(tail + ".")
    return "\n".join(lines)


def problems_text(problems: Sequence[Problem]) -> str:
    """Validation problems, one per line in ``file:line:col: key.path: message`` form."""
    return "\n".join(str(p) for p in problems)


def problem_dict(problem: Problem) -> dict[str, Any]:
    """A validation problem as a JSON object."""
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "path": problem.path,
        "message": problem.message,
    }


def history_table(
    records: Sequence[PassRecord], fills: Mapping[int, str] | None = None, *, filtered: bool = False
) -> str:
    """Past passes as an aligned table, newest first; a failed pass shows its error in the last column. ``WAKE``:
    why a scheduler ran the pass (``-``: a command did); ``PRICES``: where its market prices came from.

    ``fills``: what each pass learnt was filled, by pass id.
    """
    if not records:
        return "No passes match." if filtered else "No passes recorded yet."
    fills = fills or {}
    header = ("ID", "STARTED (UTC)", "JOB", "MODE", "WAKE", "PRICES", "RESULT", "PLACED", "CANCELLED", "KEPT")
    rows: list[tuple[str, ...]] = [(*header, "REJECTED", "FILLED", "MS", "ERROR")]
    for r in records:
        s = r.summary
        rows.append(
            (
                str(r.id),
                r.started_at.strftime("%Y-%m-%d %H:%M:%S"),
                r.job,
                r.mode,
                r.wake or "-",
                r.prices or "-",
                r.result or "unfinished",
                str(s.get(OutcomeStatus.PLACED, 0)),
                str(s.get(OutcomeStatus.CANCELLED, 0)),
                str(s.get(ActionKind.KEEP, 0)),
                str(s.get(OutcomeStatus.REJECTED, 0)),
                fills.get(r.id, "-"),
                "" if r.duration_ms is None else str(r.duration_ms),
                r.error or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)
