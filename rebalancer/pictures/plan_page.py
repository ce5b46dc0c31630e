"""``plan --html FILE``: the plan as one self-contained HTML page (inline CSS and SVG, no script, no fonts).

The page shows the ladder as an order book (see ``ladder_svg``): the reference and the touch, each target level with
its tolerance band, each open order at its price with its volume, and what the plan places, cancels (with the
reason) and keeps; then the warnings, the summary line and the plan's fingerprint, so a saved page can be matched to
the saved JSON plan it was drawn from.
"""

from __future__ import annotations

from html import escape

from rebalancer.core.plan import Action, Plan, summary_line
from rebalancer.job import Tolerance
from rebalancer.pictures import ladder_svg
from rebalancer.pictures.ladder_svg import Marker, Row
from rebalancer.vocab import ActionKind

PAGE_STYLE = """
body { font: 14px system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 20px; margin: 0 0 4px; } .sub { color: #59636e; margin-bottom: 12px; }
.summary { font-weight: bold; margin: 12px 0; } .paused { color: #9a6700; font-weight: bold; }
.warnings li { color: #9a6700; } code { font-size: 12px; }
table.actions { border-collapse: collapse; margin-top: 16px; font: 12px ui-monospace, Menlo, Consolas, monospace; }
table.actions td, table.actions th { padding: 2px 10px; border-bottom: 1px solid #eee; text-align: left; }
tr.place td.what { color: #1a7f37; } tr.cancel td.what { color: #cf222e; } tr.keep td.what { color: #59636e; }
"""


def _band(plan: Plan, action: Action, tolerance: Tolerance | None) -> tuple[object, object] | None:
    if tolerance is None or action.action is ActionKind.CANCEL:
        return None
    width = tolerance.price.of(action.price)
    return (action.price - width, action.price + width)


def rows(plan: Plan, tolerance: Tolerance | None = None) -> list[Row]:
    """The drawn rows of a plan: one per action, the tolerance band around each target when it is known."""
    out = []
    for a in plan.actions:
        band = _band(plan, a, tolerance)
        out.append(
            Row(
                kind=str(a.action),
                side=a.side.value,
                price=a.price,
                volume=a.volume,
                price_text=plan.format_price(a.price),
                volume_text=plan.format_volume(a.volume),
                level=a.level,
                order_id=a.order_id,
                reason=None if a.reason is None else str(a.reason),
                band=band,  # type: ignore[arg-type]
            )
        )
    return out


def markers(plan: Plan) -> list[Marker]:
    """The reference line and the best bid / ask lines, for those the plan knows."""
    out = []
    if plan.reference_price:
        out.append(Marker("reference", plan.reference_price, plan.format_price(plan.reference_price)))
    if plan.best_bid:
        out.append(Marker("best-bid", plan.best_bid, plan.format_price(plan.best_bid)))
    if plan.best_ask:
        out.append(Marker("best-ask", plan.best_ask, plan.format_price(plan.best_ask)))
    return out


def _action_table(plan: Plan) -> str:
    lines = ["<table class='actions'><tr><th>action</th><th>side</th><th>level</th><th>order</th>"
             "<th>price</th><th>volume</th><th>reason</th></tr>"]  # fmt: skip
    for a in plan.actions:
        cells = (a.action, a.side.value, a.level or "", a.order_id or "", plan.format_price(a.price),
                 plan.format_volume(a.volume), a.reason or "")  # fmt: skip
        tds = "".join(f"<td{' class=what' if i == 0 else ''}>{escape(str(c))}</td>" for i, c in enumerate(cells))
        lines.append(f"<tr class='{escape(str(a.action))}'>{tds}</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def render_page(plan: Plan, *, tolerance: Tolerance | None = None, ownership: str | None = None) -> str:
    """The whole HTML page of ``plan``; ``tolerance`` draws the bands, ``ownership`` is shown when given."""
    title = f"Plan for job {plan.job} on {plan.symbol}"
    sub = [f"reference {plan.format_price(plan.reference_price) if plan.reference_price else 'none'}"]
    if ownership:
        sub.append(f"ownership {ownership}")
    if tolerance is not None:
        sub.append(f"tolerance price {tolerance.price}, size {tolerance.size}")
    warnings = [w for w in plan.warnings if w != plan.paused]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{PAGE_STYLE}{ladder_svg.STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<div class='sub'>{escape(' · '.join(sub))}</div>",
    ]
    if plan.paused:
        parts.append(f"<p class='paused'>{escape(plan.paused)}</p>")
    parts.append(ladder_svg.render(rows(plan, tolerance), markers(plan), title=title))
    parts.append(f"<p class='summary'>{escape(summary_line(plan))}</p>")
    if warnings:
        items = "".join(f"<li>{escape(w)}</li>" for w in warnings)
        parts.append(f"<h2>Warnings</h2><ul class='warnings'>{items}</ul>")
    parts.append(_action_table(plan))
    parts.append(f"<p>Fingerprint <code class='fingerprint'>{escape(plan.fingerprint)}</code></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
