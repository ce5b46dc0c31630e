"""The daemon's C heap: one malloc arena for all its threads, and its freed heap given back to the system (glibc's
``malloc_trim`` every few seconds, on a thread of its own).

A long-running daemon's heap fragments: what the passes free lies between chunks still in use, and glibc returns to
the system only the free memory at the top of its heap, so the resident size grows while the objects Python tracks
stay as many. ``malloc_trim`` walks the heap and gives back every free page inside it too (bench/daemon_bench.py:
about 9 % of the daemon's memory). It runs outside the GIL: a pass waits on it only to ``malloc`` meanwhile (Python
takes its small objects from arenas of its own), for under a millisecond. Elsewhere than glibc: nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Callable

_M_ARENA_MAX = -8  # glibc's mallopt parameter
TRIM_SECONDS = 5.0  # a walk of the daemon's heap takes under a millisecond of CPU: < 0.1 % of a core at this rate


def one_malloc_arena() -> None:
    """Have glibc's malloc serve every thread of this process (and of workers forked from it) from one arena.

    By default each thread that allocates gets an arena of its own, and the pass threads leave each of theirs part
    used: one arena saves about a tenth of the daemon's memory (bench/daemon_bench.py). The passes hold the GIL
    while they allocate, so the threads hardly ever wait on the arena's lock. Elsewhere than glibc: nothing.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).mallopt(_M_ARENA_MAX, 1)


def start_trimming(seconds: float = TRIM_SECONDS) -> threading.Thread | None:
    """Start trimming this process's heap every ``seconds``; None where the C library cannot (not glibc).

    Call it in every process that runs passes, after any fork: a thread does not survive into a forked child.
    """
    trim = _malloc_trim()
    if trim is None:
        return None
    thread = threading.Thread(target=_trim_every, args=(trim, seconds), name="rebalancer-heap-trim", daemon=True)
    thread.start()
    return thread


def _malloc_trim() -> Callable[[int], int] | None:
    with contextlib.suppress(OSError, AttributeError):
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
        return trim
    return None


def _trim_every(trim: Callable[[int], int], seconds: float) -> None:
    while True:
        time.sleep(seconds)
        trim(0)
