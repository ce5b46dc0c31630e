"""The plan's JSON form, both ways: ``plan_to_json`` for ``plan --json`` / ``--out`` and ``plan_from_json`` for
``apply --plan FILE``.

The document is the "Plan JSON" of docs/architecture.md (format_version "1", schemas/plan.schema.json). Reading
refuses anything else with a ``ConfigError`` naming the key that is wrong, before a single order is sent. The
codec lives beside ``rebalancer.core.plan`` rather than inside it, so the plan value knows nothing of JSON.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from rebalancer.core import diff
from rebalancer.core.plan import ACTIONS, FORMAT_VERSION, PAUSED_BY, Action, Plan, order_action
from rebalancer.errors import ConfigError
from rebalancer.job import Ownership
from rebalancer.models import Side, format_decimal
from rebalancer.vocab import ActionKind, CancelReason, PausedBy

_DECIMAL_TEXT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_DIGITS = 28  # every later step rounds in 28 digits: a price or volume with more could only fail it
_SHOWN = 40


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as its JSON document (format_version "1"), plus extra keys that consumers may ignore."""
    actions = []
    for a in plan.actions:
        row: dict[str, Any] = {"action": a.action}
        if a.order_id is not None:
            row["order_id"] = a.order_id
        if a.level is not None:
            row["level"] = a.level
        row.update(side=a.side.value, price=plan.format_price(a.price), volume=plan.format_volume(a.volume))
        if a.reason is not None:
            row["reason"] = a.reason
        actions.append(row)
    return {
        "format_version": FORMAT_VERSION,
        "job": plan.job,
        "symbol": plan.symbol,
        "reference_price": plan.format_price(plan.reference_price),
        "fingerprint": plan.fingerprint,
        "actions": actions,
        "summary": plan.summary,
        "warnings": list(plan.warnings),
        "best_bid": None if plan.best_bid is None else plan.format_price(plan.best_bid),
        "best_ask": None if plan.best_ask is None else plan.format_price(plan.best_ask),
        "price_precision": plan.price_places,
        "amount_precision": plan.volume_places,
        "unowned_orders": plan.unowned_orders,
        "pending_orders": plan.pending_orders,
        "job_hash": plan.job_hash,
        "paused": plan.paused,
        "paused_by": plan.paused_by,
        **({} if plan.loss is None else {"loss": plan.loss.to_dict(plan.price_places)}),
        **({} if plan.blind is None else {"blind": plan.blind.to_dict()}),
        "ownership": plan.ownership.value,
        "inventory": None if plan.inventory is None else plan.inventory.to_json_dict(),
        "observed_reference": None if plan.observed_reference is None else format_decimal(plan.observed_reference),
        "dropped": [
            {
                "level": d.level,
                "side": d.side.value,
                "reason": d.reason,
                "price": None if d.price is None else plan.format_price(d.price),
                "volume": None if d.volume is None else plan.format_volume(d.volume),
            }
            for d in plan.dropped
        ],
    }


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
    if not isinstance(value, str) or not _DECIMAL_TEXT.fullmatch(value):  # "$" alone lets a final "\n" in
        raise _bad(f"{where}{key}", f'expected a decimal string such as "30000.00", got {shown(value)}')
    if len(value.replace(".", "").lstrip("0")) > _DIGITS:
        raise _bad(f"{where}{key}", f"more than {_DIGITS} digits, which no price or volume holds: {shown(value)}")
    return Decimal(value)


def shown(value: object, *, within: int = _SHOWN) -> str:
    """A value for a message, cut short past ``within`` characters: a saved plan may hold a million digits."""
    text = repr(value)
    return text if len(text) <= within else f"{text[:_SHOWN]}… ({len(text)} characters)"


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
    reason = _text(row, "reason", f"{where}.", optional=kind != ActionKind.CANCEL)
    if kind == ActionKind.CANCEL and reason not in diff.REASONS:
        raise _bad(f"{where}.reason", f"unknown reason {reason!r}")
    price = _decimal(row, "price", f"{where}.")
    volume = _decimal(row, "volume", f"{where}.")
    assert price is not None and volume is not None
    if kind == ActionKind.PLACE and (price <= 0 or volume <= 0):
        raise _bad(where, "a placement needs a positive price and volume")
    order_id = _text(row, "order_id", f"{where}.", optional=kind == ActionKind.PLACE)
    level = _text(row, "level", f"{where}.", optional=kind == ActionKind.CANCEL)
    try:
        cancel_reason = None if reason is None else CancelReason(reason)
        return Action(kind, Side(side), price, volume, order_id=order_id, level=level, reason=cancel_reason)
    except ValueError as exc:
        raise _bad(where, str(exc)) from None


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    """The Plan of a saved document; raises ``ConfigError`` naming what is wrong."""
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
    ownership = data.get("ownership", Ownership.TRACKED.value)  # plans saved before the key existed
    if ownership not in tuple(Ownership):
        raise _bad("ownership", f"expected one of {', '.join(Ownership)}, got {ownership!r}")
    paused_by = data.get("paused_by")
    if paused_by is not None and paused_by not in PAUSED_BY:
        raise _bad("paused_by", f"expected null or one of {', '.join(PAUSED_BY)}, got {paused_by!r}")
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
        paused=_text(data, "paused", "", optional=True),
        observed_reference=_decimal(data, "observed_reference", "", optional=True),
        ownership=Ownership(ownership),
        paused_by=None if paused_by is None else PausedBy(paused_by),
    )
    summary = data.get("summary")
    if summary is not None and summary != plan.summary:
        raise _bad("summary", f"{summary!r} does not match the actions ({plan.summary!r})")
    return plan
