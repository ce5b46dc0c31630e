"""Hosting the persisted sandbox world: for ``url: sandbox`` jobs, or for ``rebalancer sandbox``.

The world lives in the state directory (``sandbox-world.json``) and is caught up to the wall clock when opened. It is
shared by every process of the state directory (``rebalancer.sandbox.share``): the first that needs it serves it on
loopback, the others connect to that server, and when the server ends a process still using the world takes over.
Within one process, one use of the world is shared by every job (the daemon runs many).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from rebalancer.defaults import SANDBOX_LOCK_WAIT_SECONDS
from rebalancer.errors import StateError
from rebalancer.sandbox.share import SharedWorld, serve_world

LOCK_WAIT_SECONDS = SANDBOX_LOCK_WAIT_SECONDS

_SHARED = SharedWorld()


@contextlib.contextmanager
def embedded_sandbox(state_dir: Path) -> Iterator[str]:
    """The world of ``state_dir`` for the block: served here (saved after every change) or, when another process
    serves it, that process's URL. Yields the base URL.

    The demo account's keys (``DEMO_API_KEY``, ``DEMO_SECRET_KEY``) trade on it.
    """
    url = _SHARED.acquire(state_dir, wait=LOCK_WAIT_SECONDS)
    try:
        yield url
    finally:
        _SHARED.release()


@contextlib.contextmanager
def embedded_sandbox_stream(state_dir: Path) -> Iterator[tuple[str, str]]:
    """Like ``embedded_sandbox``, yielding the REST URL and the market stream URL of the world of ``state_dir``;
    ``StateError`` when the process serving it serves no stream."""
    with embedded_sandbox(state_dir) as url:
        stream = _SHARED.stream_url
        if not stream:  # an older process serves it
            raise StateError(
                f"the process serving the sandbox world of {state_dir} serves no market stream: restart it"
            )
        yield url, stream


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
    stream_port: int = 0,
    ping_every: float = 5.0,
) -> None:
    """``rebalancer sandbox``: keep the world of ``state_dir`` served over HTTP (and its market stream over
    websockets on ``stream_port``) until SIGINT/SIGTERM, standing by while another process serves it and taking
    over when that one ends.

    ``prefix`` puts the /open/api routes under a path prefix; ``sign`` is the signature the server accepts;
    ``ping_every`` is the stream's heartbeat period in seconds.
    """
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    serve_world(
        state_dir,
        port=port,
        seed=seed,
        reset=reset,
        echo=echo,
        stop=stop,
        wait=LOCK_WAIT_SECONDS,
        save_every=save_every,
        prefix=prefix,
        sign=sign,
        stream_port=stream_port,
        ping_every=ping_every,
    )
