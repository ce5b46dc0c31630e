"""The checks every sandbox request goes through, as strict as the real exchanges: parameters, signature, time
window.

Signing (OPEN_API.md): every received parameter except ``sign``, sorted by name, concatenated as ``name +
value``, the secret appended, MD5 of the UTF-8 bytes in lower-case hex. The server hashes the raw received
strings and compares exactly, so an upper-case signature or a re-formatted value is refused (``100005``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping

from rebalancer.sandbox.book import Reject

SECONDS_MAGNITUDE = 100_000_000_000
"""A ``time`` below this is seconds (in milliseconds it would be 1973), at or above it milliseconds."""


def sign(params: Mapping[str, str], secret: str) -> str:
    """The signature of ``params`` (``sign`` itself excluded) under ``secret``."""
    text = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign")
    return hashlib.md5((text + secret).encode("utf-8")).hexdigest()


def required(params: Mapping[str, str], name: str) -> str:
    """The value of a required parameter; absent or empty is ``100004`` (the docs forbid empty parameters)."""
    value = params.get(name, "")
    if value == "":
        raise Reject("100004", f"missing parameter {name}")
    return value


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    """A positive integer parameter, ``default`` when absent; anything else is ``100004``."""
    value = params.get(name)
    if value is None:
        return default
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise Reject("100004", f"{name} must be a positive integer")
    return int(value)


def time_ms(value: str) -> int:
    """The request ``time`` in milliseconds: digits only, seconds or milliseconds told apart by magnitude."""
    if not value.isascii() or not value.isdigit():
        raise Reject("100004", "time must be an integer timestamp")
    stamp = int(value)
    return stamp * 1000 if stamp < SECONDS_MAGNITUDE else stamp


def verify_signed(
    params: Mapping[str, str], secret_for: Callable[[str], str | None], now_ms: int, window_s: int
) -> str:
    """Check a private request's credentials and return its ``api_key``.

    Missing ``api_key``/``time``/``sign`` → ``100004``; unknown key or wrong signature → ``100005``;
    a ``time`` more than ``window_s`` seconds away from ``now_ms`` → ``100008``.
    """
    api_key = required(params, "api_key")
    stamp = time_ms(required(params, "time"))
    given = required(params, "sign")
    secret = secret_for(api_key)
    if secret is None or not hmac.compare_digest(given.encode(), sign(params, secret).encode()):
        raise Reject("100005", "sign error")
    if abs(now_ms - stamp) > window_s * 1000:
        raise Reject("100008", "time expired: request time is outside the accepted window")
    return api_key


def is_loopback(remote_addr: str | None) -> bool:
    """Whether a client address is the local host (127.0.0.0/8, ::1, or IPv4 loopback mapped into IPv6)."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback
