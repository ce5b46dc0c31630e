"""Shared pieces of the reliability suites: profiles, job files, a fast client, and the invariant checks.

The checks read the sandbox engine directly (no HTTP, no faults), so an observation is always the truth. They
return problems as text rather than asserting, so a soak can report every broken invariant of a pass at once.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rebalancer.core.plan import Plan, compute_plan
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.job import Job
from rebalancer.jobfile.load import load_job
from rebalancer.models import Balances, Order, Side
from rebalancer.sandbox.engine import Engine
from rebalancer.state.store import StateStore
from tests.jobtext import ladder_job

LONG = os.environ.get("REBALANCER_LONG", "") not in ("", "0")
"""The long profile (``REBALANCER_LONG=1``): more passes and kills, for a run by hand."""


BAND = Decimal("0.02")


def job_text(
    name: str,
    url: str,
    *,
    symbol: str = "btcusdt",
    ownership: str = "symbol",
    levels: int = 4,
    size: str = "0.01",
    every: str = "200ms",
) -> str:
    """A two-sided ladder job aimed at ``url`` (band 2 %, flat sizes, so two orders at one price are a duplicate)."""
    limits = "{max_orders: 40, band: 2%, post_only: true}"
    return ladder_job(
        name, url, symbol=symbol, every=every, levels=levels, size=size, ownership=ownership, limits=limits
    )


def write_job(folder: Path, name: str, url: str, **kw: object) -> Path:
    """Write ``job_text`` to ``folder/name.yaml`` and return the path."""
    path = folder / f"{name}.yaml"
    path.write_text(job_text(name, url, **kw))  # type: ignore[arg-type]
    return path


def load(folder: Path, name: str, url: str, **kw: object) -> Job:
    """Write a job file and load it the way the commands do."""
    return load_job(write_job(folder, name, url, **kw))


def fast_client(url: str, api_key: str, secret_key: str) -> OpenApiClient:
    """A client with short backoffs and a private, generous rate limiter, so a soak is bounded by work, not waits."""
    profile = ExchangeProfile(backoff_base=0.005, backoff_max=0.05, read_timeout=10.0, connect_timeout=2.0)
    limiter = KeyLimiter(RateLimit(100_000, 1.0), RateLimit(100_000, 1.0))
    return OpenApiClient(url, api_key, secret_key, profile, limiter=limiter)


def drain_requests(sandbox: object) -> list[dict[str, object]]:
    """The sandbox's request log since the last drain (oldest first), emptied so the next drain starts afresh."""
    app = sandbox.server.app  # type: ignore[attr-defined]
    with app._log_lock:
        entries = list(app.requests)
        app.requests.clear()
    return entries


def held(order: Order, base: str, quote: str) -> tuple[str, Decimal]:
    """The coin and amount an open order locks: the quote for a buy (price × remaining), the base for a sell."""
    if order.side is Side.BUY:
        return quote, order.price * order.remaining
    return base, order.remaining


@dataclass
class Ledger:
    """Tracks one account's balances against the fills, to check that locks and totals always add up."""

    engine: Engine
    api_key: str
    totals: dict[str, Decimal] = field(default_factory=dict)
    last_trade_id: int = 0
    fills: int = 0

    @classmethod
    def start(cls, engine: Engine, api_key: str) -> Ledger:
        """Remember the account's totals now (call it before anything trades)."""
        balances = engine.balances(api_key)
        totals = {c: b.available + b.locked for c, b in balances.coins.items()}
        return cls(engine, api_key, totals, engine.next_trade_id - 1)

    def check(self) -> list[str]:
        """Fold in the fills since the last check, then compare: locked == what the open orders hold, and each
        coin's total == its start plus the fills' flows."""
        problems: list[str] = []
        with self.engine.lock:
            specs = {s.symbol: s for s in self.engine.specs()}
            for fill in self.engine.recent_fills():
                if fill.trade_id <= self.last_trade_id:
                    continue
                if fill.trade_id != self.last_trade_id + 1:
                    problems.append(f"fills {self.last_trade_id + 1}..{fill.trade_id - 1} were not seen")
                self.last_trade_id = fill.trade_id
                order = self.engine.orders.get(fill.order_id)
                if order is None or order.api_key != self.api_key:
                    continue
                spec = specs[fill.symbol]
                sign = 1 if fill.side is Side.BUY else -1
                self.totals[spec.base] = self.totals.get(spec.base, Decimal(0)) + sign * fill.volume
                self.totals[spec.quote] = self.totals.get(spec.quote, Decimal(0)) - sign * fill.price * fill.volume
                self.fills += 1
            balances: Balances = self.engine.balances(self.api_key)
            locked: Counter[str] = Counter()
            for symbol, spec in specs.items():
                for order in self.engine.open_orders(self.api_key, symbol):
                    coin, amount = held(order, spec.base, spec.quote)
                    locked[coin] += amount  # type: ignore[assignment]
        for coin, balance in balances.coins.items():
            if balance.locked != locked.get(coin, Decimal(0)):
                problems.append(f"{coin}: locked {balance.locked} but open orders hold {locked.get(coin, 0)}")
            if balance.available < 0:
                problems.append(f"{coin}: available {balance.available} is negative")
            total = balance.available + balance.locked
            if total != self.totals.get(coin, Decimal(0)):
                problems.append(f"{coin}: total {total} != start plus fills {self.totals.get(coin)}")
        return problems


def truth_plan(job: Job, engine: Engine, api_key: str, store: StateStore | None = None) -> Plan:
    """The plan the job would make now from the true book, counting every order on the symbol as the job's.

    With ``store``, the levels the job holds back after repeated rejections are held here too (a held level keeps
    the order standing in for it, which a plan without the hold would call a ``duplicate_level``).
    """
    from rebalancer.models import MarketSnapshot

    snapshot = MarketSnapshot(
        rules=engine.rules(job.symbol),
        ticker=engine.ticker(job.symbol),
        balances=engine.balances(api_key),
        open_orders=engine.open_orders(api_key, job.symbol),
    )
    if store is None:
        return compute_plan(job, snapshot, None)
    held = store.held_levels(job.name, datetime.now(UTC))
    return compute_plan(job, snapshot, None, previous_reference=store.last_reference(job.name), held_levels=held)


def same_price_duplicates(orders: Iterable[Order]) -> list[str]:
    """Pairs of open orders on one side at one price: with flat, distinct levels they stand for one level."""
    seen: Counter[tuple[Side, Decimal]] = Counter(o for o in ((x.side, x.price) for x in orders))
    return [f"{n} orders {side.value} @ {price}" for (side, price), n in seen.items() if n > 1]


def max_targets(job: Job) -> int:
    """The most orders the job can ever want to stand: every ladder level plus every fixed order."""
    return sum(side.levels for side in (job.buy, job.sell) if side is not None) + len(job.orders)


def outside_band(orders: Sequence[Order], reference: Decimal, band: Decimal = BAND) -> list[Order]:
    """The orders farther than ``band`` (a fraction) from ``reference``."""
    return [o for o in orders if abs(o.price - reference) > reference * band]
