"""The rules every URL of a job file keeps, checked at validation so that no pass (or notifier) meets a bad one.

A URL names where to connect and nothing else: credentials written into it (``user:pass@``) are refused in every
URL of the file (``rebalancer.jobfile.checks.find_secrets``); an ``/open/api`` base URL carries no query or
fragment; plain http reaches only this machine unless the section says ``insecure: true``; the host is a host
name, an IPv4 address or a bracketed IPv6 address, the port 1 to 65535. A JSON endpoint or webhook may need a
token in its query: such values are registered as secrets (``register_query_secrets``) so that logs, errors and
the state store never show them, exactly as keys read from the environment; messages name a URL by its host.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rebalancer.jobfile.yamlpos import Path, Positions, RawProblem, looks_like_secret
from rebalancer.logs import register_secret

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_LOOPBACK_NAMES = frozenset({"localhost"})
_CREDENTIAL_PARAMETER = re.compile(r"key|token|secret|pass|pwd|auth|sig|cred|session", re.IGNORECASE)


def has_userinfo(value: str) -> bool:
    """True when ``value`` is a URL (``scheme://...``) whose authority holds ``user[:password]@``."""
    if not _SCHEME.match(value):
        return False
    authority = value.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    return "@" in authority


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def url_problem(url: str, *, base: bool, insecure: bool | None) -> str | None:
    """Why ``url`` is not a usable http(s) URL, or None.

    ``base``: an ``/open/api`` base URL (no query, no fragment). ``insecure`` None: plain http is allowed to any
    host; False: only to this machine; True: anywhere (the section said ``insecure: true``).
    """
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "a URL holds no spaces, line breaks or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return f"not a URL ({error})"
    if parts.scheme not in ("http", "https"):
        return "expected an http:// or https:// URL"
    host = parts.hostname or ""
    if not host:
        return "the URL names no host"
    problem = _host_problem(host)
    if problem:
        return problem
    if port == 0:
        return "the port must be 1 to 65535"
    if base and (parts.query or parts.fragment or url.endswith(("?", "#"))):
        return "a base URL carries no query or fragment"
    if insecure is False and parts.scheme == "http" and not is_loopback(host):
        return "plain http to a host other than this machine is readable on the way; use https or insecure: true"
    return None


def _host_problem(host: str) -> str | None:
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    try:
        labels = [label.encode("idna").decode("ascii") for label in labels]
    except UnicodeError:
        return f"{host!r} is not a host name"
    if not all(_LABEL.fullmatch(label) for label in labels):
        return f"{host!r} is not a host name"
    return None


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
