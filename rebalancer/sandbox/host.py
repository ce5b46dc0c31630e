"""Hosting the persisted sandbox world: in this process for ``url: sandbox`` jobs, or for ``rebalancer sandbox``.

The world lives in the state directory (``sandbox-world.json``) and is caught up to the wall clock when opened. A
file lock beside it keeps two processes from driving one world at once; whoever holds the lock saves the world
back when done. One embedded server per process is shared by every job that uses it (the daemon runs many).
"""

from __future__ import annotations

import contextlib
import fcntl
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from rebalancer.defaults import SANDBOX_LOCK_WAIT_SECONDS
from rebalancer.errors import StateError
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.sandbox.world import WORLD_FILE, open_world, save

LOCK_WAIT_SECONDS = SANDBOX_LOCK_WAIT_SECONDS
LOCK_FILE = "sandbox.lock"


@contextlib.contextmanager
def world_lock(state_dir: Path, *, wait: float | None = None) -> Iterator[None]:
    """Hold the sandbox world's lock; another holder past ``wait`` seconds is a clear StateError."""
    wait = LOCK_WAIT_SECONDS if wait is None else wait
    state_dir.mkdir(parents=True, exist_ok=True)
    handle: IO[str] = open(state_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the whole block
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StateError(
                        f"the sandbox world in {state_dir} is in use by another rebalancer process; "
                        "stop it, or serve the world with `rebalancer sandbox` and point the job's url at it"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        handle.close()


def load_world(state_dir: Path, *, seed: int = 7, reset: bool = False) -> Engine:
    """The saved sandbox world, caught up to now; a fresh one when there is none (or on ``reset``)."""
    return open_world(state_dir / WORLD_FILE, seed=seed, reset=reset)


class _EmbeddedSandbox:
    """One sandbox server per process, shared by every job that uses it (the daemon runs many at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._stack: contextlib.ExitStack | None = None
        self.url = ""

    def acquire(self, state_dir: Path) -> str:
        with self._lock:
            if self._users == 0:
                stack = contextlib.ExitStack()
                try:
                    stack.enter_context(world_lock(state_dir))
                    engine = load_world(state_dir)
                    stack.callback(save, engine, state_dir / WORLD_FILE)
                    server = SandboxServer(engine, Faults(rate_limits=False))
                    server.start()
                    stack.callback(server.stop)
                except BaseException:
                    stack.close()
                    raise
                self._stack, self.url = stack, server.url
            self._users += 1
            return self.url

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0 and self._stack is not None:
                stack, self._stack = self._stack, None
                stack.close()


_EMBEDDED = _EmbeddedSandbox()


@contextlib.contextmanager
def embedded_sandbox(state_dir: Path) -> Iterator[str]:
    """Serve the world of ``state_dir`` on a loopback port for the block; yields the base URL, saves on exit.

    The demo account's keys (``DEMO_API_KEY``, ``DEMO_SECRET_KEY``) trade on it.
    """
    url = _EMBEDDED.acquire(state_dir)
    try:
        yield url
    finally:
        _EMBEDDED.release()


def serve_sandbox(
    state_dir: Path,
    *,
    port: int,
    seed: int,
    reset: bool,
    echo: Callable[[str], None],
    save_every: float = 5.0,
    prefix: str = "",
    sign: str = "any",
) -> None:
    """``rebalancer sandbox``: serve the world of ``state_dir`` over HTTP until SIGINT/SIGTERM, saving as it goes.

    ``prefix`` puts the /open/api routes under a path prefix; ``sign`` is the signature the server accepts.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with world_lock(state_dir, wait=0):
        engine = load_world(state_dir, seed=seed, reset=reset)
        server = SandboxServer(engine, Faults(sign=sign), port=port, save_path=state_dir / WORLD_FILE, prefix=prefix)
        try:
            server.start()
        except OSError as exc:
            raise StateError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        echo(f"url: {server.url}")
        echo(f"api_key: {DEMO_API_KEY}")
        echo(f"secret_key: {DEMO_SECRET_KEY}")
        echo("Serving the sandbox exchange; Ctrl-C stops it.")
        try:
            while not stop.wait(save_every):
                save(engine, state_dir / WORLD_FILE)
        finally:
            server.stop()
            save(engine, state_dir / WORLD_FILE)
