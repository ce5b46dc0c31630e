"""``rebalancer record``: write the market stream's frames of some symbols to a gzip JSON-lines file.

``--stream sandbox`` records the embedded sandbox's stream (served by this process when no other serves the
world, walking on its own clock) and always writes the rules line. With a stream URL, the rules line is written
when ``--url`` names the deployment's REST base URL (the stream host and the REST host differ per deployment, so
neither is derived from the other). The recording ends at ``--for`` or on Ctrl-C / SIGTERM (exit 0 either way),
leaving a whole gzip file. A stream that cannot be reached within ``--connect-timeout``, or that refuses a channel,
is an ``Error:`` line and exit 1, and the file is removed. What was recorded reaches the file at least once a second
(a gzip flush), so a reader can follow a recording while it runs.
"""

from __future__ import annotations

import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from rebalancer.cli.params import parse_duration
from rebalancer.errors import ConfigError, TransientError
from rebalancer.jobfile.urls import is_loopback, stream_url_problem
from rebalancer.state.paths import state_dir

if TYPE_CHECKING:
    from rebalancer.models import SymbolRules
    from rebalancer.stream.client import StreamHub
    from rebalancer.stream.recording import Recorder

_SYMBOL = re.compile(r"[a-z0-9]{1,40}")
TTY_EVERY = 0.5
LOG_EVERY = 10.0
FLUSH_EVERY = 1.0


@click.command()
@click.option("--stream", "stream", required=True, metavar="URL|sandbox", help="wss://host/kline-api/ws or sandbox.")
@click.option("--symbol", "symbols", required=True, multiple=True, help="A symbol to record (repeat for more).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The recording, e.g. btc.jsonl.gz.")
@click.option("--for", "duration", metavar="DURATION", help="Stop after this long (30s, 5m, 1h30m); else Ctrl-C.")
@click.option("--url", "rest_url", help="The deployment's REST base URL, for the rules line (not with sandbox).")
@click.option("--insecure", is_flag=True, help="Allow plain ws:// (and http://) to hosts other than this machine.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--connect-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 600), help="Seconds to connect."
)
def record(
    stream: str,
    symbols: tuple[str, ...],
    out: str,
    duration: str | None,
    rest_url: str | None,
    insecure: bool,
    force: bool,
    connect_timeout: float,
) -> None:
    """Record the market stream of the symbols to a gzip JSON-lines file (the input of `replay`)."""

    wanted = []
    for symbol in symbols:
        if not _SYMBOL.fullmatch(symbol.lower()):
            raise ConfigError(f"--symbol: {symbol!r} is not a symbol such as btcusdt (letters and digits)")
        if symbol.lower() not in wanted:
            wanted.append(symbol.lower())
    seconds = None
    if duration is not None:
        try:
            seconds = parse_duration(duration)
        except ValueError as exc:
            raise ConfigError(f"--for: {exc}") from None
    path = Path(out)
    if path.exists() and not force:
        raise ConfigError(f"--out: {out} exists; --force overwrites it")
    if not path.parent.is_dir():
        raise ConfigError(f"--out: the directory {path.parent} does not exist")
    if stream == "sandbox":
        if rest_url is not None:
            raise ConfigError("--url: the sandbox's own REST URL is used with --stream sandbox")
        from rebalancer.sandbox.host import embedded_sandbox_stream

        with embedded_sandbox_stream(state_dir()) as (sandbox_url, stream_url):
            _record(stream_url, sandbox_url, wanted, path, seconds, connect_timeout, insecure)
        return

    problem = stream_url_problem(stream, insecure=insecure)
    if problem is not None:
        raise ConfigError(f"--stream: {problem}")
    _record(stream, rest_url, wanted, path, seconds, connect_timeout, insecure)


def _rules(url: str, symbols: list[str], insecure: bool) -> dict[str, SymbolRules]:
    """The symbols' rules from the deployment's public symbol list (no keys needed)."""
    from rebalancer.exchange.parse import parse_symbols
    from rebalancer.exchange.profile import ExchangeProfile
    from rebalancer.exchange.transport import Transport

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--url: {url!r} is not an http(s) base URL such as https://openapi.example.com")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.hostname):
        raise ConfigError("--url: plain http to a host other than this machine; use https or --insecure")
    transport = Transport(url, "", "", ExchangeProfile(read_retries=0), insecure=insecure)
    try:
        listed = parse_symbols(transport.read("common/symbols", {}, signed=False))
    finally:
        transport.close()
    missing = [s for s in symbols if s not in listed]
    if missing:
        raise ConfigError(f"--symbol: {', '.join(missing)} not listed by {url}")
    return {s: listed[s] for s in symbols}


def _record(
    stream_url: str,
    rest_url: str | None,
    symbols: list[str],
    path: Path,
    seconds: int | None,
    connect_timeout: float,
    insecure: bool,
) -> None:
    from rebalancer.stream.client import StreamHub
    from rebalancer.stream.recording import Recorder

    rules = _rules(rest_url, symbols, insecure) if rest_url else None
    try:
        recorder = Recorder(path)
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {path}: {exc.strerror or exc}") from None
    hub = StreamHub(stream_url, insecure=insecure)
    started = time.monotonic()
    done = False
    try:
        with _stop_on_signals() as stop:
            if rules is not None:
                recorder.write_rules(time.time_ns() // 1_000_000, rules)
            for symbol in symbols:
                hub.subscribe(symbol, recorder)
            _await_connection(hub, stop, connect_timeout)
            _until_done(hub, recorder, stop, started, seconds)
            done = True
    finally:
        hub.close()
        recorder.close()
        if (not done or recorder.error) and path.is_file():  # never a device or pipe given as --out
            path.unlink(missing_ok=True)
    if recorder.error:
        raise ConfigError(f"--out: cannot write {path}: {recorder.error}; the recording was removed")
    if sys.stderr.isatty():
        click.echo("\r" + " " * 70 + "\r", err=True, nl=False)
    elapsed = time.monotonic() - started
    click.echo(f"Recorded {recorder.frames} frames ({recorder.bytes} bytes) in {elapsed:.1f}s to {path}.", err=True)


@contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM for the block (the previous handlers come back after it)."""
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _await_connection(hub: StreamHub, stop: threading.Event, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not hub.stats().connected:
        if stop.wait(0.02):
            return
        if time.monotonic() > deadline:
            why = hub.stats().last_error or "no answer"
            raise TransientError(f"cannot reach the market stream at {hub.shown_url} within {timeout:g}s: {why}")


def _until_done(hub: StreamHub, recorder: Recorder, stop: threading.Event, started: float, seconds: int | None) -> None:

    tty = sys.stderr.isatty()
    every = TTY_EVERY if tty else LOG_EVERY
    shown = flushed = time.monotonic()
    while not stop.wait(0.05):
        if recorder.error:
            return  # the caller reports it
        if recorder.refused:
            raise ConfigError(f"the market stream refused the channel {recorder.refused[0]} (is the symbol listed?)")
        now = time.monotonic()
        if seconds is not None and now - started >= seconds:
            return
        if now - flushed >= FLUSH_EVERY:
            flushed = now
            recorder.flush()
        if now - shown >= every:
            shown = now
            _progress(recorder, hub, started, tty)


def _progress(recorder: Recorder, hub: StreamHub, started: float, tty: bool) -> None:
    """One progress line on stderr; on a terminal it is rewritten in place."""
    stats = hub.stats()
    state = "" if stats.connected else ", reconnecting"
    line = (
        f"{recorder.frames} frames, {recorder.bytes} bytes, {time.monotonic() - started:.1f}s"
        f"{state}, {stats.garbage} ignored"
    )
    if tty:
        click.echo("\r" + line.ljust(70), err=True, nl=False)
    else:
        click.echo(line, err=True)
