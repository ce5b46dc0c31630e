"""What a replay found, as one value, its JSON object (the keys of the design's contract) and its text forms.

Money and volumes are exact decimal strings; seconds are JSON numbers (whole, or to the millisecond).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rebalancer.models import format_decimal


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """The figures of one replay (see docs/replay.md for each one's meaning)."""

    seconds: int
    passes: int
    failed_passes: int
    wakes: Mapping[str, int]
    place: int
    cancel: int
    batches: int
    requests: int
    fills: int
    buy_volume: Decimal
    sell_volume: Decimal
    fees: Decimal
    base_start: Decimal
    base_end: Decimal
    base_min: Decimal
    base_max: Decimal
    realised: Decimal
    unrealised: Decimal
    total: Decimal
    max_drawdown: Decimal
    paused_ms: Mapping[str, int]
    loss_limit_trips: int

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` object."""
        return {
            "passes": self.passes,
            "wakes": dict(self.wakes),
            "order_operations": {"place": self.place, "cancel": self.cancel},
            "batches": self.batches,
            "requests": self.requests,
            "fills": {"count": self.fills, "buy_volume": _d(self.buy_volume), "sell_volume": _d(self.sell_volume)},
            "fees": _d(self.fees),
            "inventory": {
                "base_start": _d(self.base_start),
                "base_end": _d(self.base_end),
                "base_min": _d(self.base_min),
                "base_max": _d(self.base_max),
            },
            "pnl": {
                "realised": _d(self.realised),
                "unrealised": _d(self.unrealised),
                "total": _d(self.total),
                "max_drawdown": _d(self.max_drawdown),
            },
            "paused_seconds": {reason: seconds(ms) for reason, ms in self.paused_ms.items()},
            "loss_limit_trips": self.loss_limit_trips,
        }


def flat_figures(result: ReplayResult) -> dict[str, str]:
    """The ``--json`` figures flattened to ``key.path`` → text, for a table."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), inner)
        else:
            flat[prefix] = str(value)

    walk("", result.to_json())
    return flat


def seconds(ms: int) -> int | float:
    """Milliseconds as seconds: whole when they are, else to the millisecond."""
    return ms // 1000 if ms % 1000 == 0 else round(ms / 1000, 3)


def _d(value: Decimal) -> str:
    return "0" if value == 0 else format_decimal(value)


def render_text(result: ReplayResult, title: str) -> str:
    """The human report of one replay."""
    r = result
    wakes = ", ".join(f"{reason} {count}" for reason, count in r.wakes.items() if count) or "none"
    paused = ", ".join(f"{reason} {seconds(ms)}s" for reason, ms in r.paused_ms.items()) or "never"
    lines = [
        title,
        f"  market       {_duration(r.seconds)} replayed; {r.passes} passes (wake-ups: {wakes})",
        f"  orders       {r.place} placed, {r.cancel} cancelled in {r.batches} batches; {r.requests} requests",
        f"  fills        {r.fills} (bought {_d(r.buy_volume)}, sold {_d(r.sell_volume)}); fees {_d(r.fees)}",
        f"  inventory    base {_d(r.base_start)} → {_d(r.base_end)} (min {_d(r.base_min)}, max {_d(r.base_max)})",
        f"  pnl          total {_d(r.total)} (realised {_d(r.realised)}, unrealised {_d(r.unrealised)}, "
        f"fees {_d(r.fees)}); max drawdown {_d(r.max_drawdown)}",
        f"  paused       {paused}; loss limit trips {r.loss_limit_trips}",
    ]
    if r.failed_passes:
        lines.append(f"  failed       {r.failed_passes} passes ended in an error")
    return "\n".join(lines) + "\n"


VARY_COLUMNS = (
    "passes",
    "place",
    "cancel",
    "requests",
    "fills",
    "bought",
    "sold",
    "fees",
    "pnl",
    "drawdown",
    "base end",
)


def render_rows(key: str, rows: Sequence[tuple[str, ReplayResult]]) -> str:
    """One row per value of ``key`` (``--vary``), columns aligned."""
    table = [(key, *VARY_COLUMNS)]
    for value, r in rows:
        table.append(
            (
                value,
                str(r.passes),
                str(r.place),
                str(r.cancel),
                str(r.requests),
                str(r.fills),
                _d(r.buy_volume),
                _d(r.sell_volume),
                _d(r.fees),
                _d(r.total),
                _d(r.max_drawdown),
                _d(r.base_end),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    out = []
    for row in table:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def _duration(total: int) -> str:
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m" if minutes else ""]
    text = "".join(parts) + (f"{secs}s" if secs or not any(parts) else "")
    return text
