"""Job file checks the schema cannot express, and the value parsers they share with the Job builder.

Two passes run around the schema check (see ``rebalancer.jobfile.load``): ``find_secrets`` before it, so that a
pasted credential is reported once, in words that never echo it, and the schema check is told to keep quiet
about that path; ``cross_check`` after it, for rules that tie several keys together (a cron expression
APScheduler accepts, buy levels that stay above zero price, sizes that stay positive, plain http only where
allowed, percentages of a price that stay within 100%).

Every check is defensive: a value of the wrong shape is the schema's to report, so a check skips it.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rebalancer.job import Amount, Rate
from rebalancer.jobfile.urls import has_userinfo, is_loopback, stream_url_problem, url_problem
from rebalancer.jobfile.yamlpos import Path, Positions, RawProblem, format_path, looks_like_secret, walk
from rebalancer.logs import register_secret

SECRET_MESSAGE = "looks like a secret; give the name of an environment variable that holds it"
_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
_SECRET_KEYS = frozenset(
    {
        "apikey", "secret", "secretkey", "apisecret", "password", "passwd", "token", "accesstoken",
        "authtoken", "privatekey", "passphrase", "accesskey", "secretaccesskey", "credentials",
    }
)  # fmt: skip
_UNITS = {"ms": Decimal("0.001"), "s": Decimal(1), "m": Decimal(60), "h": Decimal(3600)}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")
_MARKET_REFERENCES = frozenset({"mid", "bid", "ask", "last"})
MAX_TIMEOUT_S = Decimal(600)
"""``exchange.timeout`` above this would let one request stall a pass (and a daemon's job) for too long."""


def to_decimal(value: Any) -> Decimal:
    """An exact Decimal from a YAML number (int or Decimal) or a quoted decimal; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"not a number: {type(value).__name__}")
    try:
        result = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation as error:
        raise ValueError("not a decimal number") from error
    if not result.is_finite():
        raise ValueError("not a finite number")
    return result


def to_amount(value: Any) -> Amount:
    """An Amount from ``"0.5%"`` (percent) or a bare/quoted number (absolute); ValueError otherwise."""
    if isinstance(value, str) and value.strip().endswith("%"):
        return Amount(to_decimal(value.strip()[:-1]), percent=True)
    return Amount(to_decimal(value))


def to_seconds(value: Any) -> Decimal:
    """Seconds from ``"500ms"``, ``"30s"``, ``"5m"``, ``"1h"`` or a number of seconds; else ValueError."""
    if isinstance(value, str):
        match = _DURATION.fullmatch(value.strip())
        if match is None:
            raise ValueError("not a duration")
        return Decimal(match.group(1)) * _UNITS[match.group(2) or "s"]
    return to_decimal(value)


def to_rate(value: Any) -> Rate:
    """A ``Rate`` from ``"COUNT/DURATION"`` (``"10/1s"``, ``"100/10s"``); else ValueError."""
    count, _, window = str(value).partition("/")
    if not count.strip().isdigit() or int(count) < 1:
        raise ValueError("not a rate")
    seconds = to_seconds(window)
    if seconds <= 0:
        raise ValueError("not a rate")
    return Rate(int(count), seconds)


def find_secrets(data: Any, positions: Positions) -> tuple[list[RawProblem], frozenset[Path]]:
    """Credentials pasted into the file, and the paths the schema check must then stay silent about.

    Reported: keys named like a credential (``api_key``, ``secret``, ``password``, ``token``...) anywhere;
    a credential-variable setting that is not an environment variable name; any text value that looks like a
    long hex or base64 key; credentials embedded in the URL. No message repeats the value.
    """
    problems: list[RawProblem] = []
    silenced: set[Path] = set()
    env_paths = {("exchange", "api_key_env"), ("exchange", "secret_key_env")}
    for path, value in walk(data):
        if path and isinstance(path[-1], str) and _is_secret_key(path[-1]):
            message = (
                f"'{path[-1]}' must not be in a job file: credentials are read from the environment "
                "variables named by exchange.api_key_env and exchange.secret_key_env"
            )
            problems.append(RawProblem(path, message, positions.key(path)))
            silenced.add(path)
        elif path in env_paths and isinstance(value, str):
            if looks_like_secret(value, min_length=16):
                problems.append(RawProblem(path, SECRET_MESSAGE, positions.value(path)))
                silenced.add(path)
            elif not _ENV_NAME.fullmatch(value):
                example = "REBALANCER_API_KEY" if path[-1] == "api_key_env" else "REBALANCER_SECRET_KEY"
                message = f"expected the name of an environment variable such as {example}"
                problems.append(RawProblem(path, message, positions.value(path)))
                silenced.add(path)
        elif path == ("exchange", "url") and isinstance(value, str) and "@" in value:
            message = "credentials must not be written into the URL; name variables in api_key_env/secret_key_env"
            problems.append(RawProblem(path, message, positions.value(path)))
            silenced.add(path)
        elif isinstance(value, str) and has_userinfo(value):
            message = "credentials must not be written into a URL (user:password@); it would be shown and stored"
            problems.append(RawProblem(path, message, positions.value(path)))
            silenced.add(path)
        elif isinstance(value, str) and looks_like_secret(value):
            problems.append(RawProblem(path, SECRET_MESSAGE, positions.value(path)))
            silenced.add(path)
        elif path and isinstance(path[-1], str) and looks_like_secret(path[-1]):
            problems.append(RawProblem(path, SECRET_MESSAGE, positions.key(path)))
            silenced.add(path)
    return problems, frozenset(silenced)


def _is_secret_key(key: str) -> bool:
    return key.lower().replace("_", "").replace("-", "") in _SECRET_KEYS


def cross_check(data: dict[str, Any], positions: Positions) -> list[RawProblem]:
    """Rules that span keys or need more than a pattern; only values the schema accepted are looked at."""
    problems: list[RawProblem] = []
    schedule = data.get("schedule")
    if isinstance(schedule, dict) and isinstance(schedule.get("cron"), str):
        message = _cron_problem(schedule["cron"])
        if message:
            problems.append(RawProblem(("schedule", "cron"), message, positions.value(("schedule", "cron"))))
    exchange = data.get("exchange")
    if isinstance(exchange, dict) and isinstance(exchange.get("url"), str):
        message = _plain_http_problem(exchange["url"], exchange.get("insecure") is True)
        if message:
            problems.append(RawProblem(("exchange", "url"), message, positions.value(("exchange", "url"))))
    if isinstance(exchange, dict):
        message = _stream_problem(exchange)
        if message:
            problems.append(RawProblem(("exchange", "stream"), message, positions.value(("exchange", "stream"))))
    problems.extend(_stream_only_problems(data, positions))
    limits = data.get("limits")
    if isinstance(limits, dict) and limits.get("on_blind") == "cancel" and "max_blind" not in limits:
        message = "on_blind: cancel acts after max_blind without a trusted price; give limits.max_blind"
        problems.append(RawProblem(("limits", "on_blind"), message, positions.value(("limits", "on_blind"))))
    if isinstance(exchange, dict) and "timeout" in exchange:
        message = _timeout_problem(exchange["timeout"])
        if message:
            problems.append(RawProblem(("exchange", "timeout"), message, positions.value(("exchange", "timeout"))))
    problems.extend(_percent_problems(data, positions))
    ladder = data.get("ladder")
    if isinstance(ladder, dict):
        for side in ("buy", "sell"):
            if isinstance(ladder.get(side), dict):
                problems.extend(_side_problems(side, ladder[side], data.get("reference", "mid"), positions))
    return problems


# Percentages that are a share of one price and mean nothing past all of it: (path, what the share is of, hint).
_AT_MOST_ALL: tuple[tuple[tuple[str, str], str, str], ...] = (
    (("tolerance", "price"), "a price tolerance is a share of the target price", ""),
    (("limits", "band"), "a band is a share of the reference price", ""),
    (("limits", "max_jump"), "a jump is a share of the last reference price", " (0% turns the check off)"),
)


def _percent_problems(data: dict[str, Any], positions: Positions) -> list[RawProblem]:
    """Percentages above 100% where 100% is already everything: a tolerance, a band, a jump."""
    problems: list[RawProblem] = []
    for path, meaning, hint in _AT_MOST_ALL:
        section = data.get(path[0])
        value = section.get(path[1]) if isinstance(section, dict) else None
        try:
            amount = to_amount(value)
        except (ValueError, TypeError):
            continue  # absent, or the schema's to report
        if amount.percent and amount.value > 100:
            message = f"{amount} is more than 100%: {meaning}; give at most 100%{hint}"
            problems.append(RawProblem(path, message, positions.value(path)))
    return problems


def _cron_problem(expression: str) -> str | None:
    """Why APScheduler would refuse ``expression``, or None when it is a valid 5-field crontab."""
    fields = expression.split()
    if len(fields) != 5:
        return f"a crontab expression has 5 fields (minute hour day month weekday), got {len(fields)}"
    # Imported here: APScheduler is heavy, and only the daemon and this check need it.
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(expression, timezone="UTC")
    except (ValueError, TypeError) as error:
        return f"invalid cron expression: {str(error).splitlines()[0]}"
    return None


def _timeout_problem(value: Any) -> str | None:
    """``exchange.timeout`` must stay at or under ``MAX_TIMEOUT_S`` (the schema checked its shape)."""
    try:
        seconds = to_seconds(value)
    except (ValueError, ArithmeticError):
        return None
    if seconds > MAX_TIMEOUT_S:
        return f"a timeout of at most {MAX_TIMEOUT_S}s (10m), got {value}"
    return None


def _plain_http_problem(url: str, insecure: bool) -> str | None:
    """Plain http is refused unless the host is the loopback interface or ``exchange.insecure`` is true."""
    if insecure or not url.startswith("http://"):
        return None
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return None
    if is_loopback(host):
        return None
    return "plain http to a host other than this machine sends orders in clear text; use https or insecure: true"


def _stream_problem(exchange: dict[str, Any]) -> str | None:
    """``exchange.stream``: a websocket URL as ``stream_url_problem`` allows, or ``sandbox`` beside ``url: sandbox``
    (the embedded sandbox's stream shows only the embedded sandbox's market)."""
    stream = exchange.get("stream")
    if not isinstance(stream, str) or has_userinfo(stream):  # the schema's, or find_secrets', to report
        return None
    if stream == "sandbox":
        url = exchange.get("url", "sandbox")
        return None if url == "sandbox" else "stream: sandbox is the embedded sandbox's market; it needs url: sandbox"
    return stream_url_problem(stream, insecure=exchange.get("insecure") is True)


# Keys that only a market stream reads: (path, what it sets). Without ``exchange.stream`` they would do nothing.
_STREAM_ONLY: tuple[tuple[tuple[str, str], str], ...] = (
    (("exchange", "stream_stale"), "how long the stream's book may stay silent"),
    (("schedule", "min_gap"), "the least time between two passes the stream wakes"),
)


_GIVE_A_STREAM = "give a stream or leave it out"


def _stream_only_problems(data: dict[str, Any], positions: Positions) -> list[RawProblem]:
    """Stream-only keys given without ``exchange.stream``: accepted silently they would do nothing, and the user
    would believe a stream bounds the job's passes when the job only polls."""
    exchange = data.get("exchange")
    if isinstance(exchange, dict) and "stream" in exchange:
        return []  # a stream, or a malformed one that is reported in its own words
    problems: list[RawProblem] = []
    for path, meaning in _STREAM_ONLY:
        section = data.get(path[0])
        if isinstance(section, dict) and path[1] in section:
            message = f"{path[1]} sets {meaning}; without exchange.stream it does nothing: {_GIVE_A_STREAM}"
            problems.append(RawProblem(path, message, positions.value(path)))
    return problems


def _side_problems(side: str, spec: dict[str, Any], reference: Any, positions: Positions) -> list[RawProblem]:
    """Level prices that would reach zero (buy side), sizes that would reach zero, a geometric absolute step.

    A percent distance is checked against any reference: on the buy side, 100% or more below the reference is
    zero or less. An absolute distance can only be checked against a fixed reference, since a market price is
    not known until a pass runs; the ladder guards those at run time.
    """
    base: Path = ("ladder", side)
    problems: list[RawProblem] = []

    def add(key: str, message: str) -> None:
        problems.append(RawProblem((*base, key), message, positions.value((*base, key))))

    try:
        levels, first, step = int(spec["levels"]), to_amount(spec["first"]), to_amount(spec["step"])
    except (KeyError, ValueError, TypeError):
        return problems
    if levels < 1:
        return problems
    geometric = spec.get("spacing") == "geometric"
    if geometric and not step.percent:
        add("step", f'geometric spacing needs a percentage step such as "0.5%", got {step}')
    problems.extend(_size_problems(side, spec, levels, positions))
    if side != "buy" or (geometric and not step.percent):
        return problems
    market = isinstance(reference, str) and reference in _MARKET_REFERENCES
    fixed = None if market else _positive_or_none(reference)
    where = format_path(base)
    if fixed is None:
        if first.percent and first.value >= 100:
            add("first", f"{where}[0] would be {first} below the reference, at or below zero price")
        elif geometric and levels > 1 and step.value >= 100:
            add("step", f"a geometric step of {step} puts {where}[1] at or below zero price")
        elif not geometric and first.percent and step.percent and _reach(first, step, levels) >= 100:
            reach = _reach(first, step, levels)
            add("step", f"{where}[{levels - 1}] would be {reach}% below the reference, at or below zero")
        return problems
    price0 = fixed - first.of(fixed)
    if price0 <= 0:
        add("first", f"{where}[0] would be priced at {price0} (reference {fixed}), at or below zero")
    elif geometric and levels > 1 and step.value >= 100:
        add("step", f"a geometric step of {step} puts {where}[1] at or below zero price")
    elif not geometric and price0 - step.of(fixed) * (levels - 1) <= 0:
        last = price0 - step.of(fixed) * (levels - 1)
        add("step", f"{where}[{levels - 1}] would be priced at {last} (reference {fixed}), at or below zero")
    return problems


def _size_problems(side: str, spec: dict[str, Any], levels: int, positions: Positions) -> list[RawProblem]:
    """A negative ``size_step`` that would bring the last level's size to zero or below."""
    try:
        size, size_step = to_decimal(spec["size"]), to_decimal(spec["size_step"])
    except (KeyError, ValueError, TypeError):
        return []
    last = size + size_step * (levels - 1)
    if size <= 0 or last > 0:
        return []
    path: Path = ("ladder", side, "size_step")
    message = f"ladder.{side}[{levels - 1}] would have size {last}; sizes must stay above 0"
    return [RawProblem(path, message, positions.value(path))]


def _reach(first: Amount, step: Amount, levels: int) -> Decimal:
    return first.value + step.value * (levels - 1)


def _positive_or_none(value: Any) -> Decimal | None:
    try:
        result = to_decimal(value)
    except ValueError:
        return None
    return result if result > 0 else None


_CREDENTIAL_PARAMETER = re.compile(r"key|token|secret|pass|pwd|auth|sig|cred|session", re.IGNORECASE)


def webhook_problems(data: dict[str, Any], positions: Positions) -> list[RawProblem]:
    """The problems of ``notify.webhook`` (the reference's URLs are ``rebalancer.jobfile.market``'s to check)."""
    notify = data.get("notify")
    url = notify.get("webhook") if isinstance(notify, dict) else None
    if not isinstance(url, str) or has_userinfo(url):  # userinfo is find_secrets' to report
        return []
    message = url_problem(url, base=False, insecure=None)
    path: Path = ("notify", "webhook")
    return [RawProblem(path, message, positions.value(path))] if message else []


def register_query_secrets(urls: list[str]) -> None:
    """Register the credentials in the queries of ``urls`` as secrets: logs, errors and the state store never show
    them. A value counts when its name is a credential's (key, token, secret, password, auth, signature) or the
    value looks like a key; an ordinary parameter (``?symbol=btcusdt``) is left alone, or every mention of the
    symbol would be redacted."""
    for url in urls:
        try:
            query = urlsplit(url).query
        except ValueError:
            continue
        for name, value in parse_qsl(query, keep_blank_values=False):
            if _CREDENTIAL_PARAMETER.search(name) or looks_like_secret(value, min_length=16):
                register_secret(value)
