"""One transport's requests, prepared and sent as ``requests``' session and adapter would, with what never changes
for one base URL worked out once.

``Session.request`` and ``HTTPAdapter.send`` redo, on every request, work whose result is fixed for a transport:
the session's headers validated, the URL of each endpoint parsed and re-quoted, the credentials looked for in it,
the connection pool looked up from the TLS settings and proxies, the proxy chosen for the URL. ``Wire`` keeps those
results (the pool is taken on the first request that reaches it, as the adapter would take it then, and dropped
on ``close``) and does the rest as the adapter does: the same ``urlopen`` call, every urllib3 exception turned into
the same ``requests`` exception, the same ``Response``, then the session's response hooks and cookies. Errors are
therefore those of ``requests``, and ``Transport._transport_error`` maps them unchanged.

What the wire carries is the same byte for byte: ``tests/exchange/test_wire.py`` compares each request and
response with what ``requests`` builds (Hypothesis), over loopback and through a proxy.
"""

from __future__ import annotations

import functools
from urllib.parse import urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.cookies import extract_cookies_to_jar
from requests.exceptions import (
    ConnectionError,
    ConnectTimeout,
    InvalidHeader,
    InvalidURL,
    ProxyError,
    ReadTimeout,
    RetryError,
    SSLError,
)
from requests.hooks import dispatch_hook
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from urllib3 import BaseHTTPResponse
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import (
    ClosedPoolError,
    ConnectTimeoutError,
    LocationValueError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import HTTPError as _HTTPError
from urllib3.exceptions import InvalidHeader as _InvalidHeader
from urllib3.exceptions import ProxyError as _ProxyError
from urllib3.exceptions import SSLError as _SSLError
from urllib3.util import Timeout


class Wire:
    """Prepares and sends the requests of one base URL through ``session``'s adapter for it.

    The session's headers are read here, once (the transport sets them before); its cookies and response hooks are
    read on every request, as ``requests`` reads them. ``verify`` and ``proxies`` are the transport's (read once
    from the environment).
    """

    def __init__(self, session: requests.Session, base_url: str, verify: bool | str) -> None:
        self.session = session
        self.base_url = base_url
        self.verify = verify
        adapter = session.get_adapter(base_url)
        if not isinstance(adapter, HTTPAdapter):
            raise TypeError(f"the session's adapter for {base_url} is not an HTTPAdapter")
        self.adapter = adapter
        headers = requests.PreparedRequest()
        headers.prepare_headers(session.headers)
        self._headers = headers.headers
        self._endpoints: dict[str, tuple[str, str]] = {}
        self._pool: HTTPConnectionPool | None = None
        self._proxied = False

    def close(self) -> None:
        """Forget the pool (the session's close closes it): a request after this looks it up again."""
        self._pool = None

    def prepare(
        self, method: str, path: str, params: dict[str, str], write: bool
    ) -> tuple[requests.PreparedRequest, str]:
        """The request ``session.get(url, params=params)`` / ``session.post(url, data=params)`` would prepare for the
        endpoint ``path``, and the path (with its query) it goes to on the wire. The steps are
        ``PreparedRequest.prepare``'s, in its order, but for the credentials (a base URL has none) and the URL
        (prepared once per endpoint; the query ``urlencode`` makes has nothing ``requests`` would quote again)."""
        url, on_wire = self._endpoint(path)
        if not write and params:
            query = urlencode(params)
            url, on_wire = f"{url}?{query}", f"{on_wire}?{query}"
        request = requests.PreparedRequest()
        request.method = method
        request.url = url
        request.headers = self._headers.copy()
        if self.session.cookies:
            # An empty jar adds no Cookie header, but asking it costs a mock request and three URL parses.
            request.prepare_cookies(self.session.cookies)
        request.prepare_body(params if write else None, None)
        request.prepare_hooks(self.session.hooks)
        return request, on_wire

    def _endpoint(self, path: str) -> tuple[str, str]:
        known = self._endpoints.get(path)
        if known is None:
            request = requests.PreparedRequest()
            request.prepare_url(f"{self.base_url}/open/api/{path}", None)
            url = request.url or ""
            known = self._endpoints[path] = (url, urlsplit(url).path or "/")
        return known

    def send(self, request: requests.PreparedRequest, on_wire: str, timeout: tuple[float, float]) -> requests.Response:
        """What ``Session.send`` does for a request that follows no redirect and streams its answer: the adapter's
        send (the pool, ``urlopen``, the exceptions turned into ``requests``' own, the ``Response``), the response
        hooks, the cookies the answer sets kept for the next request."""
        adapter = self.adapter
        url = request.url or ""
        pool = self._pool or self._connect(request)
        adapter.cert_verify(pool, url, self.verify, None)
        headers = request.headers
        try:
            raw = pool.urlopen(
                method=request.method or "GET",
                url=url if self._proxied else on_wire,
                body=request.body,
                headers=headers,  # a CaseInsensitiveDict, as the adapter passes it
                redirect=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                retries=adapter.max_retries,
                timeout=_timeout(*timeout),
                chunked=not (request.body is None or "Content-Length" in headers),
            )
        except (OSError, _HTTPError) as error:
            mapped = _as_requests_error(error, request)
            if mapped is None:
                raise
            raise mapped from error
        response = self._response(request, raw)
        response = dispatch_hook("response", request.hooks, response)
        if _sets_cookies(raw):
            extract_cookies_to_jar(self.session.cookies, request, raw)
        return response

    def _connect(self, request: requests.PreparedRequest) -> HTTPConnectionPool:
        """The adapter's pool for the base URL (the same for every request of it), and whether a proxy needs the
        whole URL: kept once they are found, so a failure (a malformed proxy, say) recurs on every request."""
        adapter, proxies = self.adapter, self.session.proxies
        try:
            pool = adapter.get_connection_with_tls_context(request, self.verify, proxies=proxies, cert=None)
        except LocationValueError as e:
            raise InvalidURL(e, request=request) from e
        if not isinstance(pool, HTTPConnectionPool):
            raise TypeError(f"the adapter's pool for {self.base_url} is not an HTTP connection pool")
        self._proxied = adapter.request_url(request, proxies) != request.path_url
        self._pool = pool
        return pool

    def _response(self, request: requests.PreparedRequest, raw: BaseHTTPResponse) -> requests.Response:
        """``HTTPAdapter.build_response``, asking for the answer's cookies only when it sets some."""
        response = requests.Response()
        response.status_code = raw.status
        response.headers = CaseInsensitiveDict(raw.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = raw
        response.reason = raw.reason  # type: ignore[assignment]  # None when it gave none, as requests leaves it
        response.url = request.url or ""
        if _sets_cookies(raw):
            extract_cookies_to_jar(response.cookies, request, raw)
        response.request = request
        response.connection = self.adapter
        return response


_AFTER_RETRIES: tuple[tuple[type[Exception], type[requests.RequestException]], ...] = (
    (ResponseError, RetryError),
    (_ProxyError, ProxyError),
    (_SSLError, SSLError),
)
"""What ends the retries (``MaxRetryError.reason``) → what ``requests`` raises, past a connect timeout."""

_AT_ONCE: tuple[tuple[type[Exception], type[requests.RequestException]], ...] = (
    (_SSLError, SSLError),
    (ReadTimeoutError, ReadTimeout),
    (_InvalidHeader, InvalidHeader),
)
"""urllib3's errors raised without retries → what ``requests`` raises (a proxy error is told apart before)."""


def _as_requests_error(error: Exception, request: requests.PreparedRequest) -> Exception | None:
    """The exception ``requests``' adapter turns urllib3's ``error`` into (None where it lets it through), so that
    ``Transport`` maps what reaches it exactly as before."""
    if isinstance(error, ProtocolError | OSError | ClosedPoolError):
        return ConnectionError(error, request=request)
    if isinstance(error, MaxRetryError):
        reason = error.reason
        if isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError):
            return ConnectTimeout(error, request=request)
        raised = next((r for kind, r in _AFTER_RETRIES if isinstance(reason, kind)), ConnectionError)
        return raised(error, request=request)
    if isinstance(error, _ProxyError):
        return ProxyError(error)
    raised_at_once = next((r for kind, r in _AT_ONCE if isinstance(error, kind)), None)
    return None if raised_at_once is None else raised_at_once(error, request=request)


def _sets_cookies(raw: BaseHTTPResponse) -> bool:
    """True when the answer carries a header a cookie jar reads: without one, extracting cookies finds none."""
    return "Set-Cookie" in raw.headers or "Set-Cookie2" in raw.headers


@functools.cache
def _timeout(connect: float, read: float) -> Timeout:
    """The adapter's urllib3 ``Timeout`` for a ``(connect, read)`` pair; pools clone it, so one serves all."""
    return Timeout(connect=connect, read=read)
