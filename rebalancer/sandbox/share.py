"""Who serves a state directory's sandbox world, and where: the world's lock and its address file.

The process holding ``sandbox.lock`` (an ``flock``: the kernel drops it when the process dies, however it dies)
serves the world on loopback and writes ``sandbox.addr`` (``{"url": ..., "stream": ..., "pid": ...}``: the REST
URL and the market stream's). Every other process that
needs the world reads the address and talks to that server over HTTP. An address is only believed while its lock is
held, its process runs and its URL answers, so a stale file (a killed server) is never trusted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from rebalancer.errors import StateError
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.sandbox.world import WORLD_FILE, open_world

log = logging.getLogger("rebalancer.sandbox")

LOCK_FILE = "sandbox.lock"
ADDR_FILE = "sandbox.addr"
PROBE_TIMEOUT_SECONDS = 2.0


class WorldLock:
    """The world's lock, tried without waiting; held until ``release`` (or until the process ends)."""

    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._path = state_dir / LOCK_FILE
        self._handle: IO[str] | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._handle is not None

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; True when this object holds it."""
        if self._handle is not None:
            return True
        handle = open(self._path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None


@dataclass(frozen=True)
class Address:
    """Where the serving process serves the world."""

    url: str
    pid: int
    stream: str = ""


def write_address(state_dir: Path, url: str, stream: str = "") -> None:
    """Publish this process's server URL and stream URL, atomically (a reader never sees half a file)."""
    text = json.dumps({"url": url, "stream": stream, "pid": os.getpid()})
    fd, tmp = tempfile.mkstemp(prefix=f".{ADDR_FILE}.", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, state_dir / ADDR_FILE)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_address(state_dir: Path) -> None:
    """Withdraw the address if this process wrote it."""
    address = read_address(state_dir)
    if address is not None and address.pid == os.getpid():
        (state_dir / ADDR_FILE).unlink(missing_ok=True)


def read_address(state_dir: Path) -> Address | None:
    """The published address, or None when there is none or it is unreadable."""
    try:
        data = json.loads((state_dir / ADDR_FILE).read_text(encoding="utf-8"))
        return Address(str(data["url"]), int(data["pid"]), str(data.get("stream") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_address(state_dir: Path) -> Address | None:
    """The address of another running process that serves the world and answers, else None."""
    address = read_address(state_dir)
    if address is None or address.pid == os.getpid() or not _running(address.pid):
        return None
    return address if answers(address.url) else None


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def answers(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """Whether a sandbox answers at ``url`` (any HTTP answer counts; a refused connection does not)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
    try:
        with contextlib.closing(opener.open(f"{url}/open/api/common/symbols", timeout=timeout)):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError, ValueError):
        return False


class SharedWorld:
    """This process's use of a state directory's sandbox world: served here, or by another process over HTTP.

    ``acquire`` returns the URL to trade on. The first user in a process serves the world if no process does
    (holding the lock), else connects to the process that does. While this process is a client, a watcher takes
    over when the serving process ends: it takes the lock, loads the world the server saved, and serves it on the
    same port, so the URLs this process's clients hold keep working. The last ``release`` stops serving (saving the
    world and withdrawing the address) and gives the lock up, for another process to take over.
    """

    def __init__(self, *, watch_every: float = 0.2) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._watch_every = watch_every
        self._state_dir: Path | None = None
        self._world_lock: WorldLock | None = None
        self._server: SandboxServer | None = None
        self._stop_watching: threading.Event | None = None
        self.url = ""
        self.stream_url = ""

    @property
    def serving(self) -> bool:
        """Whether this process serves the world right now."""
        return self._server is not None

    def acquire(self, state_dir: Path, *, wait: float) -> str:
        """The URL of the world of ``state_dir``, served here or elsewhere; StateError after ``wait`` seconds if
        another process holds the world without publishing an address that answers."""
        with self._lock:
            if self._users == 0:
                self._join(state_dir, wait)
            self._users += 1
            return self.url

    def release(self) -> None:
        """One user fewer; the last one stops serving here (or stops watching) and lets the lock go."""
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            if self._stop_watching is not None:
                self._stop_watching.set()
                self._stop_watching = None
            self._stop_serving()
            self.url = self.stream_url = ""

    def _join(self, state_dir: Path, wait: float) -> None:
        world_lock = WorldLock(state_dir)
        address = None if world_lock.try_acquire() else _await_address(state_dir, world_lock, wait)
        if address is None:
            self._serve(state_dir, world_lock, port=0)
            return
        self._state_dir, self.url, self.stream_url = state_dir, address.url, address.stream
        self._watch(state_dir, address.url, address.stream)

    def _serve(
        self, state_dir: Path, world_lock: WorldLock, *, port: int, prefix: str = "", stream_port: int = 0
    ) -> None:
        """Serve the saved world here (the lock is held) with its stream, saving it after every change, and
        publish the URLs."""
        try:
            engine = open_world(state_dir / WORLD_FILE)
            server = SandboxServer(
                engine,
                Faults(rate_limits=False),
                port=port,
                save_path=state_dir / WORLD_FILE,
                prefix=prefix,
                stream=True,
                stream_port=stream_port,
            )
            server.start()
            write_address(state_dir, server.url, server.stream_url or "")
        except BaseException:
            world_lock.release()
            raise
        self._state_dir, self._world_lock, self._server, self.url = state_dir, world_lock, server, server.url
        self.stream_url = server.stream_url or ""

    def _stop_serving(self) -> None:
        server, world_lock, state_dir = self._server, self._world_lock, self._state_dir
        self._server = self._world_lock = None
        if server is not None and state_dir is not None:
            try:
                server.stop()  # saves the world
            finally:
                remove_address(state_dir)
        if world_lock is not None:
            world_lock.release()  # only now, with the world saved, may another process take over

    def _watch(self, state_dir: Path, url: str, stream: str) -> None:
        stop = threading.Event()
        self._stop_watching = stop
        where = urlsplit(url)
        stream_port = (urlsplit(stream).port or 0) if stream else 0
        thread = threading.Thread(
            target=self._take_over_when_free,
            args=(state_dir, where.port or 0, where.path, stream_port, stop),
            name="rebalancer-sandbox-watch",
            daemon=True,
        )
        thread.start()

    def _take_over_when_free(
        self, state_dir: Path, port: int, prefix: str, stream_port: int, stop: threading.Event
    ) -> None:
        """Poll the lock; once the serving process has let it go, serve the world here at the same address."""
        world_lock = WorldLock(state_dir)
        complained = False
        while not stop.wait(self._watch_every):
            if not world_lock.try_acquire():
                continue
            with self._lock:
                if stop.is_set():
                    world_lock.release()
                    return
                try:
                    self._serve(state_dir, world_lock, port=port, prefix=prefix, stream_port=stream_port)
                except (OSError, StateError) as exc:
                    if not complained:
                        log.error("could not take over serving the sandbox world", extra={"error": str(exc)})
                        complained = True
                    continue
                self._stop_watching = None
                log.info("took over serving the sandbox world", extra={"url": self.url})
                return


def serve_world(
    state_dir: Path,
    *,
    port: int,
    seed: int,
    reset: bool,
    echo: Callable[[str], None],
    stop: threading.Event,
    wait: float,
    save_every: float = 5.0,
    prefix: str = "",
    sign: str = "any",
    stream_port: int = 0,
    ping_every: float = 5.0,
) -> None:
    """``rebalancer sandbox``: keep the world of ``state_dir`` served on loopback until ``stop`` is set, with its
    market stream on ``stream_port``.

    When another process already serves it, say where and stand by: take over (at the same address) when it ends.
    ``prefix`` puts the /open/api routes under a path prefix; ``sign`` is the signature the server accepts.
    """
    world_lock = WorldLock(state_dir)
    if not world_lock.try_acquire():
        address = _await_address(state_dir, world_lock, wait)
        if address is not None:
            if reset:
                raise StateError(
                    f"cannot reset the sandbox world: process {address.pid} serves it at {address.url}; stop it first"
                )
            _announce(echo, address.url, address.stream)
            echo(f"Process {address.pid} serves this world; this one takes over when it ends. Ctrl-C stops.")
            while not world_lock.try_acquire():
                if stop.wait(0.2):
                    return
            where = urlsplit(address.url)
            port, prefix = where.port or port, where.path
            stream_port = (urlsplit(address.stream).port or stream_port) if address.stream else stream_port
    try:
        engine = open_world(state_dir / WORLD_FILE, seed=seed, reset=reset)
        server = SandboxServer(
            engine,
            Faults(sign=sign),
            port=port,
            save_path=state_dir / WORLD_FILE,
            prefix=prefix,
            stream=True,
            stream_port=stream_port,
            ping_every=ping_every,
        )
        try:
            server.start()
        except OSError as exc:
            server.stop()
            ports = f"127.0.0.1:{port} (stream port {stream_port})"
            raise StateError(f"cannot listen on {ports}: {exc.strerror or exc}") from None
        try:
            write_address(state_dir, server.url, server.stream_url or "")
            _announce(echo, server.url, server.stream_url or "")
            echo("Serving the sandbox exchange; Ctrl-C stops it.")
            while not stop.wait(save_every):
                server.app.save()
        finally:
            server.stop()
            remove_address(state_dir)
    finally:
        world_lock.release()


def _await_address(state_dir: Path, world_lock: WorldLock, wait: float) -> Address | None:
    """The live address of the process holding the world (None if the lock came free meanwhile: it is ours)."""
    deadline = time.monotonic() + wait
    while True:
        address = live_address(state_dir)
        if address is not None:
            return address
        if world_lock.try_acquire():
            return None
        if time.monotonic() >= deadline:
            raise StateError(
                f"the sandbox world in {state_dir} is held by another rebalancer process that does not serve it "
                "(an older version?); stop that process"
            )
        time.sleep(0.05)


def _announce(echo: Callable[[str], None], url: str, stream: str) -> None:
    echo(f"url: {url}")
    echo(f"api_key: {DEMO_API_KEY}")
    echo(f"secret_key: {DEMO_SECRET_KEY}")
    echo(f"stream: {stream or '(not served by that process)'}")
