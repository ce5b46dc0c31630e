"""Which stream URLs are accepted: ``wss://`` anywhere, plain ``ws://`` only to this machine unless insecure.

The same rule as the REST ``url`` (plain http only to loopback): market data in clear text can be altered on the
way, and a job would quote around a price someone else wrote.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = ("localhost",)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address, IPv6 without brackets) is this machine's loopback interface."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    if any(c.isspace() for c in url):
        return "a URL holds no white space"
    if parts.scheme == "ws" and not insecure and not is_loopback_host(host):
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
