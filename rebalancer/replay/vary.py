"""``--vary KEY.PATH=V1,V2,…``: one replay per value of any job key, spread over the machine's cores.

Each value is set in the job file's document before its checks (``rebalancer.jobfile.load.load_job(changes=…)``),
so a value the job file could not hold is refused as the file would be. Every value is checked before any replay
starts. The market is then read once (``rebalancer.replay.compact``: once per symbol and exchange the values name,
usually one), and the replays run in a process pool over that compact copy, each paying only for its own passes;
their results come back in the order the values were given.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebalancer.errors import ConfigError, JobFileError
from rebalancer.job import Job
from rebalancer.jobfile.load import load_job
from rebalancer.jobfile.yamlpos import read_yaml
from rebalancer.models import SymbolRules
from rebalancer.replay.compact import read_compact, write_compact
from rebalancer.replay.driver import Options, events_read, replay
from rebalancer.replay.market import Market
from rebalancer.replay.result import ReplayResult
from rebalancer.replay.source import open_market

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Vary:
    """The key to vary (as given and as a path) and its values (as given)."""

    key: str
    path: KeyPath
    values: tuple[str, ...]


def parse_vary(text: str) -> Vary:
    """``KEY.PATH=V1,V2,…``; ``ConfigError`` saying what is wrong. A path part of digits is a list index."""
    key, sep, listed = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not sep or not key or any(not part for part in parts):
        raise ConfigError(f"--vary {text!r}: expected KEY.PATH=V1,V2,… such as ladder.buy.first=0.2%,0.5%")
    values = tuple(v.strip() for v in listed.split(","))
    if not listed.strip() or any(not v for v in values):
        raise ConfigError(f"--vary {text!r}: give one or more values, separated by commas")
    if len(set(values)) != len(values):
        raise ConfigError(f"--vary {text!r}: a value is given twice")
    path: KeyPath = tuple(int(p) if p.isdigit() else p for p in parts)
    return Vary(key, path, values)


def yaml_value(text: str) -> Any:
    """A value as the job file would read it after ``key: `` (exact decimals, percent strings, flow mappings)."""
    document = read_yaml(f"value: {text}\n")
    if document.problems or not isinstance(document.data, dict):
        raise ConfigError(f"--vary value {text!r} is not a YAML value")
    return document.data["value"]


def varied_job(job_path: str, vary: Vary, value: str) -> Job:
    """The job of ``job_path`` with ``vary``'s key set to ``value``; ``ConfigError`` in one line if it is refused."""
    try:
        return load_job(job_path, changes={vary.path: yaml_value(value)})
    except JobFileError as exc:
        first = exc.problems[0]
        where = f"{first.path}: " if first.path else ""
        raise ConfigError(f"--vary {vary.key}={value}: {where}{first.message}") from None


@dataclass(frozen=True, slots=True)
class _Compact:
    """The market read once for the jobs of one symbol and exchange: its file, name and rules."""

    path: Path
    name: str
    rules: SymbolRules


def _compact(market: str, job: Job, options: Options, path: Path) -> _Compact:
    """Read ``market`` for ``job`` once, as far as a replay under ``options`` reads it, into ``path``."""
    with open_market(market, job) as (source, rules):
        write_compact(events_read(source.events, options), path)
    return _Compact(path, source.name, rules)


def _one(job_path: str, vary: Vary, value: str, market: _Compact, options: Options) -> ReplayResult:
    job = varied_job(job_path, vary, value)
    return replay(job, Market(market.name, market.rules, read_compact(market.path)), market.rules, options).result


def replay_each(
    job_path: str, vary: Vary, market: str, options: Options, workers: int | None = None
) -> list[tuple[str, ReplayResult]]:
    """One replay per value of ``vary`` (checked first, all of them), in a pool of ``workers`` processes (default:
    one per core, at most one per value), over the market read once; results in the order of the values."""
    jobs = [varied_job(job_path, vary, value) for value in vary.values]
    count = workers or min(len(vary.values), os.cpu_count() or 1)
    with tempfile.TemporaryDirectory(prefix="rebalancer-replay-") as tmp:
        read: dict[tuple[object, ...], _Compact] = {}
        markets = []
        for job in jobs:
            key = (job.symbol, job.exchange)
            if key not in read:
                read[key] = _compact(market, job, options, Path(tmp) / f"market-{len(read)}.bin")
            markets.append(read[key])
        if count <= 1:
            return [(v, _one(job_path, vary, v, m, options)) for v, m in zip(vary.values, markets, strict=True)]
        with ProcessPoolExecutor(max_workers=count) as pool:
            futures = [
                pool.submit(_one, job_path, vary, v, m, options) for v, m in zip(vary.values, markets, strict=True)
            ]
            return [(v, f.result()) for v, f in zip(vary.values, futures, strict=True)]


def vary_json(vary: Vary, rows: Sequence[tuple[str, ReplayResult]]) -> list[dict[str, Any]]:
    """The ``--json`` array: each result's object with ``"vary": {KEY.PATH: value}`` first."""
    return [{"vary": {vary.key: value}, **result.to_json()} for value, result in rows]
