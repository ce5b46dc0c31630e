"""The Job value: a validated job file, as frozen dataclasses with Decimal fields.

``rebalancer.jobfile.load`` builds it from YAML; the ladder, the runner and the daemon only ever see this value.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from rebalancer import defaults
from rebalancer.models import Side
from rebalancer.vocab import AccountUse, SignMethod, TimeUnit


@dataclass(frozen=True, slots=True)
class Amount:
    """A distance or size given either absolutely or as a percentage (``percent=True``: ``value`` is in %)."""

    value: Decimal
    percent: bool = False

    def of(self, base: Decimal) -> Decimal:
        """The absolute amount: ``value`` itself, or ``value`` percent of ``base``."""
        return base * self.value / 100 if self.percent else self.value

    def __str__(self) -> str:
        return f"{self.value}%" if self.percent else str(self.value)


class Spacing(enum.StrEnum):
    """How ladder levels are spaced: ``step`` apart (linear) or each ``step`` percent beyond the last (geometric)."""

    LINEAR = "linear"
    GEOMETRIC = "geometric"


class ReferenceKind(enum.StrEnum):
    """Which market price the ladder hangs from."""

    MID = "mid"
    BID = "bid"
    ASK = "ask"
    LAST = "last"
    FIXED = "fixed"


class Ownership(enum.StrEnum):
    """Which open orders a job may cancel: every order on the symbol, or only the ones it placed."""

    SYMBOL = "symbol"
    TRACKED = "tracked"


class OnBlind(enum.StrEnum):
    """What a job does when it has seen no trusted market price for ``limits.max_blind``."""

    KEEP = "keep"
    CANCEL = "cancel"


class OnStop(enum.StrEnum):
    """What the daemon does with a job's orders when it stops or the job is removed."""

    KEEP = "keep"
    CANCEL = "cancel"


@dataclass(frozen=True, slots=True)
class Rate:
    """At most ``count`` requests in any window of ``seconds`` (``exchange.rate_limit``: ``"10/1s"``)."""

    count: int
    seconds: Decimal

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds.normalize():f}s"


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Where the exchange is and how to talk to it. Credentials are *names* of environment variables."""

    url: str = "sandbox"
    api_key_env: str = defaults.API_KEY_ENV
    secret_key_env: str = defaults.SECRET_KEY_ENV
    time_unit: TimeUnit = TimeUnit.MS
    page_size: int = defaults.PAGE_SIZE
    insecure: bool = False
    timeout_seconds: Decimal = Decimal(str(defaults.READ_TIMEOUT_SECONDS))
    max_batch: int = defaults.BATCH_LIMIT
    sign: SignMethod = SignMethod.MD5
    read_rate: Rate = Rate(defaults.READ_RATE[0], Decimal(str(defaults.READ_RATE[1])))
    write_rate: Rate = Rate(defaults.WRITE_RATE[0], Decimal(str(defaults.WRITE_RATE[1])))
    account: AccountUse = AccountUse.SHARED
    stream: str | None = None  # the public market stream's URL, or "sandbox"; None: polling only
    stream_stale_seconds: Decimal = Decimal(str(defaults.STREAM_STALE_SECONDS))  # book silent this long: poll

    @property
    def is_sandbox(self) -> bool:
        """True when the job uses the embedded simulated exchange."""
        return self.url == "sandbox"

    @property
    def is_sandbox_stream(self) -> bool:
        """True when the job listens to the embedded sandbox's own market stream."""
        return self.stream == "sandbox"


@dataclass(frozen=True, slots=True)
class Schedule:
    """When the daemon runs a pass: every ``every_seconds`` or on a ``cron`` expression, plus random ``jitter``."""

    every_seconds: Decimal | None = Decimal(defaults.EVERY_SECONDS)
    cron: str | None = None
    jitter_seconds: Decimal = Decimal(0)
    min_gap_seconds: Decimal = Decimal(defaults.MIN_GAP_SECONDS)  # least time between two passes of the job


@dataclass(frozen=True, slots=True)
class ReferenceSource:
    """Another venue the reference is read from: an ``/open/api`` deployment's public ticker of ``symbol``, or any
    JSON endpoint whose bid / ask (and optionally last) sit at the given JSON pointers.

    ``url`` ``sandbox`` means the embedded sandbox. Prices are multiplied by ``factor`` (a quote-currency
    conversion). A quote older than ``max_age_seconds``, or none at all, pauses placements. ``insecure``: plain
    http to a host other than this machine is allowed.
    """

    url: str
    symbol: str | None = None
    bid_pointer: str | None = None
    ask_pointer: str | None = None
    last_pointer: str | None = None
    max_age_seconds: Decimal = Decimal(10)
    factor: Decimal = Decimal(1)
    insecure: bool = False

    @property
    def is_json(self) -> bool:
        """True for a plain JSON endpoint read through pointers, False for an /open/api deployment."""
        return self.bid_pointer is not None or self.ask_pointer is not None or self.last_pointer is not None


@dataclass(frozen=True, slots=True)
class Reference:
    """The reference price: a market price (``kind``), of this venue or of ``source``, or a fixed ``price``."""

    kind: ReferenceKind = ReferenceKind.MID
    price: Decimal | None = None
    source: ReferenceSource | None = None


@dataclass(frozen=True, slots=True)
class Inventory:
    """Inventory skew: the base share of the symbol's value the job aims at, and how far from it sizes lean fully.

    Both are percentages (``target_base`` 50 means half the value in base). See ``rebalancer.core.skew``.
    """

    target_base: Decimal
    range: Decimal


@dataclass(frozen=True, slots=True)
class SideLadder:
    """One side of the ladder. Exactly one of ``size_step`` / ``size_factor`` may be set (neither: flat sizes)."""

    levels: int
    first: Amount
    step: Amount
    size: Decimal
    spacing: Spacing = Spacing.LINEAR
    size_step: Decimal | None = None
    size_factor: Decimal | None = None
    max_notional: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FixedOrder:
    """An order the job wants standing at a fixed price, beside (or instead of) the ladder."""

    side: Side
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far an open order may stray from its target and still be kept (percent of the target, or absolute)."""

    price: Amount = Amount(Decimal("0.1"), percent=True)
    size: Amount = Amount(Decimal(10), percent=True)


@dataclass(frozen=True, slots=True)
class Limits:
    """Guards: at most ``max_orders`` targets, none farther than ``band`` from the reference, optional post-only.

    ``max_jump``: a pass whose reference moved farther than this since the last pass places nothing (the move
    is suspect until the next pass sees it again); ``None`` turns the check off (``max_jump: 0%`` in the file).
    ``price_ceiling``: never a buy at or above it; ``price_floor``: never a sell at or below it.
    """

    max_orders: int | None = None
    band: Amount | None = None
    post_only: bool = True
    max_jump: Amount | None = Amount(Decimal(10), percent=True)
    price_ceiling: Decimal | None = None
    price_floor: Decimal | None = None
    max_loss: Decimal | None = None  # quote units lost on the job's fills since start/resume: pause past it
    max_blind_seconds: Decimal | None = None  # longest time without a trusted market price before ``on_blind``
    on_blind: OnBlind = OnBlind.KEEP


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """Order lifecycle: replace orders older than ``max_age_seconds``; leave a filled level empty ``fill_delay``."""

    max_age_seconds: Decimal | None = None
    fill_delay_seconds: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Notify:
    """Where the daemon POSTs events (``webhook``) and after how many failed passes in a row it tells."""

    webhook: str
    after_failures: int = 3


@dataclass(frozen=True, slots=True)
class Job:
    """A validated job file. ``source`` is the file path and ``source_hash`` the sha256 of its bytes."""

    name: str
    symbol: str
    exchange: ExchangeConfig = field(default_factory=ExchangeConfig)
    schedule: Schedule = field(default_factory=Schedule)
    reference: Reference = field(default_factory=Reference)
    buy: SideLadder | None = None
    sell: SideLadder | None = None
    orders: tuple[FixedOrder, ...] = ()
    tolerance: Tolerance = field(default_factory=Tolerance)
    limits: Limits = field(default_factory=Limits)
    inventory: Inventory | None = None
    ownership: Ownership = Ownership.TRACKED
    on_stop: OnStop = OnStop.KEEP
    paused: bool = False
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    notify: Notify | None = None
    version: int = 1
    source: str = ""
    source_hash: str = ""

    def side(self, side: Side) -> SideLadder | None:
        """The ladder of one side, if the job declares it."""
        return self.buy if side is Side.BUY else self.sell
