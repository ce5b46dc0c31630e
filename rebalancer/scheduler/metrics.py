"""Prometheus metrics of the daemon and its tiny HTTP endpoint (``/metrics``, ``/livez``, ``/readyz``).

Metrics live in their own registry so that tests and several daemons in one process never collide.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from rebalancer.defaults import METRICS_REFRESH_SECONDS, METRICS_RENDER_BUDGET_SECONDS, WARM_POLL_SECONDS
from rebalancer.errors import ConfigError
from rebalancer.jobfile.urls import display_url
from rebalancer.stream.client import StreamStats


class Metrics:
    """The daemon's metrics, named after Prometheus conventions."""

    def __init__(self) -> None:
        # No ``*_created`` series (a process-wide switch): nothing reads them, and they were a sixth of the samples.
        prometheus_client.disable_created_metrics()
        self.registry = CollectorRegistry()
        self.passes = Counter(
            "rebalancer_passes",
            "Reconcile passes by job and result.",
            ["job", "result"],
            registry=self.registry,
        )
        self.pass_duration = Histogram(
            "rebalancer_pass_duration_seconds",
            "Duration of a reconcile pass.",
            ["job"],
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.lateness = Histogram(
            "rebalancer_pass_lateness_seconds",
            "How long after its scheduled time a pass started (scheduler and worker-pool delay).",
            ["job"],
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.placed = Counter(
            "rebalancer_orders_placed",
            "Orders placed and confirmed on the book.",
            ["job"],
            registry=self.registry,
        )
        self.cancelled = Counter(
            "rebalancer_orders_cancelled",
            "Orders cancelled and confirmed gone.",
            ["job"],
            registry=self.registry,
        )
        self.filled = Counter(
            "rebalancer_filled_volume",
            "Base volume of the job's own orders filled, as the fills ledger learnt it.",
            ["job", "side"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "rebalancer_orders_rejected",
            "Orders or cancels the exchange refused.",
            ["job", "code"],
            registry=self.registry,
        )
        self.gate_refusals = Counter(
            "rebalancer_gate_refusals",
            "Planned cancels and placements the pre-trade gate refused and dropped (each one a planner bug).",
            ["job"],
            registry=self.registry,
        )
        self.open_orders = Gauge(
            "rebalancer_open_orders",
            "Open orders the job owns after its last pass.",
            ["job"],
            registry=self.registry,
        )
        self.last_success = Gauge(
            "rebalancer_last_success_timestamp_seconds",
            "Unix time of the job's last successful pass.",
            ["job"],
            registry=self.registry,
        )
        self.missed = Counter(
            "rebalancer_passes_missed",
            "Passes skipped: overran, missed, backing off, or coalesced while still waiting (overload).",
            ["job"],
            registry=self.registry,
        )
        self.waiting = Gauge(
            "rebalancer_passes_waiting",
            "Jobs whose pass is due and waits for a worker.",
            registry=self.registry,
        )
        self.overloaded = Gauge(
            "rebalancer_overloaded",
            "1 when passes came due faster than they ran in the last minute (some were coalesced), else 0.",
            registry=self.registry,
        )

        self.last_pass = Gauge(
            "rebalancer_last_pass_timestamp_seconds",
            "Unix time the job's last pass ended, whatever its result (skipped passes do not count).",
            ["job"],
            registry=self.registry,
        )
        self.period = Gauge(
            "rebalancer_job_period_seconds",
            "The job's nominal period between passes (cron jobs: 60), for 'no pass for N periods' alerts.",
            ["job"],
            registry=self.registry,
        )
        self.paused = Gauge(
            "rebalancer_job_paused",
            "1 while the job is paused (rebalancer pause, or paused: true in its file), else 0.",
            ["job"],
            registry=self.registry,
        )
        self.reload_failures = Counter(
            "rebalancer_reload_failures",
            "Reloads that refused a job file (its previous version, if any, kept running).",
            ["file"],
            registry=self.registry,
        )
        self.notify_failures = Counter(
            "rebalancer_notify_failures",
            "Webhook events (notify) that could not be delivered or were dropped.",
            ["job"],
            registry=self.registry,
        )
        self.reload_failing = Gauge(
            "rebalancer_reload_failing",
            "1 while a job file's latest version is refused, 0 once it has loaded.",
            ["file"],
            registry=self.registry,
        )
        self.wakes = Counter(
            "rebalancer_stream_wakes",
            "Wake-ups of a job by reason: timer, or the stream's reference, trade and market.",
            ["job", "reason"],
            registry=self.registry,
        )
        self.stream_polling = Gauge(
            "rebalancer_stream_polling",
            "1 while a job with a stream falls back to polling (stream down or its book stale), else 0.",
            ["job"],
            registry=self.registry,
        )
        self.stream_fallbacks = Counter(
            "rebalancer_stream_fallbacks",
            "Times a job with a stream fell back to polling (stream down or its book stale).",
            ["job"],
            registry=self.registry,
        )
        self.order_info_skipped = Counter(
            "rebalancer_order_info_skipped",
            "order_info reads a job saved: orders it cancelled that its market stream proves did not fill.",
            ["job"],
            registry=self.registry,
        )
        self.order_info_audits = Counter(
            "rebalancer_order_info_audits",
            "order_info reads a job's stream would have saved, made anyway to check it, by result: clean, or"
            " missed_fill (the stream missed a fill: its jobs read every order from then on, until a restart).",
            ["job", "result"],
            registry=self.registry,
        )
        self.stream_lag = Histogram(
            "rebalancer_stream_frame_lag_seconds",
            "Receive time minus the frame's own time, per stream.",
            ["stream"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self._streams: list[Callable[[], Iterable[StreamStats]]] = []
        self.registry.register(_StreamCollector(self._streams))

    def follow_streams(self, stats: Callable[[], Iterable[StreamStats]]) -> None:
        """Expose the counters of the streams ``stats`` lists (connected, frames, reconnects, garbage)."""
        self._streams.append(stats)

    def forget(self, job: str) -> None:
        """Drop every series of a removed job."""
        for metric in (
            self.pass_duration,
            self.lateness,
            self.placed,
            self.cancelled,
            self.gate_refusals,
            self.open_orders,
            self.last_success,
            self.missed,
            self.last_pass,
            self.period,
            self.paused,
            self.stream_polling,
            self.stream_fallbacks,
            self.order_info_skipped,
        ):
            with contextlib.suppress(KeyError):
                metric.remove(job)
        for metric, names in (
            (self.passes, ("job", "result")),
            (self.wakes, ("job", "reason")),
            (self.rejected, ("job", "code")),
            (self.filled, ("job", "side")),
            (self.order_info_audits, ("job", "result")),
        ):
            for labels in _label_sets(metric, names):
                if labels[0] == job:
                    metric.remove(*labels)

    def exposition(self) -> bytes:
        """The text exposition format of every metric."""
        return generate_latest(self.registry)


def _label_sets(metric: Counter, names: tuple[str, str]) -> Iterable[tuple[str, ...]]:
    """Every label combination a labelled metric currently has, in the order of ``names``."""
    seen: dict[tuple[str, ...], None] = {}
    for family in metric.collect():
        for sample in family.samples:
            if all(name in sample.labels for name in names):
                seen[tuple(sample.labels[name] for name in names)] = None
    return list(seen)


def stream_label(url: str) -> str:
    """A stream URL as metrics and pages show it: no credentials, no query."""
    return display_url(url).removesuffix("?…")


class _StreamCollector(Collector):
    """The market streams' own counters, read from their hubs at each scrape (``rebalancer_stream_*``)."""

    def __init__(self, sources: list[Callable[[], Iterable[StreamStats]]]) -> None:
        self._sources = sources

    def collect(self) -> Iterable[Metric]:
        """One sample per stream URL (credentials and query left out) of each counter."""
        connected = GaugeMetricFamily(
            "rebalancer_stream_connected", "1 while the stream is connected.", labels=["stream"]
        )
        frames = CounterMetricFamily("rebalancer_stream_frames", "Frames received.", labels=["stream"])
        reconnects = CounterMetricFamily("rebalancer_stream_reconnects", "Connections opened again.", labels=["stream"])
        garbage = CounterMetricFamily(
            "rebalancer_stream_garbage", "Frames ignored: unreadable or oversized.", labels=["stream"]
        )
        for source in self._sources:
            for stats in source():
                label = [stream_label(stats.url)]
                connected.add_metric(label, int(stats.connected))
                frames.add_metric(label, stats.frames)
                reconnects.add_metric(label, stats.reconnects)
                garbage.add_metric(label, stats.garbage)
        return [connected, frames, reconnects, garbage]


class HealthServer:
    """Serves ``/metrics``, ``/livez``, ``/readyz`` and, when given ``pages``, the status pages (``/``,
    ``/jobs/NAME``) on one address, in a background thread."""

    def __init__(
        self,
        metrics: Metrics | Callable[[], bytes],
        host: str,
        port: int,
        ready: Callable[[], bool],
        pages: Callable[[str], tuple[str, bytes] | None] | None = None,
    ) -> None:
        """``metrics``: the registry to serve, or what renders the ``/metrics`` text (``run --workers``' parent)."""
        from werkzeug.serving import make_server

        self._exposition = CachedExposition(metrics.exposition if isinstance(metrics, Metrics) else metrics)
        self._ready = ready
        self._pages = pages
        # Bound here, not by Werkzeug: on a busy port Werkzeug prints its own text and exits, where the command
        # must say one ``Error:`` line. Its server then takes over a duplicate of this socket.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.create_server((host, port), family=family) as listener:
            self._server = make_server(host, port, self._app, threaded=True, fd=listener.fileno())
        self._thread = threading.Thread(target=self._server.serve_forever, name="rebalancer-http", daemon=True)

    @property
    def url(self) -> str:
        """Base URL actually bound (the port may have been 0)."""
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}"

    def start(self) -> None:
        """Start serving in the background; the ``/metrics`` text is rendered ahead of the first scrape once the
        process is ready."""
        self._thread.start()
        self._exposition.warm(self._ready)

    def stop(self) -> None:
        """Stop serving."""
        self._exposition.close()
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body, status, kind = self._exposition.get(), "200 OK", CONTENT_TYPE_LATEST
        elif path == "/livez":
            body, status, kind = b"ok\n", "200 OK", "text/plain"
        elif path == "/readyz":
            ready = self._ready()
            body = b"ready\n" if ready else b"not ready\n"
            status, kind = ("200 OK" if ready else "503 Service Unavailable"), "text/plain"
        elif self._pages is not None and (page := self._pages(path)) is not None:
            (status, body), kind = page, "text/html; charset=utf-8"
        else:
            body, status, kind = b"not found\n", "404 Not Found", "text/plain"
        start_response(status, [("Content-Type", kind), ("Content-Length", str(len(body)))])
        return [body]


def http_server(
    http: str,
    metrics: Metrics | Callable[[], bytes],
    ready: Callable[[], bool],
    pages: Callable[[str], tuple[str, bytes] | None] | None = None,
) -> HealthServer:
    """The ``HealthServer`` of ``run --http HOST:PORT``; a bad address or a port that cannot be bound is one
    ``ConfigError`` line."""
    try:
        host, port = parse_address(http)
    except ValueError as exc:
        raise ConfigError(f"--http: {exc}") from None
    try:
        return HealthServer(metrics, host, port, ready, pages)
    except OSError as exc:
        raise ConfigError(f"--http: cannot listen on {http}: {exc.strerror or exc}") from None


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); raises ValueError with a plain message."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    value = int(port)
    if value > 65535:
        raise ValueError(f"port {value} is out of range")
    return host.strip("[]"), value


class CachedExposition:
    """The ``/metrics`` text: rendered at each scrape while that is cheap. Once a rendering takes more than
    ``budget`` seconds, of CPU or on the clock (prometheus-client spends ~5 µs a sample, and a job has ~40 samples:
    ~0.2 s at a thousand jobs), a background thread renders it every ``refresh`` seconds while scrapes keep coming,
    and a scrape answers the latest rendering at once, at most ``refresh`` seconds old.

    The latest rendering is kept compressed (zlib's fastest level): at a thousand jobs the text is 3 MB, held by
    every process of a fleet and again merged by its parent, and 7 % of that compressed; a scrape decompresses it
    in a few milliseconds."""

    def __init__(
        self,
        render: Callable[[], bytes],
        *,
        budget: float = METRICS_RENDER_BUDGET_SECONDS,
        refresh: float = METRICS_REFRESH_SECONDS,
    ) -> None:
        self._render = render
        self._budget = budget
        self._refresh = refresh
        self._lock = threading.Lock()
        self._latest = zlib.compress(b"")
        self._kept_fresh = False
        self._scraped = time.monotonic()
        self._closed = threading.Event()

    def get(self) -> bytes:
        """The text for one scrape."""
        with self._lock:
            self._scraped = time.monotonic()
            if self._kept_fresh:
                return zlib.decompress(self._latest)
        body, slow = self._timed_render()
        if self._takes_over(slow):
            threading.Thread(target=self._keep_fresh, name="rebalancer-metrics", daemon=True).start()
        return body

    def warm(self, ready: Callable[[], bool], poll: float = WARM_POLL_SECONDS) -> None:
        """Render once in the background as soon as ``ready()`` (every job's first pass made: the registry holds
        its series), so that the first scrape does not render in the foreground either: a costly rendering is then
        kept fresh as if a scrape had just come, for as long as an unscraped one is (``6 × refresh``)."""

        def wait_then_render() -> None:
            wait = poll
            while not ready():  # a fleet's parent asks its workers: less and less often while they start
                if self._closed.wait(wait):
                    return
                wait = min(wait * 1.5, self._refresh)
            with self._lock:
                self._scraped = time.monotonic()
                if self._kept_fresh:
                    return
            _, slow = self._timed_render()
            if self._takes_over(slow):
                self._keep_fresh()

        threading.Thread(target=wait_then_render, name="rebalancer-metrics-warm", daemon=True).start()

    def _takes_over(self, slow: bool) -> bool:
        """True when the caller, after a ``slow`` rendering, is to keep it fresh in the background: nobody does
        yet and the cache is open."""
        with self._lock:
            start = slow and not self._kept_fresh and not self._closed.is_set()
            self._kept_fresh = self._kept_fresh or start
        return start

    def close(self) -> None:
        """Stop rendering in the background."""
        self._closed.set()

    def _timed_render(self) -> tuple[bytes, bool]:
        started, began = time.thread_time(), time.perf_counter()
        body = self._render()
        # Slow by its CPU or by the clock: a fleet's parent spends little CPU merging its workers' texts, but waits
        # for their answers and for the GIL while its passes run.
        slow = max(time.thread_time() - started, time.perf_counter() - began) > self._budget
        kept = zlib.compress(body, 1)
        with self._lock:
            self._latest = kept
        return body, slow

    def _keep_fresh(self) -> None:
        """Render every ``refresh`` seconds; stop once the rendering is cheap again or nobody scraped for a while
        (the next scrape then renders, and starts this again if it has to)."""
        while not self._closed.wait(self._refresh):
            with self._lock:
                idle = time.monotonic() - self._scraped > 6 * self._refresh
            _, slow = (b"", True) if idle else self._timed_render()
            if idle or not slow:
                with self._lock:
                    self._kept_fresh = False
                return
