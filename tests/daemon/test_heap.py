"""The heap trimmer: started where the C library can trim, and never in the way."""

from __future__ import annotations

import ctypes
import sys

import pytest

from rebalancer.daemon.heap import start_trimming


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_trimming_runs_on_a_daemon_thread_of_its_own() -> None:
    if not hasattr(ctypes.CDLL(None), "malloc_trim"):
        pytest.skip("not glibc")
    thread = start_trimming(3600.0)
    assert thread is not None
    assert thread.daemon and thread.is_alive()  # never keeps the process from exiting
    assert thread.name == "rebalancer-heap-trim"
