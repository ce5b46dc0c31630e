"""``replay --html OUT``: one replay as a self-contained HTML page (inline CSS and SVG, no script, no fonts).

Pure: values in, markup out. Three charts share the time axis: the market's mid with the job's resting orders over
time (a short line per order price between two changes of the ladder) and every fill marked (``circle.fill.buy``,
``circle.fill.sell``); the base inventory; the PnL total. Below them, the replay's figures. Long replays are thinned
for drawing only (at most ``MAX_POINTS`` curve points, ``MAX_LADDERS`` ladder snapshots, ``MAX_FILLS`` fill
marks): the figures are exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html import escape
from typing import TypeVar

from rebalancer.pictures.plan_page import PAGE_STYLE

WIDTH = 960
LEFT = 90
RIGHT = 20
MAX_LADDERS = 400
MAX_FILLS = 4000
MAX_POINTS = 2000
T = TypeVar("T")

STYLE = """
svg.chart { display: block; margin: 8px 0 16px; background: #fff; border: 1px solid #d0d7de; }
svg.chart text { font: 11px ui-monospace, Menlo, Consolas, monospace; fill: #59636e; }
svg.chart .mid { fill: none; stroke: #1f2328; stroke-width: 1.2; }
svg.chart .curve { fill: none; stroke: #0969da; stroke-width: 1.5; }
svg.chart line.level.buy { stroke: #1a7f37; stroke-opacity: .45; }
svg.chart line.level.sell { stroke: #cf222e; stroke-opacity: .45; }
svg.chart circle.fill.buy { fill: #1a7f37; } svg.chart circle.fill.sell { fill: #cf222e; }
svg.chart line.zero { stroke: #8c959f; stroke-dasharray: 4 3; }
table.figures { border-collapse: collapse; font: 12px ui-monospace, Menlo, Consolas, monospace; }
table.figures td { padding: 2px 12px; border-bottom: 1px solid #eee; }
"""


@dataclass(frozen=True, slots=True)
class Detail:
    """What the page draws: curve samples (time ms, mid, base, PnL total), ladder snapshots (time ms, buy prices,
    sell prices), fills (time ms, side ``BUY``/``SELL``, price), the replay's start and end (ms)."""

    curve: Sequence[tuple[int, Decimal, Decimal, Decimal]]
    ladders: Sequence[tuple[int, Sequence[Decimal], Sequence[Decimal]]]
    fills: Sequence[tuple[int, str, Decimal]]
    start_ms: int
    end_ms: int


class _Axis:
    """Linear maps from time and value to SVG coordinates."""

    def __init__(self, start: int, end: int, low: Decimal, high: Decimal, height: int) -> None:
        self.start, self.span = start, max(end - start, 1)
        if high <= low:
            low, high = low - 1, high + 1
        pad = (high - low) / 20
        self.low, self.high = float(low - pad), float(high + pad)
        self.height = height

    def x(self, t_ms: int) -> float:
        return round(LEFT + (t_ms - self.start) / self.span * (WIDTH - LEFT - RIGHT), 2)

    def y(self, value: Decimal) -> float:
        return round(10 + (self.high - float(value)) / (self.high - self.low) * (self.height - 30), 2)


def _frame(kind: str, axis: _Axis, title: str, low: Decimal, high: Decimal) -> list[str]:
    h = axis.height
    return [
        f"<svg class='chart {kind}' xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{h}' "
        f"viewBox='0 0 {WIDTH} {h}' role='img' aria-label='{escape(title)}'><title>{escape(title)}</title>",
        f"<text x='4' y='{axis.y(high) + 4}'>{escape(_short(high))}</text>",
        f"<text x='4' y='{axis.y(low) + 4}'>{escape(_short(low))}</text>",
        f"<text x='{LEFT}' y='{h - 4}'>{escape(_time(axis.start))}</text>",
        f"<text x='{WIDTH - RIGHT}' y='{h - 4}' text-anchor='end'>{escape(_time(axis.start + axis.span))}</text>",
    ]


def _short(value: Decimal) -> str:
    return f"{value:.6g}"


def _time(ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def _price_chart(detail: Detail) -> str:
    ladders = _thin(detail.ladders, MAX_LADDERS)
    prices = [mid for _, mid, _, _ in detail.curve]
    prices += [p for _, buys, sells in ladders for p in (*buys, *sells)]
    prices += [p for _, _, p in detail.fills]
    if not prices:
        return ""
    low, high = min(prices), max(prices)
    axis = _Axis(detail.start_ms, detail.end_ms, low, high, 340)
    parts = _frame("price", axis, "Mid price, the job's resting orders and its fills", low, high)
    for index, (t, buys, sells) in enumerate(ladders):
        until = ladders[index + 1][0] if index + 1 < len(ladders) else detail.end_ms
        x1, x2 = axis.x(t), axis.x(until)
        for side, levels in (("buy", buys), ("sell", sells)):
            for price in levels:
                y = axis.y(price)
                parts.append(f"<line class='level {side}' x1='{x1}' y1='{y}' x2='{x2}' y2='{y}'/>")
    points = " ".join(f"{axis.x(t)},{axis.y(mid)}" for t, mid, _, _ in detail.curve)
    parts.append(f"<polyline class='mid' points='{points}'/>")
    for t, side, price in _thin(detail.fills, MAX_FILLS):
        kind = "buy" if side == "BUY" else "sell"
        parts.append(f"<circle class='fill {kind}' data-price='{price}' cx='{axis.x(t)}' cy='{axis.y(price)}' r='3'/>")
    parts.append("</svg>")
    return "\n".join(parts)


def _curve_chart(kind: str, title: str, detail: Detail, series: Sequence[tuple[int, Decimal]]) -> str:
    values = [value for _, value in series]
    if not values:
        return ""
    low, high = min(values), max(values)
    axis = _Axis(detail.start_ms, detail.end_ms, low, high, 160)
    parts = _frame(kind, axis, title, low, high)
    if low < 0 < high:
        parts.append(f"<line class='zero' x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{axis.y(Decimal(0))}' "
                     f"y2='{axis.y(Decimal(0))}'/>")  # fmt: skip
    points = " ".join(f"{axis.x(t)},{axis.y(value)}" for t, value in series)
    parts.append(f"<polyline class='curve' points='{points}'/></svg>")
    return "\n".join(parts)


def _thin(items: Sequence[T], most: int) -> Sequence[T]:
    if len(items) <= most:
        return items
    step = len(items) / most
    return [items[int(i * step)] for i in range(most)]


def _figures(figures: Mapping[str, str]) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td class='value'>{escape(v)}</td></tr>" for k, v in figures.items())
    return f"<table class='figures'>{rows}</table>"


def render_page(title: str, subtitle: str, detail: Detail, figures: Mapping[str, str]) -> str:
    """The whole page: ``title``, ``subtitle``, the three charts of ``detail`` and the ``figures`` table."""
    curve = detail.curve
    if len(curve) > MAX_POINTS:
        curve = [*_thin(curve[:-1], MAX_POINTS - 1), curve[-1]]
        detail = Detail(curve, detail.ladders, detail.fills, detail.start_ms, detail.end_ms)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{PAGE_STYLE}{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<div class='sub'>{escape(subtitle)}</div>",
        "<h2>Price, orders and fills</h2>",
        _price_chart(detail),
        "<h2>Inventory (base)</h2>",
        _curve_chart("inventory", "Base inventory", detail, [(t, base) for t, _, base, _ in detail.curve]),
        "<h2>PnL total (quote)</h2>",
        _curve_chart("pnl", "PnL total", detail, [(t, total) for t, _, _, total in detail.curve]),
        "<h2>Figures</h2>",
        _figures(figures),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
