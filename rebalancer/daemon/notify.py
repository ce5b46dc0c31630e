"""``notify: {webhook: URL}``: POST a JSON event ``{job, kind, message, time}`` to a job's webhook.

Delivery never slows a pass: ``Notifier.send`` only puts the event on a bounded queue (a full queue drops the event
and counts it) and one background thread POSTs with a timeout. A failed delivery is logged with the webhook's host
only (its path and query may carry a token) and counted by the ``on_failure`` callback (the daemon's metric).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("rebalancer.notify")

QUEUE_SIZE = 100  # events waiting for delivery; more are dropped (and counted) rather than slowing a pass
TIMEOUT_SECONDS = 5.0  # connect and read timeout of one delivery


@dataclass(frozen=True, slots=True)
class Event:
    """One event for a webhook: ``kind`` is max_loss, paused, resumed, failing or reload_refused."""

    webhook: str
    job: str
    kind: str
    message: str
    time: datetime

    def body(self) -> dict[str, Any]:
        """The JSON document POSTed."""
        return {"job": self.job, "kind": self.kind, "message": self.message, "time": self.time.isoformat()}


class Notifier:
    """A background sender of webhook events; ``close`` delivers what is queued (up to a timeout) and stops."""

    def __init__(self, on_failure: Callable[[str], None] = lambda job: None, timeout: float = TIMEOUT_SECONDS) -> None:
        self._queue: queue.Queue[Event | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._on_failure = on_failure
        self._timeout = timeout
        self._thread = threading.Thread(target=self._run, name="rebalancer-notify", daemon=True)
        self._thread.start()

    def send(self, webhook: str, job: str, kind: str, message: str, now: datetime | None = None) -> None:
        """Queue an event; returns at once. A full queue drops it (logged and counted as a failed delivery)."""
        try:
            self._queue.put_nowait(Event(webhook, job, kind, message, now or datetime.now(UTC)))
        except queue.Full:
            log.warning("notification dropped: queue full", extra={"job": job, "kind": kind})
            self._on_failure(job)

    def close(self, wait: float = TIMEOUT_SECONDS) -> None:
        """Stop after delivering the queued events, waiting at most ``wait`` seconds."""
        try:
            self._queue.put(None, timeout=wait)
        except queue.Full:
            return
        self._thread.join(wait)

    def _run(self) -> None:
        import requests

        with requests.Session() as http:
            while (event := self._queue.get()) is not None:
                try:
                    answer = http.post(event.webhook, json=event.body(), timeout=self._timeout)
                    answer.raise_for_status()
                except requests.RequestException as exc:
                    host = urlsplit(event.webhook).hostname or "?"
                    log.warning(
                        "notification failed",
                        extra={"job": event.job, "kind": event.kind, "host": host, "error": type(exc).__name__},
                    )
                    self._on_failure(event.job)
