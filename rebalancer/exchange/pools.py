"""Keep-alive connections shared by every transport of one process that talks to the same exchange URL.

Each transport used to mount adapters of its own: a pool manager, a connection pool with its queue and locks, and
an idle keep-alive connection, 14 KiB of memory a job and an open socket (a thread on a threaded server) each,
while a daemon's passes send a few requests at once at most. Transports of one base URL and one proxy setting now
take the same adapter from here; its pool keeps the connections that were open at once, for whichever pass sends
next. The last transport to give the adapter back closes it, so a process that opens and drops exchanges (a job
removed at a reload, a test's sandbox) holds nothing for them afterwards.

What stays a transport's own: its session (headers, cookies, hooks), its signing keys and its rate limiter.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from rebalancer.defaults import POOLED_CONNECTIONS
from rebalancer.exchange.deadline import DeadlineAdapter

PoolKey = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class _Shared:
    adapter: DeadlineAdapter
    users: int


_lock = threading.Lock()
_shared: dict[PoolKey, _Shared] = {}


def take_adapter(base_url: str, proxies: Mapping[str, str]) -> DeadlineAdapter:
    """The adapter (and so the connection pool) of ``base_url`` through ``proxies``, one per process; give it
    back with ``give_back`` when done."""
    key = (base_url, tuple(sorted(proxies.items())))
    with _lock:
        shared = _shared.get(key)
        if shared is None:
            shared = _shared[key] = _Shared(DeadlineAdapter(pool_maxsize=POOLED_CONNECTIONS), 0)
        shared.users += 1
        return shared.adapter


def give_back(adapter: DeadlineAdapter) -> None:
    """One user less of ``adapter`` (each ``take_adapter`` is given back once); the last one closes its
    connections."""
    with _lock:
        for key, shared in _shared.items():
            if shared.adapter is adapter:
                shared.users -= 1
                if shared.users > 0:
                    return
                del _shared[key]
                break
        else:
            return
    adapter.close()


def adapter_users(base_url: str) -> int:
    """How many transports of this process share the connections of ``base_url`` now (0: it holds none)."""
    with _lock:
        return sum(shared.users for (url, _), shared in _shared.items() if url == base_url)


def _forget_in_child() -> None:
    """A forked process starts with no shared adapter: the parent's connections stay the parent's, and a lock held
    by one of the parent's threads at the fork would never be released here."""
    global _lock
    _lock = threading.Lock()
    _shared.clear()


os.register_at_fork(after_in_child=_forget_in_child)
