"""The rules every URL of a job file keeps, checked at validation so that no pass (or notifier) meets a bad one.

A URL names where to connect and nothing else: credentials written into it (``user:pass@``) are refused in every
URL of the file (``rebalancer.jobfile.checks.find_secrets``); an ``/open/api`` base URL carries no query or
fragment; plain http reaches only this machine unless the section says ``insecure: true``; the host is a host
name, an IPv4 address or a bracketed IPv6 address, the port 1 to 65535. A JSON endpoint or webhook may need a
token in its query: such values are registered as secrets (``checks.register_query_secrets``) so that logs, errors and
the state store never show them, exactly as keys read from the environment; messages name a URL by its host.

A market stream URL is ``wss://`` anywhere and plain ``ws://`` only to this machine unless insecure, as the REST
``url``: market data in clear text can be altered on the way, and a job would quote around a price someone else
wrote.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_LOOPBACK_NAMES = frozenset({"localhost"})


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


def stream_url_problem(url: str, *, insecure: bool = False) -> str | None:
    """What is wrong with ``url`` as a market stream URL, in one line; None when it may be used.

    The line shows the URL as ``display_url`` does: a token in its query never reaches an error.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        return f"not a URL: {exc}"
    if "@" in parts.netloc:
        return "credentials must not be written into a URL (user:password@); it would be shown and stored"
    shown = display_url(url)
    if parts.scheme not in ("ws", "wss"):
        return f"{shown!r} is not a websocket URL (wss://host/kline-api/ws)"
    if not host:
        return f"{shown!r} names no host"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "a URL holds no spaces, line breaks or control characters"
    if parts.scheme == "ws" and not insecure and not is_loopback(host):
        return "plain ws:// to a host other than this machine carries market data in clear text; use wss:// or insecure"
    return None


def display_url(url: str) -> str:
    """``url`` as messages and logs may show it: without credentials (``user:pass@``) and with the query's values
    hidden (``?token=…`` may be a credential), scheme, host, port and path kept."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "(a URL that cannot be read)"
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    if port is not None:
        shown += f":{port}"
    return f"{parts.scheme}://{shown}{parts.path}" + ("?…" if parts.query else "")


def check_stream_url(url: str, *, insecure: bool = False) -> str:
    """``url`` when it may be used as a stream URL; ValueError saying why otherwise."""
    problem = stream_url_problem(url, insecure=insecure)
    if problem is not None:
        raise ValueError(problem)
    return url
