"""Logging: one line per event, as text or JSON, with every known secret redacted before it is written.

Credentials read from the environment are registered with ``register_secret``; the formatters of the
``rebalancer`` logger replace them in every message and field, and the CLI passes its error lines through
``redact`` too, so no code path can leak one into a log by accident.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

REDACTED = "***"
_secrets: set[str] = set()
_secrets_lock = threading.Lock()
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def register_secret(value: str) -> None:
    """Remember a secret so that it is redacted from every log line from now on (short values are ignored)."""
    if len(value) >= 6:
        with _secrets_lock:
            _secrets.add(value)


def redact(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    """``2026-01-01T00:00:00Z INFO message key=value …``"""

    def format(self, record: logging.LogRecord) -> str:
        """One redacted line."""
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        extra = " ".join(f"{k}={v}" for k, v in fields(record).items())
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
        return redact(json.dumps(document, default=str))


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
