"""The exception tree. Each branch says what the caller should do next, and carries the command's exit code::

    RebalancerError
    ├── ConfigError                 fix the job file or the command line
    │   ├── JobFileError            every problem of one or more files, each with file:line:col
    │   ├── CredentialsMissing      environment variables named by the job are not set (all of them, at once)
    │   └── Declined                the user did not confirm: nothing was sent
    ├── ExchangeError               something the exchange (or the way to it) said or failed to say
    │   ├── TransientError          retry later: system error, upgrade, 5xx, connection refused before sending
    │   │   └── RateLimited         slow down; ``retry_after`` seconds when the server said so
    │   ├── AuthError               fix the keys or the IP binding; retrying will not help
    │   ├── ClockError              the request ``time`` was refused; ``offset_ms`` when it could be measured
    │   ├── AccountError            the account cannot trade (frozen, locked)
    │   ├── RequestError            the request itself is wrong (a bug: missing or illegal parameter)
    │   ├── BadResponse             the answer cannot be understood; treat like transient, but report loudly
    │   ├── RejectedError           the exchange refused an order or a cancel: report, carry on
    │   └── OutcomeUnknown          a write was sent and its answer lost: read the book back, never re-send blindly
    ├── UnsafePlanError             the plan must not be sent (stale, or a guard refused it)
    └── StateError                  the state store or the sandbox world is unavailable or held by another process
        └── LeaseLost               this pass no longer holds its job's lease (fenced): it sends nothing more

Every error is an exit 1 today: exit 2 is kept for ``plan --detailed-exitcode`` with changes, so a script can never
read a failure as a pending change. ``exit_code`` lives on each branch so that the CLI maps it in one place
(``rebalancer.cli.main``) and a branch can be given its own code without touching the commands.
Transport exceptions are mapped into this tree in one place: ``rebalancer.exchange.client``.
Messages never contain secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from rebalancer.models import BatchRequest


class RebalancerError(Exception):
    """Base of every error rebalancer raises on purpose; its message is one line fit for the user."""

    exit_code: ClassVar[int] = 1


class ConfigError(RebalancerError):
    """The job file or the command line is wrong: fix it, nothing was sent."""

    exit_code: ClassVar[int] = 1


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of a job file, positioned at the offending key or value (1-based line and column)."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class JobFileError(ConfigError):
    """One or more job files are invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class CredentialsMissing(ConfigError):
    """Environment variables that should hold API credentials are not set (the message names every one)."""


class Declined(ConfigError):
    """The user was shown the plan and did not confirm it: nothing was sent."""


ENDPOINT_ACTIONS: dict[str, str] = {
    "common/symbols": "reading the symbol list",
    "get_ticker": "reading the ticker",
    "get_allticker": "reading every ticker",
    "market_dept": "reading the order book",
    "user/account": "reading balances",
    "v2/new_order": "reading open orders",
    "new_order": "reading open orders",
    "order_info": "reading one order",
    "v2/all_order": "reading order history",
    "all_order": "reading order history",
    "all_trade": "reading the account's trades",
    "cancel_order_all": "cancelling every order of the symbol",
    "mass_replaceV2": "sending a batch of cancels and placements",
    "create_order": "placing an order",
    "cancel_order": "cancelling an order",
}
"""What each /open/api endpoint does, as every message that names an endpoint says it (the path follows in
parentheses): ``v2/new_order`` reads open orders, whatever its name suggests."""


def endpoint_label(endpoint: str) -> str:
    """``endpoint`` as messages name it: ``reading open orders (/open/api/v2/new_order)``; unknown ones as given."""
    action = ENDPOINT_ACTIONS.get(endpoint)
    return f"{action} (/open/api/{endpoint})" if action else endpoint


class ExchangeError(RebalancerError):
    """Raised for anything the exchange said or failed to say. ``code`` is the exchange's code as text, if any.

    ``request`` is the batch request the error answers, set by the client when a mass_replaceV2 write failed, so
    that what was (or may have been) sent is recorded with the failure.
    """

    exit_code: ClassVar[int] = 1

    def __init__(self, message: str, *, endpoint: str = "", code: str | None = None, hint: str = "") -> None:
        self.endpoint = endpoint
        self.code = code
        self.detail = message
        self.hint = hint
        self.request: BatchRequest | None = None
        prefix = f"{endpoint_label(endpoint)}: " if endpoint else ""
        suffix = f" (code {code})" if code is not None else ""
        advice = f"; {hint}" if hint else ""
        super().__init__(f"{prefix}{message}{suffix}{advice}")


class TransientError(ExchangeError):
    """A temporary failure: the same request may succeed later."""


class RateLimited(TransientError):
    """The exchange asked us to slow down."""

    def __init__(
        self, message: str, *, endpoint: str = "", code: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, endpoint=endpoint, code=code)
        self.retry_after = retry_after


class AuthError(ExchangeError):
    """The keys, the signature or the IP binding were refused."""


class ClockError(ExchangeError):
    """The request's ``time`` was refused as too old or too new."""

    def __init__(
        self, message: str, *, endpoint: str = "", code: str | None = None, offset_ms: int | None = None
    ) -> None:
        super().__init__(message, endpoint=endpoint, code=code)
        self.offset_ms = offset_ms


class AccountError(ExchangeError):
    """The account may not trade right now (frozen, locked by the administrator)."""


class RequestError(ExchangeError):
    """The exchange says the request is malformed: a bug in the caller, not a market condition."""


class BadResponse(ExchangeError):
    """The answer could not be understood (not JSON, wrong shape, missing fields)."""


class RejectedError(ExchangeError):
    """The exchange refused one order or cancel (balance, precision, minimum, band, missing order)."""


class OutcomeUnknown(ExchangeError):
    """A write was sent but its answer was lost: whether it took effect can only be learnt by reading back.

    ``may_land_late`` is True when we stopped waiting (a timeout) while the exchange may still be working on the
    write, so it can take effect after the read-back; an answered failure (5xx) cannot.
    """

    def __init__(
        self, message: str, *, endpoint: str = "", code: str | None = None, may_land_late: bool = False
    ) -> None:
        super().__init__(message, endpoint=endpoint, code=code)
        self.may_land_late = may_land_late


class UnsafePlanError(RebalancerError):
    """The plan must not be sent: it is stale, or a guard refused it."""

    exit_code: ClassVar[int] = 1


class StateError(RebalancerError):
    """The state store or the sandbox world cannot be used (missing, corrupt, or held by another process)."""

    exit_code: ClassVar[int] = 1


class LeaseLost(StateError):
    """The pass's lease is no longer the job's current one, or has too little time left: it must not write.

    Another process may be reconciling the job under a newer epoch; this pass sends nothing more and ends.
    """
