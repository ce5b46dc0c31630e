"""Shared fixtures: one sandbox exchange served over real HTTP for the whole session, reset before each test.

``sandbox`` yields a handle with ``url``, ``api_key``, ``secret_key`` (the demo account's), ``engine``
(a fresh ``Engine.create(seed=7, clock="manual")``: the market only moves when the test calls
``engine.advance`` or ``engine.set_price``) and ``faults`` (all off, rate limits off; switch on per test).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

import tests.depth  # noqa: F401  (registers and loads the Hypothesis profile)
from rebalancer.exchange.funds import forget_ledgers
from rebalancer.exchange.marketdata import forget as forget_market_data
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer


@dataclass(frozen=True)
class Sandbox:
    """What a test needs to talk to the sandbox and to steer it."""

    url: str
    api_key: str
    secret_key: str = field(repr=False)
    engine: Engine
    faults: Faults
    server: SandboxServer


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    """The session's sandbox server on a free loopback port (its world is replaced by ``sandbox``)."""
    server = SandboxServer(Engine.create(seed=7, clock="manual"), Faults(rate_limits=False))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> Sandbox:
    """A fresh world (seed 7, manual clock, demo account funded), faults and rate limits off."""
    engine = Engine.create(seed=7, clock="manual")
    faults = Faults(rate_limits=False)
    sandbox_server.reset(engine, faults)
    forget_market_data()  # clients made by rebalancer.engine.connect share it per URL, and the URL outlives the world
    forget_ledgers()  # the demo key's carried balances belong to the world just replaced
    return Sandbox(sandbox_server.url, DEMO_API_KEY, DEMO_SECRET_KEY, engine, faults, sandbox_server)
