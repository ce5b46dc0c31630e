"""The words the tool speaks in plans, outcomes, pass records and logs, as string enums.

Each member *is* its word (``StrEnum``): it compares equal to the string, prints as it, and goes into JSON and the
state store unchanged, so the plan JSON, ``history`` and the logs keep their spelling. Code names the member,
never the literal, so a misspelt word fails at import rather than silently never matching.
"""

from __future__ import annotations

import enum


class ActionKind(enum.StrEnum):
    """What a plan does with one order or target. The members are in the plan's action order."""

    CANCEL = "cancel"
    PLACE = "place"
    KEEP = "keep"


class CancelReason(enum.StrEnum):
    """Why the diff cancels an open order; when several apply, the first in this order is given."""

    OUTSIDE_BAND = "outside_band"
    OVER_MAX_ORDERS = "over_max_orders"
    DUPLICATE_LEVEL = "duplicate_level"
    PARTIALLY_FILLED = "partially_filled"
    SIZE_OUT_OF_TOLERANCE = "size_out_of_tolerance"
    PRICE_OUT_OF_TOLERANCE = "price_out_of_tolerance"
    NOT_IN_LADDER = "not_in_ladder"
    MAX_AGE = "max_age"  # refresh.max_age: the order grew too old and is replaced
    PRICE_LIMIT = "price_limit"  # beyond limits.price_ceiling / price_floor (decided before the diff)


class OutcomeStatus(enum.StrEnum):
    """What became of one sent cancel or placement, as confirmed by reading the book back."""

    PLACED = "placed"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    UNKNOWN = "unknown"


class PassResult(enum.StrEnum):
    """How one pass ended: the ``result`` of a ``PassReport`` and of a stored pass.

    ``planned`` and ``declined`` end passes that sent nothing and are never stored; the rest may be.
    """

    OK = "ok"
    NO_CHANGES = "no_changes"
    PLANNED = "planned"
    DECLINED = "declined"
    REJECTED = "rejected"
    UNKNOWN_OUTCOME = "unknown_outcome"
    ERROR = "error"
    SKIPPED = "skipped"
    FENCED = "fenced"  # the pass lost its lease before a write and sent nothing more

    @property
    def failed(self) -> bool:
        """True when something was refused, left unconfirmed or not sent for want of the lease: exit non-zero."""
        return self in (PassResult.REJECTED, PassResult.UNKNOWN_OUTCOME, PassResult.FENCED)


STORED_PASS_RESULTS = frozenset(r for r in PassResult if r not in (PassResult.PLANNED, PassResult.DECLINED))
"""The pass results the state store accepts."""


class Mode(enum.StrEnum):
    """Which command or daemon event ran a pass; recorded with every stored pass."""

    PLAN = "plan"
    APPLY = "apply"
    CANCEL = "cancel"
    ONCE = "once"
    RUN = "run"
    STOP = "stop"
    CLUSTER = "cluster"


class PausedBy(enum.StrEnum):
    """Why a job's passes are skipped (``rebalancer status``) or its plan's placements paused (plan ``paused_by``)."""

    SWITCH = "switch"  # rebalancer pause JOB
    FILE = "file"  # the job file says paused: true
    MARKET_DATA = "market_data"  # stale or absurd market data: a plan's placements pause (plan JSON ``paused_by``)
    MAX_LOSS = "max_loss"  # the job lost more than limits.max_loss since it started or was resumed


class AccountUse(enum.StrEnum):
    """Who trades on the job's account: others too (balances read whenever placements need them), or this job alone
    (balances carried from the last read, less what the job has placed since, until they no longer cover a pass)."""

    SHARED = "shared"
    DEDICATED = "dedicated"


class SignMethod(enum.StrEnum):
    """How requests are signed: the template's MD5, or HMAC-SHA256 over method, host, path and parameters."""

    MD5 = "md5"
    HMAC_SHA256 = "hmac-sha256"


class TimeUnit(enum.StrEnum):
    """Unit of the signed ``time`` parameter (job file ``exchange.time_unit``)."""

    MS = "ms"
    S = "s"


class DropReason(enum.StrEnum):
    """Why a target the job asked for is not in the plan (plan JSON ``dropped[].reason``)."""

    BELOW_MIN_VOLUME = "below_min_volume"
    INVENTORY = "inventory"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    MERGED = "merged"
    NON_POSITIVE_PRICE = "non_positive_price"
    NON_POSITIVE_SIZE = "non_positive_size"
    OUT_OF_RANGE = "out_of_range"
    OUTSIDE_BAND = "outside_band"
    OVER_MAX_ORDERS = "over_max_orders"
    POST_ONLY = "post_only"
    PRICE_LIMIT = "price_limit"
    GATE = "gate"  # the gate refused the placement of a planned pass


class RateKind(enum.StrEnum):
    """Which request budget a call spends: reads, or writes (placements and cancels)."""

    READ = "read"
    WRITE = "write"


class Skip(enum.StrEnum):
    """Why a scheduler passed over a due job without running its pass (a metric label and log word)."""

    NOT_LOADED = "not_loaded"
    VERSION_DIFFERS = "version_differs"
    PAUSED = "paused"
    LEASE_HELD = "lease_held"
    BACKOFF = "backoff"


class JobState(enum.StrEnum):
    """How a job's status page shows it."""

    PAUSED = "paused"
    IDLE = "idle"  # no pass recorded yet
    FAILING = "failing"
    RUNNING = "running"


class NotifyKind(enum.StrEnum):
    """The events a webhook is told about (the ``event`` of its body)."""

    MAX_LOSS = "max_loss"
    PAUSED = "paused"
    RESUMED = "resumed"
    FAILING = "failing"
    RELOAD_REFUSED = "reload_refused"
    BLIND = "blind"  # a job went blind: no trusted market price for limits.max_blind


class WakeReason(enum.StrEnum):
    """Why a pass ran. Members are in the order ``core.wake.next_pass`` names them when several hold at once."""

    MARKET = "market"
    TRADE = "trade"
    REFERENCE = "reference"
    TIMER = "timer"
