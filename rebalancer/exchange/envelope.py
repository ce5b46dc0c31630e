"""An /open/api answer body → the ``data`` of its envelope, or the error the envelope's ``code`` means.

``decode_json`` reads every number through ``rebalancer.numbers.bounded_decimal`` (a hostile ``1e99999999999``
is refused with the key that held it, before anything computes with it); ``parse_envelope`` tells success from
the error codes and says a refused key in full.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, NoReturn

from rebalancer.errors import AuthError, BadResponse, ExchangeError
from rebalancer.logs import redact
from rebalancer.numbers import MAX_EXPONENT, NumberOutOfBounds, bounded_decimal

Classify = Callable[[str], type[ExchangeError]]


def _bad(endpoint: str, what: str) -> NoReturn:
    raise BadResponse(what, endpoint=endpoint)


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"non-finite number {name}")


_made = threading.local()
"""``count``: the ``_Unbounded`` made in this thread, so a decode can tell whether it met one without looking."""


class _Unbounded:
    """A JSON number out of bounds, kept in place until the object holding it names its key."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason
        _made.count = _unbounded_made() + 1


def _unbounded_made() -> int:
    return getattr(_made, "count", 0)


def _json_float(text: str) -> Decimal | _Unbounded:
    try:
        return bounded_decimal(text)
    except NumberOutOfBounds as error:
        return _Unbounded(str(error))


def _json_int(text: str) -> int | _Unbounded:
    if len(text) <= MAX_EXPONENT:
        return int(text)  # at most 60 digits: within bounds
    try:
        bounded_decimal(text)
    except NumberOutOfBounds as error:
        return _Unbounded(str(error))
    return int(text)


def _unbounded_in(value: object) -> _Unbounded | None:
    """The out-of-bound number ``value`` is or holds in its lists (objects were checked when they were built)."""
    if isinstance(value, _Unbounded):
        return value
    if isinstance(value, list):
        for item in value:
            found = _unbounded_in(item)
            if found is not None:
                return found
    return None


class _BoundsError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field} is out of bounds: {reason}")


def _bounded_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    for key, value in pairs:
        if isinstance(value, _Unbounded | list):  # only these can hold one (checked here: a call per value costs)
            found = _unbounded_in(value)
            if found is not None:
                raise _BoundsError(str(key)[:60], found.reason)
    return dict(pairs)


def decode_json(text: str, endpoint: str) -> Any:
    """Decode an answer body, keeping every fractional number as an exact ``Decimal`` (never a float).

    Every number is read by ``bounded_decimal``: one too long, too large or too small is a ``BadResponse``
    naming its key, before anything computes with it. An answer whose numbers are all in bounds is read without
    looking into its objects (half of the decoding's time); only one that holds a number out of bounds, or is
    not JSON after one, is read again with the object hook that names the key.
    """
    made = _unbounded_made()
    try:
        document = json.loads(text, parse_float=_json_float, parse_int=_json_int, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        if _unbounded_made() == made:
            _not_json(text, endpoint)
    else:
        if _unbounded_made() == made:
            return document
    return _decode_naming(text, endpoint)


def _not_json(text: str, endpoint: str) -> NoReturn:
    snippet = text[:80].replace("\n", " ")
    _bad(endpoint, f"answer is not JSON: {snippet!r}")


def _decode_naming(text: str, endpoint: str) -> Any:
    """``decode_json`` with the object hook that names the key of a number out of bounds as its object closes."""
    try:
        document = json.loads(
            text,
            parse_float=_json_float,
            parse_int=_json_int,
            parse_constant=_reject_constant,
            object_pairs_hook=_bounded_object,
        )
    except _BoundsError as error:
        _bad(endpoint, str(error))
    except (ValueError, RecursionError):
        _not_json(text, endpoint)
    found = _unbounded_in(document)
    if found is not None:
        _bad(endpoint, f"the answer is out of bounds: {found.reason}")
    return document


MAX_CODE_CHARS = 40
"""A longer code is cut short where it is shown (real codes are a few digits)."""


def answer_text(value: object) -> str:
    """A code, message or id as text; JSON numbers keep their exact digits."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (line breaks, escape sequences, bells, direction
    overrides) written as its escape (``\\n``, ``\\x1b``, ``\\u202e``): what an exchange writes is shown, never
    obeyed, and stays on one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def message_of(entry: Mapping[str, Any]) -> str:
    """An answer's ``msg`` (or ``message``), with any registered secret redacted: some exchanges quote the
    api_key back in their error messages, and a message travels on to output, logs and the state store.
    Characters a terminal acts on are escaped (``printable``)."""
    return printable(redact(answer_text(entry.get("msg")) or answer_text(entry.get("message"))))


def parse_envelope(body: object, endpoint: str, classify: Classify) -> Any:
    """The ``data`` of a successful envelope; a non-zero ``code`` raises ``classify(code)`` with the message.

    Success is exactly ``str(code) == "0"`` (code may be a string, an int or a word).
    """
    if not isinstance(body, Mapping):
        _bad(endpoint, "answer is not an object")
    envelope = body
    if "code" not in envelope:
        _bad(endpoint, "answer has no code")
    code = answer_text(envelope["code"]).strip()
    if code == "0":
        return envelope.get("data")
    code = printable(code) if len(code) <= MAX_CODE_CHARS else f"{printable(code[:MAX_CODE_CHARS])}…"
    message = message_of(envelope)[:300] or "refused"
    error_class = classify(code)
    if issubclass(error_class, AuthError):
        refusal = AUTH_REFUSALS.get(code, "the exchange refused the credentials")
        message = f"{refusal} (it said {message!r})"
    raise error_class(message, endpoint=endpoint, code=code)


AUTH_REFUSALS = {
    "100005": "the exchange refused the API key or its signature",
    "100007": "the exchange refused this machine's IP address for the API key",
}
"""What an authentication code means, said in full: the exchange's own words (``sign error``) name no key."""
