"""``--market FILE|walk[:…]`` → the market to replay and the symbol's rules.

A recording's rules line gives the tick and lot; without one (or without the job's symbol in it) the rules come from
the job's exchange: the sandbox's own symbols need no network, any other exchange is asked once (its public symbol
list, no keys).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from rebalancer.engine.connect import make_client
from rebalancer.errors import ConfigError
from rebalancer.job import Job
from rebalancer.models import SymbolRules
from rebalancer.replay.market import Market
from rebalancer.replay.recording import open_recording
from rebalancer.replay.walk import parse_walk, walk_market
from rebalancer.sandbox.market import DEFAULT_SYMBOLS


@contextlib.contextmanager
def open_market(given: str, job: Job) -> Iterator[tuple[Market, SymbolRules]]:
    """The market ``given`` names for ``job``'s symbol, and the symbol's rules, for the ``with`` block."""
    if given == "walk" or given.startswith("walk:"):
        market = walk_market(parse_walk(given), job.symbol)
        assert market.rules is not None
        yield market, market.rules
        return
    if not Path(given).is_file():
        raise ConfigError(f"--market {given!r}: no such recording (or give walk[:seed=N,hours=H,vol=X])")
    sandbox = {s.symbol: s.rules for s in DEFAULT_SYMBOLS}
    coins = None
    if job.exchange.is_sandbox and job.symbol in sandbox:
        known = sandbox[job.symbol]
        coins = (known.base.lower(), known.quote.lower())
    recording = open_recording(given, job.symbol, coins)
    try:
        rules = recording.rules or exchange_rules(job)
        yield Market(str(given), rules, recording.events()), rules
    finally:
        recording.close()


def exchange_rules(job: Job) -> SymbolRules:
    """The symbol's rules from the job's exchange: the sandbox's own, or the exchange's public symbol list."""
    if job.exchange.is_sandbox:
        for spec in DEFAULT_SYMBOLS:
            if spec.symbol == job.symbol:
                return spec.rules
        raise ConfigError(f"the sandbox has no symbol {job.symbol!r}; give the recording a rules line")
    with make_client(job.exchange, job.exchange.url, "", "") as client:
        return client.rules(job.symbol)
