"""The Plan value: what one pass would do, in its final order, with a fingerprint of its inputs.

``compute_plan`` chains ``ladder.build`` → ``diff.reconcile`` → ``funding.fund`` and freezes the result.
``plan`` and ``apply`` both call it; only ``apply`` hands the plan's ``batches()`` to the executor. The JSON
form is DESIGN.md's "Plan JSON" (format_version "1"), read back by ``Plan.from_json_dict`` for ``apply --plan
FILE``; the human form lives in ``rebalancer.render``.

Action order: cancels, then placements, then keeps; inside each group BUY before SELL and the level nearest
the reference first (buys by descending price, sells by ascending price), then by order id / level name.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rebalancer import diff, funding, ladder
from rebalancer.errors import ConfigError
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Order, Side, SymbolRules, Target, format_decimal

FORMAT_VERSION = "1"
BATCH_LIMIT = 1000
ACTIONS = ("cancel", "place", "keep")


@dataclass(frozen=True, slots=True)
class Action:
    """One line of the plan. Cancels and keeps name an ``order_id``; places and keeps name a ``level``.

    ``volume`` is what rests (or will rest) on the book: a target's volume, an open order's remaining volume.
    """

    action: str
    side: Side
    price: Decimal
    volume: Decimal
    order_id: str | None = None
    level: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        if self.action != "place" and not self.order_id:
            raise ValueError(f"a {self.action} action needs an order_id")
        if self.action != "cancel" and not self.level:
            raise ValueError(f"a {self.action} action needs a level")
        if self.action == "cancel" and self.reason not in diff.REASONS:
            raise ValueError(f"unknown cancel reason {self.reason!r}")


@dataclass(frozen=True, slots=True)
class Batch:
    """One mass_replaceV2 request's worth of work: at most ``limit`` cancels and ``limit`` placements."""

    cancel_ids: tuple[str, ...]
    place: tuple[Target, ...]


def _action_key(a: Action) -> tuple[object, ...]:
    nearest = -a.price if a.side is Side.BUY else a.price
    ident = a.order_id or ""
    return (
        ACTIONS.index(a.action),
        0 if a.side is Side.BUY else 1,
        nearest,
        (0, int(ident)) if ident.isdigit() else (1, 0),
        ident,
        a.level or "",
    )


def order_action(a: Sequence[Action]) -> tuple[Action, ...]:
    """The actions in the plan's final order (see the module docstring)."""
    return tuple(sorted(a, key=_action_key))


@dataclass(frozen=True, slots=True)
class Plan:
    """A frozen plan. ``price_places``/``volume_places`` are the symbol's precisions, used to format it."""

    job: str
    symbol: str
    reference_price: Decimal
    best_bid: Decimal | None
    best_ask: Decimal | None
    fingerprint: str
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    price_places: int = 0
    volume_places: int = 0
    unowned_orders: int = 0
    pending_orders: int = 0
    job_hash: str = ""
    dropped: tuple[ladder.Dropped, ...] = field(default=())

    @property
    def summary(self) -> dict[str, int]:
        """Counts of place / cancel / keep actions."""
        return {name: sum(1 for a in self.actions if a.action == name) for name in ("place", "cancel", "keep")}

    @property
    def has_changes(self) -> bool:
        """True when the plan would cancel or place anything."""
        return any(a.action != "keep" for a in self.actions)

    @property
    def cancel_ids(self) -> tuple[str, ...]:
        """Ids of the orders to cancel, in plan order."""
        return tuple(a.order_id for a in self.actions if a.action == "cancel" and a.order_id)

    @property
    def placements(self) -> tuple[Target, ...]:
        """The targets to place, in plan order."""
        return tuple(
            Target(a.level, a.side, a.price, a.volume) for a in self.actions if a.action == "place" and a.level
        )

    def batches(self, limit: int = BATCH_LIMIT) -> tuple[Batch, ...]:
        """Split into mass_replaceV2 batches of ≤ ``limit`` cancels and ≤ ``limit`` placements.

        Cancels fill the earliest batches; placements start only in the batch that carries the last cancels,
        so every placement is sent after all the cancels whose released funds ``funding.fund`` counted on.
        """
        if limit < 1:
            raise ValueError("batch limit must be positive")
        cancels = self.cancel_ids
        places = self.placements
        cancel_chunks = [cancels[i : i + limit] for i in range(0, len(cancels), limit)]
        place_chunks = [places[i : i + limit] for i in range(0, len(places), limit)]
        start = max(len(cancel_chunks) - 1, 0)
        count = max(len(cancel_chunks), start + len(place_chunks))
        out = []
        for k in range(count):
            c = cancel_chunks[k] if k < len(cancel_chunks) else ()
            p = place_chunks[k - start] if 0 <= k - start < len(place_chunks) else ()
            out.append(Batch(tuple(c), tuple(p)))
        return tuple(out)

    def format_price(self, value: Decimal) -> str:
        """A price with the symbol's places (or as is, if it has more: formatting never rounds)."""
        return _fmt(value, self.price_places)

    def format_volume(self, value: Decimal) -> str:
        """A volume with the symbol's places (or as is, if it has more)."""
        return _fmt(value, self.volume_places)

    def to_json_dict(self) -> dict[str, Any]:
        """DESIGN.md "Plan JSON", format_version "1", plus extra keys that consumers may ignore."""
        actions = []
        for a in self.actions:
            row: dict[str, Any] = {"action": a.action}
            if a.order_id is not None:
                row["order_id"] = a.order_id
            if a.level is not None:
                row["level"] = a.level
            row.update(side=a.side.value, price=self.format_price(a.price), volume=self.format_volume(a.volume))
            if a.reason is not None:
                row["reason"] = a.reason
            actions.append(row)
        return {
            "format_version": FORMAT_VERSION,
            "job": self.job,
            "symbol": self.symbol,
            "reference_price": self.format_price(self.reference_price),
            "fingerprint": self.fingerprint,
            "actions": actions,
            "summary": self.summary,
            "warnings": list(self.warnings),
            "best_bid": None if self.best_bid is None else self.format_price(self.best_bid),
            "best_ask": None if self.best_ask is None else self.format_price(self.best_ask),
            "price_precision": self.price_places,
            "amount_precision": self.volume_places,
            "unowned_orders": self.unowned_orders,
            "pending_orders": self.pending_orders,
            "job_hash": self.job_hash,
            "dropped": [
                {
                    "level": d.level,
                    "side": d.side.value,
                    "reason": d.reason,
                    "price": None if d.price is None else self.format_price(d.price),
                    "volume": None if d.volume is None else self.format_volume(d.volume),
                }
                for d in self.dropped
            ],
        }

    @staticmethod
    def from_json_dict(data: Mapping[str, Any]) -> Plan:
        """Read a saved plan (``to_json_dict`` output) back; raises ``ConfigError`` naming what is wrong."""
        return _from_json(data)


def _fmt(value: Decimal, places: int) -> str:
    try:
        return format_decimal(value, places)
    except ValueError:
        return format_decimal(value)


def _canonical(value: Decimal) -> str:
    return format_decimal(value.normalize()) if value else "0"


def orders_fingerprint(job_hash: str, orders: Sequence[Order]) -> str:
    """``sha256:`` over the job file hash and a canonical form of the open orders (sorted by id).

    Recompute it from freshly read orders to tell whether a saved plan is stale.
    """
    rows = sorted(
        [
            o.id,
            o.side.value,
            _canonical(o.price),
            _canonical(o.volume),
            _canonical(o.deal_volume),
            int(o.status),
        ]
        for o in orders
    )
    text = json.dumps({"job": job_hash, "orders": rows}, separators=(",", ":"), sort_keys=True)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _owned(orders: Sequence[Order], owned_ids: frozenset[str] | None) -> list[Order]:
    return [o for o in orders if owned_ids is None or o.id in owned_ids]


def compute_plan(job: Job, snapshot: MarketSnapshot, owned_ids: frozenset[str] | None) -> Plan:
    """The plan of one pass: ladder (with guards) → diff → funding check → Plan.

    ``owned_ids`` is the set of order ids the job placed (ownership ``tracked``), or None for every open order
    of the symbol. Unowned orders are invisible to the diff and the funding check; the plan only counts them.
    """
    rules: SymbolRules = snapshot.rules
    built = ladder.build(job, snapshot)
    ref = built.reference_price
    owned = _owned(snapshot.open_orders, owned_ids)
    result = diff.reconcile(
        built.targets,
        owned,
        job.tolerance,
        reference_price=ref,
        band=job.limits.band,
        over_limit=built.over_limit,
    )
    funded = funding.fund(result.place, [o for o, _ in result.cancel], snapshot, ref)
    actions = [
        Action("cancel", o.side, o.price, o.remaining, order_id=o.id, reason=reason) for o, reason in result.cancel
    ]
    actions += [Action("place", t.side, t.price, t.volume, level=t.level) for t in funded.placements]
    actions += [Action("keep", o.side, o.price, o.remaining, order_id=o.id, level=t.level) for o, t in result.keep]
    warnings = list(built.warnings) + list(funded.warnings)
    if result.pending:
        warnings.append(
            f"{len(result.pending)} order(s) already pending cancellation were left alone: "
            + ", ".join(o.id for o in result.pending)
        )
    return Plan(
        job=job.name,
        symbol=job.symbol,
        reference_price=ref,
        best_bid=snapshot.ticker.bid,
        best_ask=snapshot.ticker.ask,
        fingerprint=orders_fingerprint(job.source_hash, snapshot.open_orders),
        actions=order_action(actions),
        warnings=tuple(warnings),
        price_places=rules.price_precision,
        volume_places=rules.amount_precision,
        unowned_orders=len(snapshot.open_orders) - len(owned),
        pending_orders=len(result.pending),
        job_hash=job.source_hash,
        dropped=built.dropped + funded.dropped,
    )


_DECIMAL_TEXT = re.compile(r"^[0-9]+(\.[0-9]+)?$")


def _bad(where: str, message: str) -> ConfigError:
    return ConfigError(f"saved plan: {where}: {message}")


def _text(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> str | None:
    value = data.get(key)
    if optional and (value is None or value == ""):
        return None
    if not isinstance(value, str) or not value:
        raise _bad(f"{where}{key}", "expected a non-empty string")
    return value


def _decimal(data: Mapping[str, Any], key: str, where: str, *, optional: bool = False) -> Decimal | None:
    value = data.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not _DECIMAL_TEXT.match(value):
        raise _bad(f"{where}{key}", f'expected a decimal string such as "30000.00", got {value!r}')
    return Decimal(value)


def _places(text: str) -> int:
    return len(text.partition(".")[2])


def _action_from_json(row: Any, where: str) -> Action:
    if not isinstance(row, Mapping):
        raise _bad(where, "expected an object")
    kind = row.get("action")
    if kind not in ACTIONS:
        raise _bad(f"{where}.action", f"expected one of {', '.join(ACTIONS)}, got {kind!r}")
    side = row.get("side")
    if side not in ("BUY", "SELL"):
        raise _bad(f"{where}.side", f"expected BUY or SELL, got {side!r}")
    reason = _text(row, "reason", f"{where}.", optional=kind != "cancel")
    if kind == "cancel" and reason not in diff.REASONS:
        raise _bad(f"{where}.reason", f"unknown reason {reason!r}")
    price = _decimal(row, "price", f"{where}.")
    volume = _decimal(row, "volume", f"{where}.")
    assert price is not None and volume is not None
    if kind == "place" and (price <= 0 or volume <= 0):
        raise _bad(where, "a placement needs a positive price and volume")
    order_id = _text(row, "order_id", f"{where}.", optional=kind == "place")
    level = _text(row, "level", f"{where}.", optional=kind == "cancel")
    try:
        return Action(kind, Side(side), price, volume, order_id=order_id, level=level, reason=reason)
    except ValueError as exc:
        raise _bad(where, str(exc)) from None


def _from_json(data: Mapping[str, Any]) -> Plan:
    if not isinstance(data, Mapping):
        raise _bad("top level", "expected a JSON object")
    if data.get("format_version") != FORMAT_VERSION:
        raise _bad("format_version", f'expected "{FORMAT_VERSION}", got {data.get("format_version")!r}')
    fingerprint = _text(data, "fingerprint", "")
    assert fingerprint is not None
    if not fingerprint.startswith("sha256:"):
        raise _bad("fingerprint", 'expected "sha256:..."')
    rows = data.get("actions")
    if not isinstance(rows, list):
        raise _bad("actions", "expected a list")
    actions = [_action_from_json(row, f"actions[{i}]") for i, row in enumerate(rows)]
    warnings = data.get("warnings", [])
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        raise _bad("warnings", "expected a list of strings")
    counts: dict[str, int] = {}
    for precision in ("price_precision", "amount_precision", "unowned_orders", "pending_orders"):
        value = data.get(precision, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _bad(precision, "expected a non-negative integer")
        counts[precision] = value
    texts = [row for row in rows if isinstance(row, Mapping)]
    price_places = counts["price_precision"] or max((_places(r["price"]) for r in texts), default=0)
    volume_places = counts["amount_precision"] or max((_places(r["volume"]) for r in texts), default=0)
    plan = Plan(
        job=_text(data, "job", "") or "",
        symbol=_text(data, "symbol", "") or "",
        reference_price=_decimal(data, "reference_price", "") or Decimal(0),
        best_bid=_decimal(data, "best_bid", "", optional=True),
        best_ask=_decimal(data, "best_ask", "", optional=True),
        fingerprint=fingerprint,
        actions=order_action(actions),
        warnings=tuple(warnings),
        price_places=price_places,
        volume_places=volume_places,
        unowned_orders=counts["unowned_orders"],
        pending_orders=counts["pending_orders"],
        job_hash=_text(data, "job_hash", "", optional=True) or "",
    )
    summary = data.get("summary")
    if summary is not None and summary != plan.summary:
        raise _bad("summary", f"{summary!r} does not match the actions ({plan.summary!r})")
    return plan
