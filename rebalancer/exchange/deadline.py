"""A total deadline for one HTTP exchange, on top of the per-read socket timeout that ``requests`` offers.

A socket timeout bounds each read, so a server that sends its answer one byte at a time keeps a request alive
forever. ``DeadlineAdapter`` gives every connection a response class whose reads check the deadline set by
``deadline(seconds)`` for the current thread: before each read of the socket, the socket's timeout is cut to
the time left, and a read after the deadline raises ``TimeoutError``, which ``requests`` reports as a timeout.
The status line, the headers and the body are all covered.

The connections also note, per thread, when opening a connection failed (``connect_failure``): such a request
never left this host, whatever the error, and a TLS handshake refused is told apart from an answer lost.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_state = threading.local()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[float]:
    """Within the block, HTTP answers read by this thread must be complete ``seconds`` from now.

    Yields the deadline as a ``time.monotonic()`` value.
    """
    previous = getattr(_state, "deadline", None)
    _state.deadline = time.monotonic() + seconds
    _state.connect_failure = None
    try:
        yield _state.deadline
    finally:
        _state.deadline = previous


def connect_failure() -> BaseException | None:
    """The error that kept the last request of this thread (in a ``deadline`` block) from opening its connection.

    None when the connection was opened (or reused): whatever failed then happened after it was open.
    """
    return getattr(_state, "connect_failure", None)


def _noting_connect_failure(connect: Any) -> Any:
    def wrapped(self: Any) -> None:
        try:
            connect(self)
        except BaseException as error:
            _state.connect_failure = error
            raise

    return wrapped


class _DeadlineReader(io.RawIOBase):
    """A raw stream over the response's buffered socket file whose every read respects the thread's deadline."""

    def __init__(self, inner: io.BufferedReader, sock: socket.socket) -> None:
        super().__init__()
        self._inner = inner
        self._sock = sock
        self._per_read = sock.gettimeout()

    def readable(self) -> bool:
        """Always: this is an input stream."""
        return True

    def readinto(self, buffer: Any) -> int:
        """One read of at most ``len(buffer)`` bytes, within the per-read timeout and the total deadline."""
        limit = getattr(_state, "deadline", None)
        if limit is not None:
            remaining = limit - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the answer was not complete before the deadline")
            per_read = self._per_read
            self._sock.settimeout(remaining if per_read is None else min(per_read, remaining))
        return self._inner.readinto1(buffer)

    def close(self) -> None:
        """Close the socket file underneath."""
        if not self.closed:
            self._inner.close()
        super().close()


class DeadlineResponse(http.client.HTTPResponse):
    """``http.client``'s response, reading through a ``_DeadlineReader``."""

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp, sock))


class _HTTPConnection(HTTPConnection):
    response_class = DeadlineResponse
    connect = _noting_connect_failure(HTTPConnection.connect)


class _HTTPSConnection(HTTPSConnection):
    response_class = DeadlineResponse
    connect = _noting_connect_failure(HTTPSConnection.connect)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """A ``requests`` adapter whose connections honour ``deadline`` (direct and through proxies)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """The default pool manager, with deadline-aware connection pools."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """The default proxy manager, with deadline-aware connection pools."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(POOLS)
        return manager
