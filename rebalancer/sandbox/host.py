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
    legacy_paths: bool = False,
) -> None:
    """``rebalancer sandbox``: keep the world of ``state_dir`` served over HTTP until SIGINT/SIGTERM, standing by
    while another process serves it and taking over when that one ends.

    ``prefix`` puts the /open/api routes under a path prefix; ``sign`` is the signature the server accepts;
    ``legacy_paths`` serves only the old paths, like deployments that document no v2 paths.
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
        legacy_paths=legacy_paths,
    )
