"""Command-line value types that click does not have: a point in time given as an age or a date."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

_AGE = re.compile(r"(\d+)\s*(s|m|h|d|w)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """``1h`` (that long before ``now``; s, m, h, d, w; combinable as ``1h30m``) or an ISO 8601 time (UTC unless it
    says otherwise) as an aware datetime; ValueError naming both forms otherwise."""
    compact = text.strip().lower()
    if compact and _AGE.sub("", compact) == "":
        seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _AGE.findall(compact))
        return now - timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is neither an age such as 30m, 1h or 2d nor a time such as 2026-01-31T12:00Z"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Since(click.ParamType):
    """``--since``: an age (``1h``) or an ISO 8601 time, converted to an aware UTC datetime."""

    name = "AGE|TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        """The moment ``value`` names; a usage error saying both accepted forms otherwise."""
        if isinstance(value, datetime):
            return value
        try:
            return parse_since(str(value), datetime.now(UTC))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def parse_duration(text: str) -> int:
    """``30s``, ``5m``, ``1h30m`` (s, m, h, d, w) as whole seconds, more than zero; ValueError saying the form."""
    compact = text.strip().lower()
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _AGE.findall(compact))
    if not compact or _AGE.sub("", compact) != "" or seconds <= 0:
        raise ValueError(f"{text!r} is not a duration such as 30s, 5m or 1h30m")
    return seconds
