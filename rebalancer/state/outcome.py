"""What a pass hands the state store to write: the write-ahead before it sends, and its outcome after.

A pass writes at most twice: ``PreSend`` (only when it will place orders or its loss limit pauses the job), then
``PassOutcome``, each in one transaction (``rebalancer.state.passio``). Values only: the engine decides, the store
writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from rebalancer.core.fills import Fill, Seen
from rebalancer.models import PriceSource
from rebalancer.state.records import OrderResult, Placement
from rebalancer.vocab import Mode, PassResult, PausedBy, WakeReason


@dataclass(frozen=True, slots=True)
class LeaseCheck:
    """The fence of a write-ahead committed right before the first batch: the lease the pass holds, checked inside
    the write-ahead's transaction with ``margin_seconds`` left (``rebalancer.engine.lease``)."""

    holder: str
    epoch: int
    margin_seconds: float


@dataclass(frozen=True, slots=True)
class OwnershipChange:
    """Which orders a job owns from now on, as the pass's order tracker decided.

    ``closes``: in-flight records to close, each with the ids adopted from it (tracked in the same statement
    group); ``track``: ids adopted from records that stay open; ``untrack``: ids no longer owned (gone, cancelled).
    """

    closes: tuple[tuple[int, tuple[str, ...]], ...] = ()
    track: tuple[str, ...] = ()
    untrack: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Origin:
    """Why a pass ran (``wake``; None: a command ran it) and where its market prices came from (``prices``; None:
    it failed before reading them): kept with the pass in the history."""

    wake: WakeReason | None = None
    prices: PriceSource | None = None


@dataclass(frozen=True, slots=True)
class PreSend:
    """The write-ahead of a pass, committed before its first batch: the pass row (result still empty), the
    placements it is about to send (an in-flight record, so a pass after a crash adopts what landed), the
    ownership settled this pass, a loss-limit pause that must hold even if sending fails, and the lease to check
    first (``fence``: nothing is written, ``LeaseLost`` is raised, when it is no longer current)."""

    job: str
    mode: Mode
    started_at: datetime
    placements: tuple[Placement, ...] = ()
    ownership: OwnershipChange = OwnershipChange()
    pause: tuple[PausedBy, str] | None = None
    origin: Origin = Origin()
    fence: LeaseCheck | None = None


@dataclass(frozen=True, slots=True)
class BatchWrite:
    """One batch as sent: its index, request parameters (credentials are dropped when stored), answer, error."""

    index: int
    request: Mapping[str, str]
    answer: object | None
    error: str | None
    recorded_at: datetime


@dataclass(frozen=True, slots=True)
class PassOutcome:
    """Everything a finished pass records, written in one transaction by ``record_outcome``.

    ``pass_id`` is None when no ``PreSend`` opened the pass row (it is inserted then); a pass's results are all
    stored here (the write-ahead stores none), numbered from 0 in the order given. ``close`` names the
    in-flight record to close, tracking ``placed``; ``late`` marks one whose write may still land. ``fills``,
    ``watch`` and ``forget`` are the fills ledger's changes; ``rejected`` (level, code, message) and ``cleared``
    the per-level rejection backoff's; ``origin`` why the pass ran and where its prices came from.
    """

    job: str
    mode: Mode
    started_at: datetime
    pass_id: int | None
    result: PassResult
    summary: Mapping[str, int]
    warnings: tuple[str, ...] = ()
    error: str | None = None
    duration_ms: int | None = None
    reference_price: str | None = None
    fingerprint: str | None = None
    batches: tuple[BatchWrite, ...] = ()
    results: tuple[OrderResult, ...] = ()
    ownership: OwnershipChange = OwnershipChange()
    close: int | None = None
    placed: tuple[str, ...] = ()
    late: tuple[int, datetime] | None = None
    fills: tuple[Fill, ...] = ()
    watch: tuple[Seen, ...] = ()
    forget: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str | None, str | None], ...] = ()
    cleared: tuple[str, ...] = ()
    recorded_at: datetime | None = None  # when the watch list was seen; None: now
    origin: Origin = Origin()
