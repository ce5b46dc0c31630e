"""HTTP mechanics of the /open/api: one ``requests.Session``, signing, rate limits, retries and error mapping.

This is the one place where transport exceptions become ``rebalancer.errors`` exceptions. The rule that
shapes it: a read may be retried, a write never is. A write whose answer was lost after it could have reached
the exchange raises ``OutcomeUnknown``; one refused before it could have been applied (connection refused,
429, a rate-limit code) raises a ``TransientError`` / ``RateLimited`` that is safe to send again later.
"""

from __future__ import annotations

import email.utils
import functools
import logging
import math
import os
import random
import ssl
import time
import weakref
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from rebalancer.defaults import MAX_ANSWER_BYTES, MAX_RETRY_AFTER_SECONDS
from rebalancer.errors import (
    AuthError,
    BadResponse,
    ClockError,
    ExchangeError,
    OutcomeUnknown,
    RateLimited,
    RequestError,
    TransientError,
)
from rebalancer.exchange.deadline import connect_failure, deadline
from rebalancer.exchange.parse import decode_json, parse_envelope
from rebalancer.exchange.pools import give_back, take_adapter
from rebalancer.exchange.profile import ExchangeProfile
from rebalancer.exchange.ratelimit import KeyLimiter, limiter_for
from rebalancer.exchange.signing import Target, signed_params, without_secrets
from rebalancer.exchange.urls import check_base_url, host_header
from rebalancer.exchange.wire import Wire
from rebalancer.vocab import RateKind

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024

WriteHook = Callable[[str, Mapping[str, str], object], None]
"""Called after every write with (endpoint, parameters without api_key/sign, decoded answer or error text)."""


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def server_offset_ms(response: requests.Response | None, sent_ms: int, received_ms: int) -> int | None:
    """Server clock minus local clock in ms, from the answer's ``Date`` header (1 s resolution), if any."""
    if response is None or not response.headers.get("Date"):
        return None
    try:
        server = email.utils.parsedate_to_datetime(response.headers["Date"])
    except (TypeError, ValueError):
        return None
    local = (sent_ms + received_ms) // 2
    return int(server.timestamp() * 1000) - local


class Transport:
    """Sends signed requests to one exchange and returns the ``data`` of successful envelopes.

    ``time_offset_ms`` is added to the local clock for the signed ``time``; it is set from the server's
    ``Date`` header when the server refuses our time (code 100008), so later calls use the corrected clock.
    ``credentials`` names where the keys came from (``REBALANCER_API_KEY and REBALANCER_SECRET_KEY``), for the
    advice of a refused signature. The profile's ``read_timeout`` is the total time of one request, connect
    included.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        secret_key: str,
        profile: ExchangeProfile,
        *,
        limiter: KeyLimiter | None = None,
        insecure: bool = False,
        on_write: WriteHook | None = None,
        sleep: Callable[[float], None] = time.sleep,
        credentials: str = "",
    ) -> None:
        self.base_url = check_base_url(base_url, insecure=insecure)
        self.credentials = credentials
        self.api_key = api_key
        self._secret = secret_key
        self.profile = profile
        self.limiter = limiter or limiter_for(self.base_url, api_key, profile)
        self.on_write = on_write
        self.time_offset_ms = 0
        self._sleep = sleep
        self.host = host_header(self.base_url)
        self.prefix = urlsplit(self.base_url).path.rstrip("/")
        self.session = requests.Session()
        # The environment (proxies, CA bundle) is read once here rather than on every request, as requests would:
        # that scan of os.environ was a sixth of a quiet daemon pass's CPU.
        self.session.trust_env = False
        self.session.proxies.update(_environ_proxies(self.base_url))
        adapter = take_adapter(self.base_url, self.session.proxies)
        # Given back once: by ``close``, or when the transport is collected unclosed.
        self._give_back = weakref.finalize(self, give_back, adapter)
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, adapter)
        self._verify: bool | str = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.session.verify = self._verify
        self.session.headers["User-Agent"] = "rebalancer/0.1"
        # Sent as signed: the HMAC signature covers the Host header's value.
        self.session.headers["Host"] = self.host
        self.wire = Wire(self.session, self.base_url, self._verify)

    def __repr__(self) -> str:
        return f"Transport({self.base_url!r}, api_key={mask(self.api_key)!r})"

    def close(self) -> None:
        """Let go of the pooled connections (closed once no other transport of the process uses them)."""
        self.wire.close()
        self._give_back()  # not ``session.close()``: that would close the adapter the other transports share

    def now_ms(self) -> int:
        """Local time in ms, corrected by the measured server offset."""
        return time.time_ns() // 1_000_000 + self.time_offset_ms

    def sign_params(self, params: Mapping[str, str], method: str = "GET", path: str = "") -> dict[str, str]:
        """``params`` with ``api_key``, this client's ``time`` and their ``sign``: what would be sent to ``path``."""
        stamp = self.profile.time_value(self.now_ms())
        target = Target(method, self.host, self.url_path(path))
        return signed_params(
            params,
            api_key=self.api_key,
            secret=self._secret,
            time_value=stamp,
            method=self.profile.sign,
            target=target,
        )

    def url_path(self, path: str) -> str:
        """The path requested for the endpoint ``path``, the base URL's prefix included."""
        return f"{self.prefix}/open/api/{path}"

    def read(self, path: str, params: Mapping[str, str], *, signed: bool) -> Any:
        """GET ``path``; transient failures are retried with exponential backoff and full jitter.

        Retries stop after ``read_retries`` or once the attempts have waited ``retry_window`` seconds in all, so
        a server that keeps timing out fails the read within about two timeouts, not ``read_retries + 1``.
        A clock refusal with a measured offset is retried once at once with the corrected time.
        """
        attempt = 0
        clock_fixed = False
        waited = 0.0
        while True:
            started = time.monotonic()
            try:
                query = (
                    self.sign_params(params, "GET", path) if signed else {k: v for k, v in params.items() if v != ""}
                )
                return self._send("GET", path, query, write=False)
            except ClockError as error:
                if clock_fixed or error.offset_ms is None:
                    raise
                clock_fixed = True
            except TransientError as error:
                waited += time.monotonic() - started
                if attempt >= self.profile.read_retries or waited >= self.profile.retry_window:
                    raise
                delay = self._backoff(attempt)
                if isinstance(error, RateLimited) and error.retry_after is not None:
                    delay = max(delay, error.retry_after)
                attempt += 1
                log.info("%s; retry %d in %.2fs", error, attempt, delay)
                self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.profile.backoff_max, self.profile.backoff_base * (2**attempt))
        # The module's generator, shared by every transport of the process (reseeded in a forked worker): one per
        # transport held 2.5 KiB of state for each job.
        return random.uniform(0, ceiling)

    def write(self, path: str, params: Mapping[str, str]) -> Any:
        """POST ``path`` once, form-encoded and signed. Never retried (the module docstring says why)."""
        body = self.sign_params(params, "POST", path)
        recorded = without_secrets(body)
        try:
            data = self._send("POST", path, body, write=True)
        except ExchangeError as error:
            self._record(path, recorded, f"{type(error).__name__}: {error}")
            raise
        self._record(path, recorded, data)
        return data

    def _record(self, path: str, params: Mapping[str, str], answer: object) -> None:
        if self.on_write is None:
            return
        try:
            self.on_write(path, params, answer)
        except Exception:
            # Recording is bookkeeping: its failure must not turn a sent write into an error of the write.
            log.exception("%s: the on_write hook failed", path)

    def _send(self, method: str, path: str, params: dict[str, str], *, write: bool) -> Any:
        endpoint = path
        total = self.profile.read_timeout
        timeout = (min(self.profile.connect_timeout, total), total)
        self.limiter.acquire(RateKind.WRITE if write else RateKind.READ)
        log.debug("%s %s %s", method, path, without_secrets(params))
        sent_ms = time.time_ns() // 1_000_000
        with deadline(total) as limit:
            try:
                request, on_wire = self.wire.prepare(method, path, params, write)
                response = self.wire.send(request, on_wire, timeout)
                with response:
                    text = self._body(response, endpoint, write)
            except requests.RequestException as error:
                late = time.monotonic() >= limit
                raise self._transport_error(error, endpoint, write, late=late, unopened=connect_failure()) from None
        received_ms = time.time_ns() // 1_000_000
        return self._answer(response, text, endpoint, write, sent_ms, received_ms)

    def _body(self, response: requests.Response, endpoint: str, write: bool) -> str:
        """The answer body as text, read in chunks up to ``MAX_ANSWER_BYTES``; a larger one is refused."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(READ_CHUNK):
            size += len(chunk)
            if size > MAX_ANSWER_BYTES:
                limit = f"the answer is larger than {MAX_ANSWER_BYTES // (1024 * 1024)} MiB"
                if write:
                    raise OutcomeUnknown(f"{limit}; read the open orders back", endpoint=endpoint)
                raise BadResponse(limit, endpoint=endpoint)
            chunks.append(chunk)
        body = b"".join(chunks)
        try:
            return body.decode(response.encoding or "utf-8", errors="replace")
        except LookupError:  # a charset Python does not know: JSON is UTF-8 anyway
            return body.decode("utf-8", errors="replace")

    def _transport_error(
        self,
        error: requests.RequestException,
        endpoint: str,
        write: bool,
        *,
        late: bool = False,
        unopened: BaseException | None = None,
    ) -> ExchangeError:
        # Messages name the failure, never the URL: the query string of a read carries api_key and sign.
        kind = type(error).__name__
        if late:
            kind = f"no complete answer within {self.profile.read_timeout:g}s"
        host = urlsplit(self.base_url).netloc
        if isinstance(unopened, ssl.SSLError):
            # Not transient: a certificate or protocol mismatch fails the same way at once, so reads do not retry.
            return ExchangeError(
                f"TLS handshake with {host} failed ({tls_reason(unopened)}); nothing was sent",
                endpoint=endpoint,
                hint="check the URL's scheme and port, and the server's certificate (REQUESTS_CA_BUNDLE: a CA file)",
            )
        if isinstance(error, requests.ConnectTimeout) or _refused(error) or unopened is not None:
            return TransientError(f"could not connect to {host} ({kind}); nothing was sent", endpoint=endpoint)
        lost = (
            requests.Timeout,
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.exceptions.ContentDecodingError,
        )
        if isinstance(error, lost):
            if write:
                return OutcomeUnknown(
                    f"answer lost ({kind}); read the open orders back",
                    endpoint=endpoint,
                    may_land_late=late or isinstance(error, requests.Timeout),
                )
            return TransientError(f"answer lost ({kind})", endpoint=endpoint)
        return RequestError(f"request could not be built or sent ({kind})", endpoint=endpoint)

    def _answer(
        self,
        response: requests.Response,
        text: str,
        endpoint: str,
        write: bool,
        sent_ms: int,
        received_ms: int,
    ) -> Any:
        status = response.status_code
        if status == 429:
            retry_after = _retry_after(response)
            self.limiter.back_off(retry_after if retry_after is not None else self.profile.backoff_base)
            limited = RateLimited("HTTP 429 too many requests", endpoint=endpoint, retry_after=retry_after)
            log.warning("%s", limited)
            raise limited
        if status >= 500:
            if write:
                raise OutcomeUnknown(f"HTTP {status} after sending; read the open orders back", endpoint=endpoint)
            raise TransientError(f"HTTP {status}", endpoint=endpoint)
        if status == 404:
            raise RequestError(
                "HTTP 404: the exchange does not serve this endpoint at the configured URL"
                " (does the URL need a path prefix such as /exchange-open-api?)",
                endpoint=endpoint,
            )
        try:
            body = decode_json(text, endpoint)
            if status != 200 and not (isinstance(body, dict) and "code" in body):
                raise _status_error(status, endpoint)
            return parse_envelope(body, endpoint, lambda code: self.profile.classify(code, write=write))
        except AuthError as error:
            raise type(error)(error.detail, endpoint=endpoint, code=error.code, hint=self._auth_advice(error)) from None
        except RateLimited as error:
            self.limiter.back_off(self.profile.backoff_base)
            log.warning("%s", error)
            raise
        except ClockError as error:
            error.offset_ms = server_offset_ms(response, sent_ms, received_ms)
            if error.offset_ms is not None:
                self.time_offset_ms += error.offset_ms
            raise
        except BadResponse as error:
            if status != 200:
                raise _status_error(status, endpoint) from None
            if write:
                raise OutcomeUnknown(
                    f"answer not understood ({error}); read the open orders back", endpoint=endpoint
                ) from None
            raise
        except TransientError as error:
            if write:
                raise OutcomeUnknown(
                    f"transient failure after sending ({error})", endpoint=endpoint, code=error.code
                ) from None
            raise

    def _auth_advice(self, error: AuthError) -> str:
        """What to do about a refused key: bind the IP (code 100007), else check where the keys came from."""
        if error.code == IP_REFUSED:
            return "bind this machine's IP address to the API key in the exchange's API settings"
        where = self.credentials or "the API key and secret key"
        return f"check {where} (a key pair of this exchange, copied whole)"


IP_REFUSED = "100007"


def tls_reason(error: ssl.SSLError) -> str:
    """Why a TLS handshake failed, in the words of the TLS library (``certificate verify failed: ...``)."""
    if isinstance(error, ssl.SSLCertVerificationError) and error.verify_message:
        return f"certificate verify failed: {error.verify_message}"
    reason = error.reason or type(error).__name__
    return str(reason).replace("_", " ").lower()


def _status_error(status: int, endpoint: str) -> ExchangeError:
    """The error for a non-200, non-429, non-5xx answer without an envelope: the request was refused."""
    if status in (401, 403):
        return AuthError(f"HTTP {status}: the exchange refused the credentials", endpoint=endpoint)
    return RequestError(f"HTTP {status} without an envelope", endpoint=endpoint)


def _refused(error: requests.RequestException) -> bool:
    """True when the connection could not be opened, so the request never left this host."""
    if not isinstance(error, requests.ConnectionError) or isinstance(error, requests.exceptions.SSLError):
        return False
    reason: object = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)
    name = type(reason).__name__
    return name in ("NewConnectionError", "NameResolutionError") or isinstance(reason, ConnectionRefusedError)


def mask(api_key: str) -> str:
    """An API key shortened for display: the first four characters and a mask."""
    return f"{api_key[:4]}…" if len(api_key) > 8 else "…"


@functools.cache
def _environ_proxies(base_url: str) -> dict[str, str]:
    """The proxies the environment names for ``base_url``, read once per URL: each read scans all of os.environ,
    and a daemon with a thousand jobs' keys in its environment opening a client per job made that quadratic."""
    return dict(requests.utils.get_environ_proxies(base_url))
