"""Checks of the market-data keys the schema cannot express (the other venue of ``reference``, ``inventory``), and
the builders of their Job values.

Defensive like every cross-check: a value of the wrong shape is the schema's to report, so it is skipped here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from rebalancer.job import Inventory, Reference, ReferenceKind, ReferenceSource
from rebalancer.jobfile.checks import to_decimal, to_seconds
from rebalancer.jobfile.urls import has_userinfo, url_problem
from rebalancer.jobfile.yamlpos import Path, Positions, RawProblem

SANDBOX = "sandbox"
_HUNDRED = Decimal(100)


def market_problems(data: dict[str, Any], positions: Positions) -> list[RawProblem]:
    """Problems of ``reference`` (another venue) and ``inventory``."""
    problems: list[RawProblem] = []

    def add(path: Path, message: str) -> None:
        problems.append(RawProblem(path, message, positions.value(path)))

    reference = data.get("reference")
    if isinstance(reference, dict):
        source = reference.get("source")
        insecure = reference.get("insecure") is True
        if isinstance(source, str) and not has_userinfo(source):  # userinfo: find_secrets reported it
            message = _url_problem(source, allow_sandbox=True, insecure=insecure)
            if message:
                add(("reference", "source"), message)
        elif isinstance(source, dict) and isinstance(source.get("url"), str) and not has_userinfo(source["url"]):
            message = _url_problem(source["url"], allow_sandbox=False, insecure=insecure)
            if message:
                add(("reference", "source", "url"), message)
        if isinstance(source, dict) and "symbol" in reference:
            add(("reference", "symbol"), "a JSON endpoint has no symbol; the pointers say where its prices are")
    inventory = data.get("inventory")
    if isinstance(inventory, dict):
        target, spread = _percent(inventory.get("target_base")), _percent(inventory.get("range"))
        if target is not None and target > _HUNDRED:
            add(("inventory", "target_base"), f"a base share from 0% to 100%, got {target}%")
        if spread is not None and not Decimal(0) < spread <= _HUNDRED:
            add(("inventory", "range"), f"a range above 0% and at most 100%, got {spread}%")
    return problems


def _url_problem(url: str, *, allow_sandbox: bool, insecure: bool) -> str | None:
    """An /open/api base URL (``allow_sandbox``) or a JSON endpoint, by the rules of ``rebalancer.jobfile.urls``."""
    if allow_sandbox and url == SANDBOX:
        return None
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:
        return "not a URL"
    if scheme not in ("http", "https") or not host:
        expected = "an http(s) URL" + (' or "sandbox"' if allow_sandbox else "")
        return f"{expected} (got another scheme or no host)"  # the URL is not echoed: it may hold a token
    return url_problem(url, base=allow_sandbox, insecure=insecure)


def _percent(value: Any) -> Decimal | None:
    if not isinstance(value, str) or not value.strip().endswith("%"):
        return None
    try:
        return to_decimal(value.strip()[:-1])
    except ValueError:
        return None


def build_reference(value: Any) -> Reference:
    """The Reference of a checked ``reference`` value: a market word, a fixed price, or another venue."""
    if isinstance(value, str) and value in {"mid", "bid", "ask", "last"}:
        return Reference(ReferenceKind(value))
    if not isinstance(value, dict):
        return Reference(ReferenceKind.FIXED, to_decimal(value))
    source = value["source"]
    kind = ReferenceKind(value.get("price", "mid"))
    max_age, factor = to_seconds(value.get("max_age", "10s")), to_decimal(value.get("factor", "1"))
    insecure = value.get("insecure") is True
    if isinstance(source, dict):
        external = ReferenceSource(
            url=source["url"],
            bid_pointer=source["bid"],
            ask_pointer=source["ask"],
            last_pointer=source.get("last"),
            max_age_seconds=max_age,
            factor=factor,
            insecure=insecure,
        )
    else:
        external = ReferenceSource(
            url=source, symbol=value.get("symbol"), max_age_seconds=max_age, factor=factor, insecure=insecure
        )
    return Reference(kind, source=external)


def build_inventory(value: Any) -> Inventory | None:
    """The Inventory of a checked ``inventory`` mapping, or None when the job has none."""
    if not isinstance(value, dict):
        return None
    return Inventory(
        target_base=to_decimal(value["target_base"].strip()[:-1]),
        range=to_decimal(value["range"].strip()[:-1]),
    )
