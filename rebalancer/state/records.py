"""The values the state store takes and gives back, and the JSON text it stores documents as.

They are frozen and check themselves, like ``rebalancer.models``; prices and volumes travel as exact decimal
text (what was sent), except in ``Placement``, which the runner compares with open orders as ``Decimal``.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, Required, TypedDict, TypeVar

from rebalancer.errors import StateError
from rebalancer.models import PriceSource, Side
from rebalancer.vocab import STORED_PASS_RESULTS, ActionKind, Mode, OutcomeStatus, PassResult, WakeReason

T = TypeVar("T")
RESULT_ACTIONS = frozenset({ActionKind.PLACE, ActionKind.CANCEL})
# Request keys that carry or derive from credentials; never stored, whatever their case.
SECRET_KEYS = frozenset({"api_key", "sign", "secret_key"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def cell(table: str, column: str, value: Any, read: Callable[[Any], T]) -> T:
    """``read(value)`` of a stored value, or a ``StateError`` naming its table and column when it is garbage.

    The store writes only values it can read back; one that fails was edited by hand or damaged (SQLite keeps
    any text in any column), and the pass must stop with that said, not with a traceback.
    """
    try:
        return read(value)
    except (ValueError, TypeError, ArithmeticError, KeyError, AttributeError) as exc:
        shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
        raise StateError(
            f"state store: {table}.{column} holds {shown}, which cannot be read ({exc.__class__.__name__}); "
            "the store was edited by hand or is damaged"
        ) from None


def stored_ms(value: Any) -> datetime:
    """A stored epoch-milliseconds integer as a datetime; anything else (text, a float) is refused."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not whole epoch milliseconds")
    return from_ms(value)


def stored_decimal(value: Any) -> Decimal:
    """Stored decimal text as a finite Decimal; anything else is refused."""
    if not isinstance(value, str):
        raise TypeError("not decimal text")
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError("not a finite number")
    return number


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime; a naive one is refused because its zone would be a guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("state store times must be timezone-aware datetimes")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    """The aware UTC datetime of epoch milliseconds."""
    return _EPOCH + timedelta(milliseconds=ms)


_JSON_LEAVES = frozenset({str, int, float, bool, type(None)})


def _plain(value: object) -> Any:
    """A JSON-ready rendering of ``value``: Decimals as exact text, dataclasses and enums by their content."""
    if type(value) in _JSON_LEAVES:  # most of a document, so asked first (exact types: an enum is a str or int too)
        return value
    if type(value) is dict:
        return {str(k): _plain(v) for k, v in value.items()}
    if type(value) is list:
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def dump_json(value: object) -> str:
    """Compact, key-sorted JSON text of ``value`` (see ``_plain`` for what non-JSON types become)."""
    return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def check_pass_key(job: str, mode: Mode) -> None:
    """Refuse a pass row without a job name or with an unknown mode (a programming error, not bad input)."""
    if not job or mode not in tuple(Mode):
        raise ValueError(f"a pass needs a job name and a mode (one of {', '.join(Mode)}), got {job!r}, {mode!r}")


class Ended(TypedDict, total=False):
    """How a pass ended, as keywords: what ``record_pass`` and ``finish_pass`` take (``pass_outcome``'s keywords)."""

    result: Required[PassResult]
    summary: Required[Mapping[str, int]]
    warnings: Sequence[str]
    error: str | None
    duration_ms: int | None
    reference_price: str | None
    fingerprint: str | None
    wake: WakeReason | None
    prices: PriceSource | None


def pass_outcome(
    *,
    result: PassResult,
    summary: Mapping[str, int],
    warnings: Sequence[str] = (),
    error: str | None = None,
    duration_ms: int | None = None,
    reference_price: str | None = None,
    fingerprint: str | None = None,
    wake: WakeReason | None = None,
    prices: PriceSource | None = None,
) -> dict[str, object]:
    """The columns of a pass row that say how it ended, checked and encoded as the ``passes`` table stores them.

    ``wake``: why the pass ran (None: a command ran it); ``prices``: where its market prices came from (None: it
    read none).
    """
    if result not in STORED_PASS_RESULTS:
        raise ValueError(f"pass result must be one of {sorted(STORED_PASS_RESULTS)}, not {result!r}")
    return {
        "result": result,
        "summary": dump_json({str(k): int(v) for k, v in summary.items()}),
        "warnings": dump_json([str(w) for w in warnings]),
        "error": error,
        "duration_ms": duration_ms,
        "reference_price": reference_price,
        "fingerprint": fingerprint,
        **origin_columns(wake, prices),
    }


def origin_columns(wake: WakeReason | None, prices: PriceSource | None) -> dict[str, str | None]:
    """The ``wake`` and ``prices`` columns of a pass row, checked (an unknown reason or source is a ``ValueError``)."""
    return {
        "wake": None if wake is None else WakeReason(wake).value,
        "prices": None if prices is None else PriceSource(prices).value,
    }


def pass_origin(row: Any) -> dict[str, Any]:
    """``wake`` and ``prices`` of a stored pass row, as ``PassRecord`` takes them (NULL: not known)."""
    return {
        "wake": None if row.wake is None else cell("passes", "wake", row.wake, WakeReason),
        "prices": None if row.prices is None else cell("passes", "prices", row.prices, PriceSource),
    }


def load_json(text: str | None) -> Any:
    """Parse stored JSON text; numbers come back as Decimal so nothing is ever read as a float."""
    if text is None:
        return None
    return json.loads(text, parse_float=Decimal)


def without_secrets(request: Mapping[str, object]) -> dict[str, object]:
    """A copy of ``request`` without the credential keys (``api_key``, ``sign``, ``secret_key``, any case)."""
    return {k: v for k, v in request.items() if k.lower() not in SECRET_KEYS}


def _check_decimal_text(name: str, text: str) -> None:
    """Refuse anything that is not a finite decimal number written as text."""
    if not isinstance(text, str):
        raise TypeError(f"{name} must be decimal text, not {type(text).__name__}")
    try:
        ok = Decimal(text).is_finite()
    except InvalidOperation:
        ok = False
    if not ok:
        raise ValueError(f"{name} {text!r} is not a decimal number")


@dataclasses.dataclass(frozen=True, slots=True)
class OrderResult:
    """What became of one cancel or placement of a pass: the order it speaks of and the exchange's code."""

    action: ActionKind
    side: str
    price: str
    volume: str
    order_id: str | None
    status: OutcomeStatus
    code: str | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.action not in RESULT_ACTIONS:
            raise ValueError(f"order result action must be one of {sorted(RESULT_ACTIONS)}, not {self.action!r}")
        if self.status not in tuple(OutcomeStatus):
            raise ValueError(f"order result status must be one of {sorted(OutcomeStatus)}, not {self.status!r}")
        object.__setattr__(self, "action", ActionKind(self.action))
        object.__setattr__(self, "status", OutcomeStatus(self.status))
        # Side is a str enum: store its plain value so the column never holds "Side.BUY".
        object.__setattr__(self, "side", Side(self.side).value)
        _check_decimal_text("price", self.price)
        _check_decimal_text("volume", self.volume)


class Placement(NamedTuple):
    """One order an in-flight batch was about to place; a plain ``(side, price, volume)`` tuple."""

    side: Side
    price: Decimal
    volume: Decimal

    @classmethod
    def of(cls, side: Side | str, price: Decimal | str, volume: Decimal | str) -> Placement:
        """A checked placement from enum-or-text side and decimal-or-text price and volume (both positive)."""
        exact = []
        for name, value in (("price", price), ("volume", volume)):
            if isinstance(value, float):
                raise TypeError(f"placement {name} must be Decimal or text, never float")
            if isinstance(value, str):
                _check_decimal_text(name, value)
            number = Decimal(value)
            if not number.is_finite() or number <= 0:
                raise ValueError(f"placement {name} must be a positive decimal, not {value!r}")
            exact.append(number)
        return cls(Side(side), exact[0], exact[1])


@dataclasses.dataclass(frozen=True, slots=True)
class InFlight:
    """A batch recorded before sending, never confirmed: after a crash its placements may be on the book."""

    id: int
    job: str
    pass_id: int | None
    created_at: datetime
    placements: tuple[Placement, ...]
    late_until: datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PassRecord:
    """One pass as ``rebalancer history`` lists it; ``result`` is None while it runs (or if it died)."""

    id: int
    job: str
    mode: Mode
    started_at: datetime
    duration_ms: int | None
    result: PassResult | None
    summary: Mapping[str, int]
    warnings: tuple[str, ...]
    error: str | None
    reference_price: str | None
    fingerprint: str | None
    batch_count: int
    wake: WakeReason | None = None  # why it ran; None: a command's pass, or one recorded before it was kept
    prices: PriceSource | None = None  # where its prices came from; None: none read, or not kept then

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``history --json``."""
        return {
            "id": self.id,
            "job": self.job,
            "mode": self.mode,
            "started_at": self.started_at.isoformat(),
            "duration_ms": self.duration_ms,
            "result": self.result,
            "summary": dict(self.summary),
            "warnings": list(self.warnings),
            "error": self.error,
            "reference_price": self.reference_price,
            "fingerprint": self.fingerprint,
            "batches": self.batch_count,
            "wake": self.wake,
            "prices": self.prices,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class BatchRecord:
    """One stored batch: the request as sent (without credentials), the parsed answer or the error."""

    id: int
    index: int
    recorded_at: datetime
    request: Mapping[str, Any]
    answer: Any
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; Decimals in the answer become their exact text."""
        return {
            "index": self.index,
            "recorded_at": self.recorded_at.isoformat(),
            "request": _plain(self.request),
            "answer": _plain(self.answer),
            "error": self.error,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class PassDetail:
    """A pass with everything it sent and everything that came of it."""

    record: PassRecord
    batches: tuple[BatchRecord, ...]
    results: tuple[OrderResult, ...]
    fills: tuple[dict[str, Any], ...] = ()  # the fills this pass learnt (``Fill.to_dict``)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for ``history --json``."""
        out = self.record.to_dict()
        out["batches"] = [b.to_dict() for b in self.batches]
        out["results"] = [_plain(r) for r in self.results]
        out["fills"] = list(self.fills)
        return out
