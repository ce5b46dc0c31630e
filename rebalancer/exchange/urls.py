"""The exchange URL rules: what a base URL may be, and the Host header (signed by HMAC) it gives."""

from __future__ import annotations

from urllib.parse import urlsplit

from rebalancer.errors import ConfigError
from rebalancer.jobfile.urls import is_loopback


def check_base_url(base_url: str, *, insecure: bool = False) -> str:
    """The base URL without a trailing slash; ``http://`` only for loopback hosts unless ``insecure``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"exchange URL must be http(s)://host[/prefix], got {base_url!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError("exchange URL must not carry a query, a fragment or credentials")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        raise ConfigError(f"plain http is allowed only for loopback hosts, not {parts.hostname!r}")
    return base_url.rstrip("/")


def host_header(base_url: str) -> str:
    """The Host header for ``base_url``: the host in lower case, with its port unless it is the scheme's default."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"
