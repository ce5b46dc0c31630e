"""Request signing of the /open/api: the template's MD5, or the HMAC-SHA256 that some deployments recommend.

MD5 (the template): the sorted ``name + value`` pairs with the secret appended, lower-case hex.
HMAC-SHA256: base64 of the HMAC-SHA256, keyed with the secret, of ``METHOD\\nhost\\npath\\nk=v&k=v…`` (the
parameters sorted by name, ``sign`` left out, the host as sent in the Host header, the path as requested, base-URL
prefix included).

The server hashes the raw values it receives, so the strings signed here must be the very strings sent;
callers build every parameter as text first (JSON arrays included) and send the mapping this module returns
unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from rebalancer.vocab import SignMethod


@dataclass(frozen=True, slots=True)
class Target:
    """Where a signed request goes: the HTTP method, the Host header and the path (base-URL prefix included)."""

    method: str
    host: str
    path: str


def _sorted_pairs(params: Mapping[str, str]) -> list[tuple[str, str]]:
    """The signed pairs: ``sign`` and empty values left out, sorted by name in byte order."""
    return sorted(
        ((name, value) for name, value in params.items() if name != "sign" and value != ""),
        key=lambda item: item[0].encode("utf-8"),
    )


def canonical_string(params: Mapping[str, str]) -> str:
    """The MD5-hashed text, without the secret: parameters sorted by name (byte order), ``name + value`` joined.

    ``sign`` is left out and so are empty values, which the template says must never be sent.
    """
    return "".join(name + value for name, value in _sorted_pairs(params))


def hmac_string(params: Mapping[str, str], target: Target) -> str:
    """The HMAC-signed text: ``METHOD\\nhost\\npath\\n`` and the sorted ``name=value`` pairs joined by ``&``."""
    query = "&".join(f"{name}={value}" for name, value in _sorted_pairs(params))
    return f"{target.method.upper()}\n{target.host}\n{target.path}\n{query}"


def sign(params: Mapping[str, str], secret: str) -> str:
    """The lowercase hex MD5 signature of ``params`` under ``secret`` (upper-case hex is refused)."""
    text = canonical_string(params) + secret
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def sign_hmac(params: Mapping[str, str], secret: str, target: Target) -> str:
    """The base64 HMAC-SHA256 signature of ``params`` sent to ``target``, keyed with ``secret``."""
    digest = hmac.new(secret.encode("utf-8"), hmac_string(params, target).encode("utf-8"), hashlib.sha256)
    return base64.b64encode(digest.digest()).decode("ascii")


def signed_params(
    params: Mapping[str, str],
    *,
    api_key: str,
    secret: str,
    time_value: str,
    method: SignMethod = SignMethod.MD5,
    target: Target | None = None,
) -> dict[str, str]:
    """The parameters to send: ``params`` without empty values, plus ``api_key``, ``time`` and their ``sign``.

    Empty values are dropped rather than sent because the server would hash them differently from us.
    HMAC signing needs the request's ``target`` (method, host, path).
    """
    for name, value in params.items():
        if not isinstance(value, str):
            raise TypeError(f"parameter {name!r} must be text before signing, not {type(value).__name__}")
    out = {name: value for name, value in params.items() if value != "" and name != "sign"}
    out["api_key"] = api_key
    out["time"] = time_value
    if method is SignMethod.HMAC_SHA256:
        if target is None:
            raise ValueError("HMAC-SHA256 signing needs the request's method, host and path")
        out["sign"] = sign_hmac(out, secret, target)
    else:
        out["sign"] = sign(out, secret)
    return out


def without_secrets(params: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``params`` fit for logs and the state store: ``api_key`` and ``sign`` removed."""
    return {name: value for name, value in params.items() if name not in ("api_key", "sign")}
