"""Job → a connected ``Exchange``: the HTTP client with credentials from the environment, or the embedded sandbox.

``url: sandbox`` starts the simulated exchange in this process on a loopback port, from the world saved in the state
directory, and saves it back when the command ends. A file lock keeps two processes from driving one world at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING

from rebalancer.defaults import SANDBOX_LOCK_WAIT_SECONDS
from rebalancer.errors import CredentialsMissing, StateError
from rebalancer.job import ExchangeConfig, Job
from rebalancer.logs import register_secret
from rebalancer.sandbox.world import WORLD_FILE

if TYPE_CHECKING:
    from rebalancer.exchange.client import OpenApiClient
    from rebalancer.sandbox.engine import Engine

LOCK_WAIT_SECONDS = SANDBOX_LOCK_WAIT_SECONDS
LOCK_FILE = "sandbox.lock"


def credentials(config: ExchangeConfig, env: Mapping[str, str]) -> tuple[str, str]:
    """The API key and secret named by the job, read from ``env``; a missing one names its variable."""
    values = []
    for what, name in (("API key", config.api_key_env), ("secret key", config.secret_key_env)):
        value = env.get(name, "")
        if not value:
            raise CredentialsMissing(f"environment variable {name} is not set (it should hold the {what})")
        register_secret(value)
        values.append(value)
    return values[0], values[1]


def make_client(config: ExchangeConfig, base_url: str, api_key: str, secret_key: str) -> OpenApiClient:
    """An HTTP client for one exchange with the job's profile settings (time unit, page size, timeout, batch
    size, signature)."""
    from rebalancer.exchange.client import OpenApiClient
    from rebalancer.exchange.profile import ExchangeProfile

    profile = ExchangeProfile(
        time_unit=config.time_unit.value,
        page_size=config.page_size,
        read_timeout=float(config.timeout_seconds),
        max_batch=config.max_batch,
        sign=config.sign,
    )
    return OpenApiClient(base_url, api_key, secret_key, profile, insecure=config.insecure)


@contextlib.contextmanager
def open_exchange(job: Job, env: Mapping[str, str] | None = None) -> Iterator[OpenApiClient]:
    """Connect to the job's exchange for the duration of the ``with`` block."""
    env = os.environ if env is None else env
    if job.exchange.is_sandbox:
        with embedded_sandbox() as url:
            from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY

            client = make_client(job.exchange, url, DEMO_API_KEY, DEMO_SECRET_KEY)
            try:
                yield client
            finally:
                client.close()
        return
    api_key, secret_key = credentials(job.exchange, env)
    client = make_client(job.exchange, job.exchange.url, api_key, secret_key)
    try:
        yield client
    finally:
        client.close()


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
    from rebalancer.sandbox.world import open_world

    return open_world(state_dir / WORLD_FILE, seed=seed, reset=reset)


class _EmbeddedSandbox:
    """One sandbox server per process, shared by every job that uses it (the daemon runs many at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._stack: contextlib.ExitStack | None = None
        self.url = ""

    def acquire(self, state_dir: Path | None) -> str:
        from rebalancer.sandbox.faults import Faults
        from rebalancer.sandbox.server import SandboxServer
        from rebalancer.state.paths import state_dir as default_state_dir

        with self._lock:
            if self._users == 0:
                directory = state_dir or default_state_dir()
                stack = contextlib.ExitStack()
                try:
                    stack.enter_context(world_lock(directory))
                    engine = load_world(directory)
                    stack.callback(engine.save, directory / WORLD_FILE)
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
def embedded_sandbox(state_dir: Path | None = None) -> Iterator[str]:
    """Serve the persisted sandbox world on a loopback port for the block; yields the base URL, saves on exit."""
    url = _EMBEDDED.acquire(state_dir)
    try:
        yield url
    finally:
        _EMBEDDED.release()


def serve_sandbox(
    *,
    port: int,
    seed: int,
    reset: bool,
    echo: Callable[[str], None],
    save_every: float = 5.0,
    prefix: str = "",
    sign: str = "any",
) -> None:
    """``rebalancer sandbox``: serve the persisted world over HTTP until SIGINT/SIGTERM, saving it as it goes.

    ``prefix`` puts the /open/api routes under a path prefix; ``sign`` is the signature the server accepts.
    """
    import signal

    from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY
    from rebalancer.sandbox.faults import Faults
    from rebalancer.sandbox.server import SandboxServer
    from rebalancer.state.paths import state_dir

    directory = state_dir()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with world_lock(directory, wait=0):
        engine = load_world(directory, seed=seed, reset=reset)
        server = SandboxServer(
            engine, Faults(sign=sign), port=port, save_path=directory / WORLD_FILE, prefix=prefix
        )
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
                engine.save(directory / WORLD_FILE)
        finally:
            server.stop()
            engine.save(directory / WORLD_FILE)
