"""Saving and loading the sandbox's whole world, so it persists between commands (docs/architecture.md, "Where
state lives").

The world is one JSON document: format version, seed, clock, both random states, symbols with their markets,
accounts, the retained orders with their fills, and the id counters. Decimals are strings, so nothing is lost.
Files are written atomically (a temporary file in the same directory, then ``os.replace``) so a reader never
sees half a world.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rebalancer.errors import StateError
from rebalancer.sandbox.book import Account, Fill, SimOrder
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.market import MarketState, SymbolSpec

FORMAT_VERSION = 1
WORLD_FILE = "sandbox-world.json"
_LAST_CLOCK_MS = 10**13  # the year 2286: a clock past it is a damaged or hand-edited world
"""The world's file name inside the state directory."""


def _rng_state(state: Any) -> list[Any]:
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def _rng_restore(data: list[Any]) -> tuple[Any, ...]:
    version, internal, gauss_next = data
    return (version, tuple(internal), gauss_next)


def dump(engine: Engine) -> dict[str, Any]:
    """The engine's world as JSON-safe data (Decimals as strings, random states as lists)."""
    with engine.lock:
        return _dump(engine)


def _dump(engine: Engine) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "seed": engine.seed,
        "clock": engine.clock,
        "clock_ms": engine.clock_ms,
        "walk_rng": _rng_state(engine.walk_rng.getstate()),
        "fill_rng": _rng_state(engine.fill_rng.getstate()),
        "symbols": [{"spec": m.spec.to_dict(), "market": m.to_dict()} for _, m in sorted(engine.markets.items())],
        "accounts": [a.to_dict() for _, a in sorted(engine.accounts.items())],
        "orders": [o.to_dict() for _, o in sorted(engine.orders.items())],
        "fills": [f.to_dict() for f in engine.fills],
        "next_order_id": engine.next_order_id,
        "next_trade_id": engine.next_trade_id,
    }


def build(d: Mapping[str, Any]) -> Engine:
    """An engine rebuilt from ``dump``'s data; ``StateError`` if this version cannot read it."""
    if d.get("format_version") != FORMAT_VERSION:
        raise StateError(f"sandbox world has format {d.get('format_version')!r}, expected {FORMAT_VERSION}")
    try:
        specs = [SymbolSpec.from_dict(s["spec"]) for s in d["symbols"]]
        clock_ms = int(d["clock_ms"])
        if not 0 <= clock_ms < _LAST_CLOCK_MS:
            raise ValueError(f"clock_ms {clock_ms} is not a time between 1970 and 2286")
        engine = Engine(int(d["seed"]), str(d["clock"]), specs, clock_ms=clock_ms)
        engine.walk_rng.setstate(_rng_restore(d["walk_rng"]))
        engine.fill_rng.setstate(_rng_restore(d["fill_rng"]))
        for spec, s in zip(specs, d["symbols"], strict=True):
            engine.markets[spec.symbol] = MarketState.from_dict(spec, s["market"])
        for a in d["accounts"]:
            account = Account.from_dict(a)
            engine.accounts[account.api_key] = account
        for o in d["orders"]:
            order = SimOrder.from_dict(o)
            engine.orders[order.id] = order
            if order.is_open:
                engine.open_by_symbol[order.symbol][order.id] = order
            else:
                engine.closed_ids.append(order.id)
        engine.fills.extend(Fill.from_dict(f) for f in d["fills"])
        engine.next_order_id = int(d["next_order_id"])
        engine.next_trade_id = int(d["next_trade_id"])
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError, RecursionError) as exc:
        raise StateError(f"sandbox world is corrupt: {_one_line(exc)}") from None
    return engine


def _one_line(exc: BaseException) -> str:
    """An exception as one short line: a hand-edited world can hold anything, messages must stay readable."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def save(engine: Engine, path: str | Path) -> None:
    """Write the world to ``path`` atomically; the directory is created if needed."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(dump(engine), separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path) -> Engine:
    """Read a world written by ``save``; ``StateError`` if it is missing or unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise StateError(f"cannot read the sandbox world {path}: {_one_line(exc)}") from None
    except RecursionError:
        raise StateError(f"cannot read the sandbox world {path}: JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise StateError(f"sandbox world {path} is not a JSON object")
    return build(data)


def open_world(path: str | Path, *, seed: int = 7, reset: bool = False, clock: str = "real") -> Engine:
    """The world saved at ``path`` caught up to now, or a fresh one (``Engine.create``) if none is saved or
    ``reset``.

    This is what a command does when it opens the embedded sandbox: it does not save; the caller saves when
    done.
    """
    if reset or not Path(path).exists():
        return Engine.create(seed, clock=clock)
    engine = load(path)
    try:
        engine.catch_up()
    except (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError) as exc:
        raise StateError(f"sandbox world {path} cannot be run: {_one_line(exc)}; start afresh with --reset") from None
    return engine
