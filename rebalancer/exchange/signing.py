"""Request signing of the /open/api template: MD5 over the sorted ``name + value`` pairs and the secret.

The server hashes the raw values it receives, so the strings signed here must be the very strings sent;
callers build every parameter as text first (JSON arrays included) and send the mapping this module returns
unchanged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def canonical_string(params: Mapping[str, str]) -> str:
    """The hashed text, without the secret: parameters sorted by name (byte order), ``name + value`` joined.

    ``sign`` is left out and so are empty values, which the template says must never be sent.
    """
    items = sorted(
        ((name, value) for name, value in params.items() if name != "sign" and value != ""),
        key=lambda item: item[0].encode("utf-8"),
    )
    return "".join(name + value for name, value in items)


def sign(params: Mapping[str, str], secret: str) -> str:
    """The lowercase hex MD5 signature of ``params`` under ``secret`` (upper-case hex is refused)."""
    text = canonical_string(params) + secret
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def signed_params(params: Mapping[str, str], *, api_key: str, secret: str, time_value: str) -> dict[str, str]:
    """The parameters to send: ``params`` without empty values, plus ``api_key``, ``time`` and their ``sign``.

    Empty values are dropped rather than sent because the server would hash them differently from us.
    """
    for name, value in params.items():
        if not isinstance(value, str):
            raise TypeError(f"parameter {name!r} must be text before signing, not {type(value).__name__}")
    out = {name: value for name, value in params.items() if value != "" and name != "sign"}
    out["api_key"] = api_key
    out["time"] = time_value
    out["sign"] = sign(out, secret)
    return out


def without_secrets(params: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``params`` fit for logs and the state store: ``api_key`` and ``sign`` removed."""
    return {name: value for name, value in params.items() if name not in ("api_key", "sign")}
