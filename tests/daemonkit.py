"""One way to run the daemon in-process in a test: ``running(store, jobs)`` starts it on the jobs, yields it, and
stops it at the end of the block, its exchanges opened with the demo account's keys (those of the test sandboxes)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import open_exchange
from rebalancer.job import Job
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY
from rebalancer.state.store import StateStore

DEMO_ENV = {"REBALANCER_API_KEY": DEMO_API_KEY, "REBALANCER_SECRET_KEY": DEMO_SECRET_KEY}


def opener(env: Mapping[str, str] = DEMO_ENV) -> Callable[[Job], Any]:
    """The daemon's exchange opener with the credentials in ``env``."""
    return functools.partial(open_exchange, env=env)


@contextlib.contextmanager
def running(
    store: StateStore | Path, jobs: Iterable[Job], *, env: Mapping[str, str] = DEMO_ENV, **kwargs: Any
) -> Iterator[Daemon]:
    """A started daemon for ``jobs`` on ``store`` (a folder: a fresh SQLite store there, closed after the block),
    stopped at the end of the block; ``kwargs`` go to ``Daemon`` (an ``opener`` there replaces the demo one)."""
    with contextlib.ExitStack() as stack:
        if isinstance(store, Path):
            store = stack.enter_context(StateStore(f"sqlite:///{store}/state.db"))
        daemon = Daemon(store, **{"opener": opener(env), "stop_wait": 10, **kwargs})
        daemon.start(list(jobs))
        try:
            yield daemon
        finally:
            daemon.stop()
