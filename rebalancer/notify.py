"""``notify: {webhook: URL}``: POST a JSON event ``{job, kind, message, time}`` to a job's webhook.

Events are posted by the path that causes them, whichever command or process that is: a pass that trips
``limits.max_loss`` (``apply``, ``cancel``, ``run --once``, the daemon, cluster members) or finds its job blind for
``limits.max_blind``, ``pause`` and ``resume``, the daemon for a job file's ``paused:``, a streak of failed passes
and a refused reload.

Delivery never slows a pass: ``Notifier.send`` only puts the event on its destination's bounded queue (a full queue
drops the event and counts it) and returns. Each destination (scheme, host and port) has its own queue and thread,
so a slow or dead endpoint delays only its own events. A delivery has a total deadline (connect, request and answer
together), is never redirected (a 3xx is a failed delivery: the event body goes only where the job file says), only
the answer's status is read (never its body, however long), and any error is logged with the webhook's host only
(its path and query may carry a token) and counted by the ``on_failure`` callback; the thread carries on. ``close``
delivers what is queued within one overall wait, which is what a command does before it exits (``shared`` /
``close_shared``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from rebalancer.job import Job

log = logging.getLogger("rebalancer.notify")

QUEUE_SIZE = 100  # events waiting per destination; more are dropped (and counted) rather than slowing a pass
DEADLINE_SECONDS = 5.0  # the whole of one delivery: connect, send, status line, headers and body


@dataclass(frozen=True, slots=True)
class Event:
    """One event for a webhook: ``kind`` is max_loss, blind, paused, resumed, failing or reload_refused."""

    webhook: str
    job: str
    kind: str
    message: str
    time: datetime

    def body(self) -> dict[str, Any]:
        """The JSON document POSTed."""
        return {"job": self.job, "kind": self.kind, "message": self.message, "time": self.time.isoformat()}


def destination(webhook: str) -> str:
    """The webhook's scheme, host and port: what one delivery thread serves and what logs may show."""
    try:
        parts = urlsplit(webhook)
        return f"{parts.scheme}://{parts.hostname or '?'}:{parts.port or ''}"
    except ValueError:
        return "?"


def shown_host(webhook: str) -> str:
    """The webhook's host, as logs show it (never its path or query)."""
    try:
        return urlsplit(webhook).hostname or "?"
    except ValueError:
        return "?"


class _Lane:
    """The queue and delivery thread of one destination."""

    def __init__(self, name: str, deliver: Callable[[Event], None]) -> None:
        self.queue: queue.Queue[Event | None] = queue.Queue(maxsize=QUEUE_SIZE)
        self._deliver = deliver
        self.thread = threading.Thread(target=self._run, name=f"rebalancer-notify {name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (event := self.queue.get()) is not None:
            try:
                self._deliver(event)
            except Exception:  # the failure callback itself failed: still no reason to stop delivering
                log.exception("notification bookkeeping failed", extra={"job": event.job, "kind": event.kind})


class Notifier:
    """Background senders of webhook events, one per destination; ``close`` delivers what is queued and stops."""

    def __init__(
        self, on_failure: Callable[[str], None] = lambda job: None, deadline: float = DEADLINE_SECONDS
    ) -> None:
        self._on_failure = on_failure
        self._deadline = deadline
        self._lanes: dict[str, _Lane] = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, webhook: str, job: str, kind: str, message: str, now: datetime | None = None) -> None:
        """Queue an event; returns at once. A full queue (or a closed notifier) drops it, logged and counted."""
        event = Event(webhook, job, kind, message, now or datetime.now(UTC))
        with self._lock:
            lane = None if self._closed else self._lane(destination(webhook))
        try:
            if lane is None:
                raise queue.Full
            lane.queue.put_nowait(event)
        except queue.Full:
            log.warning("notification dropped: queue full or notifier closed", extra={"job": job, "kind": kind})
            self._on_failure(job)

    def close(self, wait: float | None = None) -> None:
        """Stop after delivering the queued events, waiting at most ``wait`` seconds in all (a deadline by default)."""
        limit = time.monotonic() + (self._deadline + 1 if wait is None else wait)
        with self._lock:
            self._closed = True
            lanes = list(self._lanes.values())
        for lane in lanes:
            try:
                lane.queue.put(None, timeout=max(0.0, limit - time.monotonic()))
            except queue.Full:
                continue
        for lane in lanes:
            lane.thread.join(max(0.0, limit - time.monotonic()))

    def _lane(self, name: str) -> _Lane:
        lane = self._lanes.get(name)
        if lane is None:
            lane = self._lanes[name] = _Lane(name, self._deliver_safely)
        return lane

    def _deliver_safely(self, event: Event) -> None:
        """One delivery; whatever goes wrong is logged (host only) and counted, and the thread carries on."""
        try:
            self._deliver(event)
        except Exception as exc:  # a bad URL, a refused redirect, a timeout, a bug: none may stop the thread
            log.warning(
                "notification failed",
                extra={"job": event.job, "kind": event.kind, "host": shown_host(event.webhook), "error": _why(exc)},
            )
            self._on_failure(event.job)

    def _deliver(self, event: Event) -> None:
        import requests

        from rebalancer.exchange.deadline import DeadlineAdapter, deadline

        with requests.Session() as http:
            for scheme in ("http://", "https://"):
                http.mount(scheme, DeadlineAdapter())
            with deadline(self._deadline):
                # stream: only the status is needed; the body, however long, is never read
                answer = http.post(
                    event.webhook,
                    json=event.body(),
                    timeout=(self._deadline, self._deadline),
                    allow_redirects=False,
                    stream=True,
                )
            answer.close()
        if answer.is_redirect or 300 <= answer.status_code < 400:
            raise DeliveryRefused(f"redirect {answer.status_code} not followed")
        if answer.status_code >= 400:
            raise DeliveryRefused(f"HTTP {answer.status_code}")


class DeliveryRefused(Exception):
    """The webhook answered, but not with success (a redirect or an error status)."""


def _why(exc: Exception) -> str:
    """What went wrong, without the URL (requests' messages quote it, token and all)."""
    return str(exc) if isinstance(exc, DeliveryRefused) else type(exc).__name__


_shared: Notifier | None = None
_shared_lock = threading.Lock()


def shared() -> Notifier:
    """The process's notifier for paths without one of their own (commands); ``close_shared`` delivers."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Notifier()
        return _shared


def close_shared(wait: float | None = None) -> None:
    """Deliver what the process's notifier holds (bounded by its deadline) and stop it; nothing if never used."""
    global _shared
    with _shared_lock:
        notifier, _shared = _shared, None
    if notifier is not None:
        notifier.close(wait)


def post(job: Job, kind: str, message: str, notifier: Notifier | None = None) -> None:
    """Tell ``job``'s webhook (if it has one) about an event, through ``notifier`` or the process's own."""
    if job.notify is not None:
        (notifier or shared()).send(job.notify.webhook, job.name, kind, message)
