"""Logging: one line per event, as text or JSON, with every known secret redacted before it is written.

Credentials read from the environment are registered with ``register_secret``; the formatters of the
``rebalancer`` logger replace them in every message and field, and the CLI passes its error lines through
``redact`` too, so no code path can leak one into a log by accident.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

REDACTED = "***"
_MIN_SECRET = 6  # shorter values are not secrets worth redacting (and would redact ordinary words)
_REGEX_LIMIT = 64
_CREDENTIAL_NAME = re.compile(r"KEY|SECRET|TOKEN|PASS|PWD", re.IGNORECASE)
_WORKING_DIRECTORY = frozenset({"PWD", "OLDPWD"})  # the shell's current and previous directory, not passwords
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class Redactor:
    """The secrets known so far, in every written form, and the text with them replaced by ``***``.

    Up to ``regex_limit`` forms, one compiled alternation finds them (C speed, cheap to rebuild). Past it (a daemon
    with hundreds of jobs' keys) a prefix index does: its cost per character of text does not grow with the number
    of forms, and a new secret goes in without rebuilding anything. The index is looked up only inside runs of
    6 or more characters that occur in some form (found by one compiled character class, at C speed): a form is
    made of such characters, so it lies inside one run, and most of a JSON answer is too short a run to hold one
    (it cost 0.56 ms to scan a 2.4 KB answer character by character). Either way the leftmost match wins, and at
    one place the longest form. Registration takes a lock; redaction reads without it (the pattern, the character
    class and each index entry are replaced whole, and the index only gains entries).
    """

    def __init__(self, regex_limit: int = _REGEX_LIMIT) -> None:
        self._regex_limit = regex_limit
        self._forms: set[str] = set()
        self._lock = threading.Lock()
        self._pattern: re.Pattern[str] | None = None
        self._by_prefix: dict[str, tuple[str, ...]] = {}  # first _MIN_SECRET characters → forms, longest first
        self._characters: set[str] = set()  # every character of every form
        self._runs: re.Pattern[str] | None = None  # runs of _MIN_SECRET or more of those characters

    def register(self, value: str) -> None:
        """Remember ``value`` and its written forms (nothing for a value shorter than 6 or already known)."""
        if len(value) < _MIN_SECRET:
            return
        with self._lock:
            new = _written_forms(value) - self._forms
            if not new:
                return
            self._forms.update(new)
            for form in new:  # every written form is at least as long as the secret
                head = form[:_MIN_SECRET]
                self._by_prefix[head] = tuple(sorted({*self._by_prefix.get(head, ()), form}, key=len, reverse=True))
            characters = set().union(*new) - self._characters
            if characters:
                self._characters |= characters
                listed = "".join(re.escape(c) for c in sorted(self._characters))
                self._runs = re.compile(f"[{listed}]{{{_MIN_SECRET},}}")
            if len(self._forms) > self._regex_limit:
                self._pattern = None  # sorting every form again per secret made a daemon's start quadratic
                return
            forms = sorted(self._forms, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, forms)))

    def redact(self, text: str) -> str:
        """``text`` with every known form replaced by ``***``."""
        pattern, runs, index = self._pattern, self._runs, self._by_prefix
        if pattern is not None:
            return pattern.sub(REDACTED, text)
        if runs is None:
            return text
        pieces: list[str] = []
        start = 0
        for run in runs.finditer(text):
            i, last = run.start(), run.end() - _MIN_SECRET
            while i <= last:
                for form in index.get(text[i : i + _MIN_SECRET], ()):
                    if text.startswith(form, i):
                        pieces += (text[start:i], REDACTED)
                        i = start = i + len(form)
                        break
                else:
                    i += 1
        if not pieces:
            return text
        pieces.append(text[start:])
        return "".join(pieces)


_redactor = Redactor()


def register_secret(value: str) -> None:
    """Remember a secret so that it is redacted from every log line from now on (short values are ignored).

    Its written forms are remembered too: JSON-escaped (a key holding ``\\``, ``"`` or non-ASCII text is
    written escaped) and URL-encoded (as an exchange may quote a query string back), in both hex cases.
    Registering a known secret again costs nothing.
    """
    _redactor.register(value)


def register_environment_secrets(environ: Mapping[str, str] | None = None) -> None:
    """Register every environment value whose variable is named like a credential (``*KEY*``, ``*SECRET*``...).

    For commands that print stored text without reading a job's credentials first (``history``): the values
    that could have leaked into old rows are still known to the environment.
    """
    for name, value in (os.environ if environ is None else environ).items():
        if _CREDENTIAL_NAME.search(name) and name.upper() not in _WORKING_DIRECTORY:
            register_secret(value)


def _written_forms(secret: str) -> set[str]:
    escaped = {json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    encoded = {quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}
    lowered = {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), e) for e in encoded}
    return {secret} | escaped | encoded | lowered | {json.dumps(e)[1:-1] for e in encoded}


def redact(text: str) -> str:
    """``text`` with every registered secret (in any of its written forms) replaced by ``***``."""
    return _redactor.redact(text)


def redact_value(value: Any) -> Any:
    """A copy of a JSON-like value with every string (keys included) redacted; other leaves are kept."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {redact(str(k)): redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``2026-01-01T00:00:00Z INFO message key=value …``"""

    def format(self, record: logging.LogRecord) -> str:
        """One redacted line."""
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        extra = " ".join(f"{k}={redact_value(v)}" for k, v in fields(record).items())  # before repr escapes
        line = f"{stamp} {record.levelname} {record.getMessage()}" + (f" {extra}" if extra else "")
        if record.exc_info:
            line += " error=" + repr(record.exc_info[1])
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        """One redacted JSON line."""
        document: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        document.update(fields(record))
        if record.exc_info:
            document["error"] = repr(record.exc_info[1])
        # Values are redacted before encoding (escaping would hide a secret from a search of the text), and the
        # text after it, for what ``default=str`` turns into text.
        return redact(json.dumps(redact_value(document), default=lambda v: redact(str(v))))


def setup(log_format: str = "text", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Send rebalancer's logs to ``stream`` (stderr) in the chosen format; replaces earlier handlers."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger("rebalancer")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # The daemon reports skipped and missed passes itself; APScheduler's own lines would say it twice.
    for noisy in ("apscheduler", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
