"""The churn benchmark's simulated market: the regimes, the ladder job, and a sandbox served per run.

Every run gets a fresh ``Engine`` built from the same seed, so the four policies see exactly the same price path
(the walk draws only from the engine's walk generator, whatever orders rest); fills depend on the orders each
policy leaves standing, drawn from the engine's seeded fill generator. A regime is the symbol's per-second
``volatility`` (the largest one-second move, uniform in whole ticks) and ``drift`` (added to every second's move),
both fractions of the mid. The client counts its HTTP requests with a ``requests`` response hook (the session's
documented extension point: nothing is patched).
"""

from __future__ import annotations

import atexit
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a plain script: run from anywhere

from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.job import Amount, Job, Limits, SideLadder, Tolerance
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.market import SymbolSpec
from rebalancer.sandbox.server import SandboxServer

SYMBOL = "btcusdt"
LEVELS = 20
"""Levels per side of the benchmark ladder."""
STEP_SECONDS = 5
"""Simulated seconds between two passes."""


@dataclass(frozen=True, slots=True)
class Regime:
    """A market regime: per-second volatility and drift of the mid, as fractions of it."""

    name: str
    volatility: Decimal
    drift: Decimal = Decimal(0)

    def spec(self) -> SymbolSpec:
        """The benchmark symbol (btcusdt's rules and start price) moving in this regime."""
        return SymbolSpec(
            SYMBOL,
            "btc",
            "usdt",
            2,
            4,
            Decimal("0.0001"),
            Decimal("30000"),
            volatility=self.volatility,
            drift=self.drift,
        )


REGIMES: dict[str, Regime] = {
    "calm": Regime("calm", Decimal("0.0001")),
    "trending": Regime("trending", Decimal("0.0001"), Decimal("0.00004")),
    "volatile": Regime("volatile", Decimal("0.001")),
}
"""calm: ±1 bp a second at most; trending: the same plus 0.4 bp a second upward (2 bp a pass); volatile: ±10 bp."""


def ladder_job() -> Job:
    """The benchmark's job: 20 levels a side from 0.1 % of the mid, 0.1 % apart, 0.01 BTC each.

    Tolerance 0.05 % in price (half a step) and 10 % in size; the jump guard is off, so no pass is paused and
    every policy acts on every pass.
    """
    side = SideLadder(
        levels=LEVELS,
        first=Amount(Decimal("0.1"), percent=True),
        step=Amount(Decimal("0.1"), percent=True),
        size=Decimal("0.01"),
    )
    return Job(
        name="churn",
        symbol=SYMBOL,
        buy=side,
        sell=side,
        tolerance=Tolerance(price=Amount(Decimal("0.05"), percent=True), size=Amount(Decimal(10), percent=True)),
        limits=Limits(max_jump=None),
    )


class CountingClient(OpenApiClient):
    """The real HTTP client of the demo account, counting every HTTP response it receives (and the POSTs among them)."""

    def __init__(self, base_url: str, *, dedicated: bool = False) -> None:
        unlimited = RateLimit(1_000_000, 1.0)
        super().__init__(
            base_url,
            DEMO_API_KEY,
            DEMO_SECRET_KEY,
            ExchangeProfile(read_limit=unlimited, write_limit=unlimited),
            limiter=KeyLimiter(unlimited, unlimited),
            dedicated=dedicated,
        )
        self.requests = 0
        self.writes = 0
        self.transport.session.hooks["response"].append(self._count)

    def _count(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.requests += 1
        if response.request.method == "POST":
            self.writes += 1


@dataclass(frozen=True, slots=True)
class World:
    """One run's sandbox: the engine (steered directly, never through HTTP) and a counting client."""

    engine: Engine
    client: CountingClient


_servers: list[SandboxServer] = []
"""This process's one sandbox server (stopping a server waits out its poll interval, so runs share it)."""


def _server(engine: Engine) -> SandboxServer:
    if not _servers:
        _servers.append(SandboxServer(engine, Faults(rate_limits=False)).start())
        atexit.register(_servers[0].stop)
    else:
        _servers[0].reset(engine, Faults(rate_limits=False))
    return _servers[0]


ACCOUNT = {"usdt": Decimal(100_000), "btc": Decimal(20)}
"""The trading account: about 16 times the buy ladder's 6 000 USDT, and 100 times the sell ladder's 0.2 BTC."""


@contextmanager
def serve(regime: Regime, seed: int, *, dedicated: bool = False) -> Iterator[World]:
    """A fresh seeded world in ``regime`` served on a loopback port (manual clock, rate limits off).

    The process's sandbox server is started on first use and given the new world on every later one; the
    client is new each time, so no connection, cache or counter carries over between runs. ``dedicated``: the
    client treats the account as the job's alone (``exchange.account: dedicated``).
    """
    engine = Engine.create(seed=seed, clock="manual", symbols=(regime.spec(),))
    engine.add_account(DEMO_API_KEY, DEMO_SECRET_KEY, ACCOUNT)
    with CountingClient(_server(engine).url, dedicated=dedicated) as client:
        yield World(engine, client)
