"""The checks every sandbox request goes through, as strict as the real exchanges: parameters, signature, time
window.

Signing (OPEN_API.md): every received parameter except ``sign``, sorted by name, concatenated as ``name +
value``, the secret appended, MD5 of the UTF-8 bytes in lower-case hex. The server hashes the raw received
strings and compares exactly, so an upper-case signature or a re-formatted value is refused (``100005``).
Deployments that recommend HMAC-SHA256 sign ``METHOD\nhost\npath\nk=v&k=v…`` instead (same parameters, sorted,
``name=value`` joined by ``&``; the Host header as received; the full request path), base64 of the digest.
``SIGN_MODES`` says which the server accepts: either, or only one (a deployment that requires HMAC).

The time window refuses only old requests: live deployments accept a ``time`` ahead of their clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from rebalancer.sandbox.book import Reject

SIGN_MODES = ("any", "md5", "hmac-sha256")
"""What the server accepts: either signature, only the template's MD5, or only HMAC-SHA256."""

SECONDS_MAGNITUDE = 100_000_000_000
"""A ``time`` below this is seconds (in milliseconds it would be 1973), at or above it milliseconds."""


def sign(params: Mapping[str, str], secret: str) -> str:
    """The signature of ``params`` (``sign`` itself excluded) under ``secret``."""
    text = "".join(f"{name}{value}" for name, value in sorted(params.items()) if name != "sign")
    return hashlib.md5((text + secret).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Received:
    """The parts of a request that an HMAC signature covers besides its parameters."""

    method: str
    host: str
    path: str


def sign_hmac(params: Mapping[str, str], secret: str, received: Received) -> str:
    """The base64 HMAC-SHA256 signature of ``params`` (``sign`` excluded) as received at ``received``."""
    query = "&".join(f"{name}={value}" for name, value in sorted(params.items()) if name != "sign")
    text = f"{received.method.upper()}\n{received.host}\n{received.path}\n{query}"
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(params: Mapping[str, str], given: str, secret: str, received: Received | None, mode: str) -> bool:
    """Whether ``given`` is a signature of ``params`` that ``mode`` accepts."""
    given_bytes = given.encode()
    if mode in ("any", "md5") and hmac.compare_digest(given_bytes, sign(params, secret).encode()):
        return True
    if mode in ("any", "hmac-sha256") and received is not None:
        return hmac.compare_digest(given_bytes, sign_hmac(params, secret, received).encode())
    return False


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
    params: Mapping[str, str],
    secret_for: Callable[[str], str | None],
    now_ms: int,
    window_s: int,
    *,
    received: Received | None = None,
    mode: str = "any",
) -> str:
    """Check a private request's credentials and return its ``api_key``.

    Missing ``api_key``/``time``/``sign`` → ``100004``; unknown key or a signature ``mode`` does not accept
    (MD5, or HMAC-SHA256 over ``received``) → ``100005``; a ``time`` more than ``window_s`` seconds older than
    ``now_ms`` → ``100008`` (a time ahead of the clock is accepted).
    """
    api_key = required(params, "api_key")
    stamp = time_ms(required(params, "time"))
    given = required(params, "sign")
    secret = secret_for(api_key)
    if secret is None or not signature_matches(params, given, secret, received, mode):
        raise Reject("100005", "sign error")
    if now_ms - stamp > window_s * 1000:
        raise Reject("100008", "time expired: request time is older than the accepted window")
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
