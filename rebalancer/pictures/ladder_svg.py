"""A ladder drawn as an SVG order book: one row per price, sells above the reference and buys below it.

Pure: rows in, markup out. Each drawn row is a ``<g class="row ACTION SIDE">`` carrying ``data-`` attributes (price,
volume, level, order id, reason), so a browser test can find what was drawn and a reader can inspect it. The
vertical axis is an order book's: one row per distinct price, highest on top; tolerance bands and the reference line
are placed by interpolating between the rows, so a band spans exactly the rows its prices cover. Marker labels are
laid out so that they never overprint, even when two markers share a price (``label_baselines``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from rebalancer.vocab import ActionKind

ROW_HEIGHT = 22
TOP = 34
PRICE_WIDTH = 120
BAR_WIDTH = 320
LABEL_WIDTH = 330
WIDTH = PRICE_WIDTH + BAR_WIDTH + LABEL_WIDTH
_BAR_X = PRICE_WIDTH + 10


@dataclass(frozen=True, slots=True)
class Row:
    """One order or target to draw. ``kind``: place, cancel, keep (a plan's actions) or open (an order as it stands).

    ``band`` is the (low, high) price range an open order may stand in and still count as this target, when known.
    """

    kind: str
    side: str
    price: Decimal
    volume: Decimal
    price_text: str
    volume_text: str
    level: str | None = None
    order_id: str | None = None
    reason: str | None = None
    band: tuple[Decimal, Decimal] | None = None


@dataclass(frozen=True, slots=True)
class Marker:
    """A horizontal line across the book: the reference price, the best bid or the best ask."""

    kind: str
    price: Decimal
    label: str


def _label(row: Row) -> str:
    if row.kind == ActionKind.CANCEL:
        return f"cancel order {row.order_id} ({row.reason})"
    if row.kind == ActionKind.PLACE:
        return f"place {row.level}"
    if row.kind == ActionKind.KEEP:
        return f"keep order {row.order_id} for {row.level}"
    return f"order {row.order_id}" + (f" on {row.level}" if row.level else "")


def _data(row: Row) -> str:
    attrs = {
        "data-kind": row.kind,
        "data-side": row.side,
        "data-price": row.price_text,
        "data-volume": row.volume_text,
        "data-level": row.level,
        "data-order-id": row.order_id,
        "data-reason": row.reason,
    }
    return " ".join(f'{name}="{escape(value)}"' for name, value in attrs.items() if value is not None)


class _Axis:
    """Maps a price to a y coordinate: rows are evenly spaced, prices between rows are interpolated."""

    def __init__(self, prices: Sequence[Decimal]) -> None:
        self.prices = sorted(set(prices))  # ascending
        self.count = len(self.prices)

    def row_y(self, price: Decimal) -> float:
        index = self.prices.index(price)
        return TOP + (self.count - 1 - index) * ROW_HEIGHT + ROW_HEIGHT / 2

    def y(self, price: Decimal) -> float:
        ps = self.prices
        if not ps:
            return TOP
        if price <= ps[0]:
            return self.row_y(ps[0]) + ROW_HEIGHT / 2
        if price >= ps[-1]:
            return self.row_y(ps[-1]) - ROW_HEIGHT / 2
        hi = bisect_left(ps, price)
        lo = hi - 1
        share = float((price - ps[lo]) / (ps[hi] - ps[lo]))
        return self.row_y(ps[lo]) + (self.row_y(ps[hi]) - self.row_y(ps[lo])) * share


LABEL_GAP = 12
"""Least distance between two marker labels' baselines: one line of their 11 px text, so they never overprint."""
_LABEL_LIFT = 3  # a marker's label sits this far above its line when nothing is in the way


def label_baselines(line_ys: Sequence[float]) -> list[float]:
    """The baseline of each marker's label, given each marker's line: just above its line, and pushed down below
    the label above it where two lines are closer than ``LABEL_GAP`` (the reference on the best bid, say), so that
    no two labels overlap. Returned in the order of ``line_ys``; ties keep that order top to bottom."""
    placed: list[float] = [0.0] * len(line_ys)
    previous: float | None = None
    for index in sorted(range(len(line_ys)), key=lambda i: line_ys[i]):
        wanted = line_ys[index] - _LABEL_LIFT
        placed[index] = wanted if previous is None else max(wanted, previous + LABEL_GAP)
        previous = placed[index]
    return placed


def render(rows: Sequence[Row], markers: Sequence[Marker], *, title: str) -> str:
    """The SVG of ``rows`` (orders and targets) and ``markers`` (reference, best bid and ask) as an order book."""
    axis = _Axis([r.price for r in rows] + [m.price for m in markers])
    line_ys = [axis.y(marker.price) for marker in markers]
    label_ys = label_baselines(line_ys)
    height = max(TOP + max(axis.count, 1) * ROW_HEIGHT + 16, int(max(label_ys, default=0)) + 8)
    biggest = max((r.volume for r in rows), default=Decimal(0)) or Decimal(1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="ladder" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text class="heading" x="8" y="20">price</text><text class="heading" x="{_BAR_X}" y="20">volume</text>'
        f'<text class="heading" x="{_BAR_X + BAR_WIDTH}" y="20">what the plan does</text>',
    ]
    for row in rows:
        if row.band is None:
            continue
        low, high = row.band
        top, bottom = axis.y(high), axis.y(low)
        out.append(
            f'<rect class="band {row.side.lower()}" data-level="{escape(row.level or "")}" x="{_BAR_X - 6}" '
            f'y="{top:.1f}" width="{BAR_WIDTH + 12}" height="{max(bottom - top, 2):.1f}" rx="3"/>'
        )
    for marker, y, label_y in zip(markers, line_ys, label_ys, strict=True):
        out.append(
            f'<g class="marker {marker.kind}" data-price="{escape(marker.label)}">'
            f'<line x1="4" x2="{WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{WIDTH - 8}" y="{label_y:.1f}" text-anchor="end">'
            f"{escape(marker.kind)} {escape(marker.label)}</text>"
            "</g>"
        )
    for row in rows:
        y = axis.row_y(row.price)
        length = max(float(row.volume / biggest) * BAR_WIDTH, 2.0)
        out.append(
            f'<g class="row {row.kind} {row.side.lower()}" {_data(row)}>'
            f'<text class="price" x="{PRICE_WIDTH}" y="{y + 4:.1f}" text-anchor="end">{escape(row.price_text)}</text>'
            f'<rect class="bar" x="{_BAR_X}" y="{y - 7:.1f}" width="{length:.1f}" height="14" rx="2"/>'
            f'<text class="volume" x="{_BAR_X + 4}" y="{y + 4:.1f}">{escape(row.volume_text)}</text>'
            f'<text class="what" x="{_BAR_X + BAR_WIDTH + 10}" y="{y + 4:.1f}">{escape(_label(row))}</text>'
            "</g>"
        )
    out.append("</svg>")
    return "\n".join(out)


STYLE = """
svg.ladder { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #fcfcfd; }
svg.ladder .heading { fill: #667; font-weight: bold; }
svg.ladder .band { fill-opacity: 0.13; }
svg.ladder .band.buy { fill: #1a7f37; } svg.ladder .band.sell { fill: #cf222e; }
svg.ladder .row.buy .bar { fill: #2da44e; } svg.ladder .row.sell .bar { fill: #e5534b; }
svg.ladder .row.keep .bar { fill-opacity: 0.55; }
svg.ladder .row.open .bar { fill-opacity: 0.55; }
svg.ladder .row.place .bar { fill-opacity: 0.9; stroke: #111; stroke-dasharray: 3 2; }
svg.ladder .row.cancel .bar { fill: #fff; stroke: #cf222e; stroke-width: 1.5; }
svg.ladder .row.cancel text { fill: #a40e26; text-decoration: line-through; }
svg.ladder .row.cancel text.what { text-decoration: none; }
svg.ladder .marker line { stroke: #333; stroke-dasharray: 6 4; }
svg.ladder .marker.best-bid line, svg.ladder .marker.best-ask line { stroke: #999; stroke-dasharray: 2 3; }
svg.ladder .marker text { fill: #333; font-size: 11px; }
"""
"""The drawing's CSS, inlined by the pages that embed it."""
