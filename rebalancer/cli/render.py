"""The human form of a plan, in Terraform's habits, laid out like an order book.

SELL first (highest price on top), a reference line, then BUY (highest price on top), so the ladder reads the
way a trader reads a book. ``+`` place (green), ``-`` cancel (red, with its reason), ``=`` unchanged, warnings
in yellow, and a final summary line.
"""

from __future__ import annotations

from decimal import Decimal

from rebalancer.core.plan import Action, Plan, summary_line
from rebalancer.job import Ownership
from rebalancer.models import Side
from rebalancer.vocab import ActionKind

_GREEN, _RED, _YELLOW, _BOLD, _DIM, _RESET = (
    "\x1b[32m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[1m",
    "\x1b[2m",
    "\x1b[0m",
)
_MARK = {ActionKind.PLACE: ("+", _GREEN), ActionKind.CANCEL: ("-", _RED), ActionKind.KEEP: ("=", _DIM)}
# at one price a cancel is listed before the placement that replaces it, unchanged orders last
_AT_PRICE = {ActionKind.CANCEL: 0, ActionKind.PLACE: 1, ActionKind.KEEP: 2}


def _paint(text: str, code: str, color: bool) -> str:
    return f"{code}{text}{_RESET}" if color else text


def _name(a: Action) -> str:
    if a.action is ActionKind.CANCEL:
        return f"order {a.order_id}"
    return a.level or ""


def _line(plan: Plan, a: Action, name_width: int, price_width: int, color: bool) -> str:
    mark, code = _MARK[a.action]
    body = (
        f"  {mark} {_name(a):<{name_width}}  {plan.format_price(a.price):>{price_width}} × "
        f"{plan.format_volume(a.volume)}"
    )
    if a.action is ActionKind.CANCEL:
        body += f"  ({a.reason})"
    elif a.action is ActionKind.KEEP:
        body += f"  (order {a.order_id})"
    return _paint(body, code, color)


def _side_rows(plan: Plan, side: Side) -> list[Action]:
    rows = [a for a in plan.actions if a.side is side]
    return sorted(rows, key=lambda a: (-a.price, _AT_PRICE[a.action], a.order_id or "", a.level or ""))


def ownership_line(plan: Plan) -> str:
    """Which open orders this plan may cancel, in words: ``Ownership: tracked (only orders this job placed)``."""
    if plan.ownership is Ownership.SYMBOL:
        return f"Ownership: symbol (every open order on {plan.symbol}, manual ones included)"
    return "Ownership: tracked (only orders this job placed)"


def _optional(plan: Plan, value: Decimal | None) -> str:
    return "none" if not value else plan.format_price(value)


def render_text(plan: Plan, *, color: bool) -> str:
    """The plan for a terminal: header, SELL then BUY one line per order, warnings, summary line."""
    lines = [
        _paint(f"Plan for job {plan.job} on {plan.symbol}", _BOLD, color),
        f"  reference {_optional(plan, plan.reference_price)}   "
        f"best bid {_optional(plan, plan.best_bid)}   "
        f"best ask {_optional(plan, plan.best_ask)}",
    ]
    lines.append(f"  {ownership_line(plan)}")
    if plan.inventory is not None:
        lines.append(f"  {plan.inventory.describe()}")
    if plan.paused:
        lines.append(_paint(f"  {plan.paused}", _YELLOW + _BOLD, color))
    blind = None if plan.blind is None else plan.blind.sentence()
    if blind is not None:
        lines.append(_paint(f"  {blind}", _YELLOW + _BOLD, color))
    if plan.loss is not None:
        lines.append(f"  Loss limit: {plan.loss.sentence(plan.price_places)}")
    if plan.unowned_orders:
        lines.append(f"  {plan.unowned_orders} open order(s) on the symbol are not this job's and are left alone")
    name_width = max((len(_name(a)) for a in plan.actions), default=0)
    price_width = max((len(plan.format_price(a.price)) for a in plan.actions), default=0)
    for side in (Side.SELL, Side.BUY):
        rows = _side_rows(plan, side)
        if side is Side.BUY:
            lines.append(_paint(f"  ---- reference {_optional(plan, plan.reference_price)} ----", _DIM, color))
        lines.append(_paint(f"{side.value}", _BOLD, color) + ("" if rows else "  (no orders)"))
        lines.extend(_line(plan, a, name_width, price_width, color) for a in rows)
    warnings = [w for w in plan.warnings if w not in (plan.paused, blind)]  # both are shown under the header
    if warnings:
        lines.append("")
        lines.append(_paint("Warnings:", _YELLOW, color))
        lines.extend(_paint(f"  ! {w}", _YELLOW, color) for w in warnings)
    lines.append("")
    lines.append(_paint(summary_line(plan), _BOLD, color))
    return "\n".join(lines) + "\n"
