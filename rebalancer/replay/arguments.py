"""The replay command's own arguments as values: durations, the fee, balances and the window's ends.

Each parser raises ``ConfigError`` with one line naming the option and what it accepts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rebalancer.errors import ConfigError
from rebalancer.jobfile.checks import to_seconds
from rebalancer.replay.market import LATEST_MS, MAX_SPAN_HOURS, MAX_SPAN_MS
from rebalancer.replay.numbers import BadNumber, market_decimal
from rebalancer.replay.timer import to_ms

MAX_LATENCY_MS = 3_600_000
MAX_FEE = Decimal("0.1")


def parse_latency(text: str) -> int:
    """``--latency``: a duration (``0``, ``250ms``, ``2s``) as milliseconds, at most an hour."""
    try:
        seconds = to_seconds(text)
    except ValueError:
        raise ConfigError(f"--latency {text!r}: expected a duration such as 250ms or 2s") from None
    ms = seconds * 1000
    if ms < 0 or ms > MAX_LATENCY_MS or ms != ms.to_integral_value():
        raise ConfigError(f"--latency {text!r}: give whole milliseconds from 0 to 1h")
    return int(ms)


def parse_fee(text: str) -> Decimal:
    """``--fee``: the maker fee as a percent (``0.1%``) or a fraction (``0.001``), from 0 to 10 %."""
    raw = text.strip()
    percent = raw.endswith("%")
    try:
        value = market_decimal(raw[:-1] if percent else raw, "the fee", positive=False)
    except BadNumber as exc:
        raise ConfigError(f"--fee {text!r}: {exc}") from None
    fee = value / 100 if percent else value
    if fee > MAX_FEE:
        raise ConfigError(f"--fee {text!r}: at most 10%")
    return fee


def parse_balances(text: str) -> dict[str, Decimal]:
    """``--balances COIN=AMOUNT,…`` (coins any case, each once, amounts zero or more)."""
    balances: dict[str, Decimal] = {}
    for part in text.split(","):
        coin, sep, amount = part.partition("=")
        coin = coin.strip().lower()
        if not sep or not coin.isalnum() or len(coin) > 20:
            raise ConfigError(f"--balances {text!r}: {part.strip()!r} is not COIN=AMOUNT")
        if coin in balances:
            raise ConfigError(f"--balances {text!r}: {coin} given twice")
        try:
            balances[coin] = market_decimal(amount, f"the amount of {coin}", positive=False)
        except BadNumber as exc:
            raise ConfigError(f"--balances {text!r}: {exc}") from None
    return balances


def parse_moment(text: str, option: str) -> tuple[int, bool]:
    """``--from``/``--to``: an ISO 8601 time (UTC unless it says) as epoch ms, or a duration from the market's
    first event (``90s``, ``30m``, ``2h``); (ms, True when relative).

    Bounded like the market itself: a duration of at most ``MAX_SPAN_HOURS``, a time before ``LATEST_MS`` (later
    ones would run the timer past the last date there is)."""
    raw = text.strip()
    try:
        offset = to_seconds(raw) if raw and raw[-1] in "smh" else None
    except ValueError:
        offset = None
    if offset is not None and offset >= 0:
        if offset * 1000 > MAX_SPAN_MS:
            raise ConfigError(f"{option} {text!r}: a duration from the start is at most {MAX_SPAN_HOURS}h")
        return int(offset * 1000), True
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"{option} {text!r}: expected a time such as 2026-01-31T12:00Z or a duration from the start such as 30m"
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    ms = to_ms(moment)
    if ms >= LATEST_MS:
        raise ConfigError(f"{option} {text!r}: expected a time before 9000-01-01T00:00Z")
    return ms, False
