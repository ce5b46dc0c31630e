"""Exchange profiles: what differs between /open/api deployments (time unit, paging, limits, timeouts, batch
size, signing, error codes).

One ``ExchangeProfile`` value describes one deployment. The error-code table maps the exchange's ``code``
(as text) to the branch of the exception tree that tells the caller what to do next; ``ALT_NUMBERING`` is the
table of the deployments that use the other numbering.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from rebalancer import defaults
from rebalancer.errors import (
    AccountError,
    AuthError,
    ClockError,
    ExchangeError,
    RateLimited,
    RejectedError,
    RequestError,
    TransientError,
)
from rebalancer.exchange.signing import SignMethod
from rebalancer.vocab import TimeUnit

ErrorTable = Mapping[str, type[ExchangeError]]

TEMPLATE_CODES: ErrorTable = MappingProxyType(
    {
        "5": RejectedError,  # placement failed (precision)
        "6": RejectedError,  # volume below minimum
        "10063": RejectedError,
        "7": RejectedError,  # volume / order size above maximum
        "10068": RejectedError,
        "8": RejectedError,  # cancel failed
        "9": AccountError,  # trading frozen
        "13": TransientError,  # system error
        "100001": TransientError,
        "100002": TransientError,  # system upgrade
        "19": RejectedError,  # insufficient balance
        "10034": RejectedError,
        "22": RejectedError,  # order does not exist
        "23": RequestError,  # volume missing
        "24": RequestError,  # price missing
        "10062": RejectedError,  # precision too fine
        "10064": RejectedError,  # price or amount below minimum
        "10067": RejectedError,  # outside the day's band
        "10069": RateLimited,
        "110041": RateLimited,
        "100004": RequestError,  # illegal parameters
        "100005": AuthError,  # signature
        "100007": AuthError,  # IP not bound
        "100008": ClockError,  # time too old
        "110025": AccountError,  # account locked
        "not_sufficient_funds": RejectedError,  # word code seen on one deployment
    }
)
"""The template numbering of OPEN_API.md."""

ALT_NUMBERING: ErrorTable = MappingProxyType(
    {
        **TEMPLATE_CODES,
        "1": TransientError,  # system error
        "2": RequestError,  # parameter error
        "4": RejectedError,  # insufficient balance
        "25": RejectedError,  # precision
        "31": RejectedError,  # below minimum
        "34": RateLimited,
        "10069": RejectedError,  # "no market orders" in this numbering
    }
)
"""The second numbering: the template table with the codes that differ there."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` requests in any window of ``period`` seconds."""

    count: int
    period: float

    def __post_init__(self) -> None:
        if self.count < 1 or self.period <= 0:
            raise ValueError(f"rate limit needs count >= 1 and period > 0, got {self.count}/{self.period}s")


@dataclass(frozen=True, slots=True)
class ExchangeProfile:
    """How one /open/api deployment behaves. The defaults are the template's.

    ``read_timeout`` is the total time of one request, connecting included (``exchange.timeout``), not only each
    socket read; ``connect_timeout`` caps the connecting part of it; ``max_batch`` caps each
    list of one mass_replaceV2; ``sign`` picks the signature scheme.

    Unknown non-zero codes classify as ``ExchangeError`` itself for reads (not retried, reported as is) and as
    ``RejectedError`` for writes: the server answered, so the write was refused rather than lost.
    """

    time_unit: TimeUnit = TimeUnit.MS
    page_size: int = defaults.PAGE_SIZE
    read_limit: RateLimit = RateLimit(*defaults.READ_RATE)
    write_limit: RateLimit = RateLimit(*defaults.WRITE_RATE)
    connect_timeout: float = defaults.CONNECT_TIMEOUT_SECONDS
    read_timeout: float = defaults.READ_TIMEOUT_SECONDS
    read_retries: int = defaults.READ_RETRIES
    backoff_base: float = defaults.READ_RETRY_BACKOFF_SECONDS
    backoff_max: float = defaults.READ_RETRY_BACKOFF_CAP_SECONDS
    error_codes: ErrorTable = field(default_factory=lambda: TEMPLATE_CODES)
    max_batch: int = defaults.BATCH_LIMIT
    sign: SignMethod = SignMethod.MD5

    def __post_init__(self) -> None:
        if self.time_unit not in tuple(TimeUnit):
            raise ValueError(f"time_unit must be 'ms' or 's', got {self.time_unit!r}")
        object.__setattr__(self, "time_unit", TimeUnit(self.time_unit))
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1")
        if self.read_retries < 0 or self.backoff_base < 0 or self.backoff_max < 0:
            raise ValueError("retry count and backoff must not be negative")
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if not 1 <= self.max_batch <= defaults.BATCH_LIMIT:
            raise ValueError(f"max_batch must be 1 to {defaults.BATCH_LIMIT}, got {self.max_batch}")
        object.__setattr__(self, "sign", SignMethod(self.sign))

    @property
    def retry_window(self) -> float:
        """A failed read is tried again only while its attempts have waited less than this in all (seconds).

        Quick failures (5xx, refused connections) get every retry; once the attempts have waited a whole timeout
        (a timed-out attempt, say) the read fails, so a slow-but-alive server fails a read within about two
        timeouts rather than ``read_retries + 1`` of them.
        """
        return self.read_timeout

    def classify(self, code: str, *, write: bool = False) -> type[ExchangeError]:
        """The exception class for a non-zero ``code`` (see the class docstring for unknown codes)."""
        known = self.error_codes.get(str(code).strip())
        if known is not None:
            return known
        return RejectedError if write else ExchangeError

    def time_value(self, now_ms: int) -> str:
        """The signed ``time`` parameter for the instant ``now_ms`` (milliseconds since the epoch)."""
        return str(now_ms if self.time_unit is TimeUnit.MS else now_ms // 1000)

    def with_codes(self, overrides: ErrorTable) -> ExchangeProfile:
        """A copy whose error table is this one's with ``overrides`` laid on top."""
        return replace(self, error_codes=MappingProxyType({**self.error_codes, **overrides}))
