"""Reacting to the market: jobs woken by the market stream against polling jobs, side by side in one run; then
many stream jobs on one process.

The sandbox is served in this process (a real-clock ``Engine``, its REST servers and its market stream), so the
harness moves prices through its control endpoint (``POST /sandbox/price``) and counts every REST request where the
exchange receives it. The daemon is a child process, as in production (``python -m rebalancer run DIR --log-format
json``); every job has a symbol and an account of its own.

Side by side: one daemon, three modes × three markets, ``--jobs`` jobs in each group:

- modes: ``stream`` (``exchange.stream`` set, reconciled every ``--period``), ``poll`` (no stream, every
  ``--period``: the same reconcile period), ``fastpoll`` (no stream, every ``--fast-period``: polling about as fast
  as the daemon's market data goes, one shared ticker read a second per deployment);
- markets: ``still`` (the mid does not walk; ``--moves`` moves of ±0.3 % through the control endpoint, on every
  still symbol at once, spaced so that they land at every phase of the polling period), ``calm`` and ``trending``
  (the churn benchmark's regimes, ``bench/market_sim.py``; no moves).

Each group talks to a REST server of its own over the one engine, so a deployment's shared market-data reads are
counted for the group that made them. Figures: latency from a move to the first ``mass_replaceV2`` of the moved
symbol arriving at the sandbox (p50 / p99 / max per mode, in the still market); REST requests per job per minute in
the calm and the trending market (own requests: open orders, balances, batches; shared: the deployment's ticker
and symbol reads); passes per job and minute (the state store) and wake-ups by reason (the daemon's
``rebalancer_stream_wakes_total``); how many jobs one API key's budget of 6 requests / 2 s carries in each mode
(``jobs_per_key``: the arithmetic is in its docstring).

Scale: a second daemon with ``--scale-jobs`` stream jobs over ``--scale-symbols`` still symbols, reconciled every
60 s. Once its queue is empty (every first pass done), ``--scale-moves`` moves, one symbol every ``--scale-gap``
seconds (by default 120 every 0.5 s: the window spans a whole reconcile period, every job's timer pass inside it).
Figures: the reaction of every job of the moved symbol (p50 / p99 / max; missed: no batch within 10 s), how long
woken passes waited in the daemon's queue, the daemon's CPU and memory, the sandbox's CPU, and the stream's health
as the daemon's metrics tell it.

    python bench/stream_bench.py [--jobs 4] [--period 10] [--fast-period 1] [--moves 20] [--scale-jobs 1000]
                                 [--scale-symbols 100] [--scale-moves 120] [--scale-gap 0.5] [--quick] [--out FILE]
                                 [--keep DIR]

``--quick`` (one job per group, a 2 s period, 3 moves, 20 scale jobs) is the CI smoke; it runs in well under a
minute.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import requests
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from daemon_bench import cpu_seconds, credentials, free_port, percentile, rss_mib, stop, wait_ready  # noqa: E402
from market_sim import REGIMES  # noqa: E402

from rebalancer.sandbox.app import SandboxApp  # noqa: E402
from rebalancer.sandbox.engine import Engine  # noqa: E402
from rebalancer.sandbox.faults import Faults  # noqa: E402
from rebalancer.sandbox.market import SymbolSpec  # noqa: E402
from rebalancer.sandbox.server import SandboxServer  # noqa: E402

RESULTS_DIR = ROOT / "bench" / "results"
MODES = ("stream", "poll", "fastpoll")
MARKETS = ("still", "calm", "trending")
START_PRICE = Decimal(100)
MOVE = Decimal("0.003")
"""Each move puts the mid 0.3 % up or down: past the 0.1 % tolerance, short of the 0.5 % to the first level."""
BUDGET_REQUESTS, BUDGET_SECONDS = 6, 2
BUDGET_PER_MINUTE = BUDGET_REQUESTS * 60 / BUDGET_SECONDS
SHARED_TICKER_PER_MINUTE = 60.0
"""The daemon's jobs of one deployment share one ticker read a second (``MARKET_TICK_SECONDS``)."""
GOAL_P50_MS, GOAL_P99_MS = 300.0, 1000.0
SCALE_GOAL_P99_MS = 2000.0
SCALE_PERIOD_S = 60
SCALE: dict[str, int | float] = {
    "scale_jobs": 1000,
    "scale_symbols": 100,
    "scale_moves": 120,
    "scale_gap": 0.5,
}
QUICK_SCALE: dict[str, int | float] = {
    "scale_jobs": 20,
    "scale_symbols": 10,
    "scale_moves": 10,
    "scale_gap": 0.2,
}
SCALE_TIMEOUT_S = 10.0
SCALE_SETTLE_S = 300.0
HEALTH_SAMPLES = frozenset(
    {
        "rebalancer_stream_polling",
        "rebalancer_stream_fallbacks_total",
        "rebalancer_stream_reconnects_total",
        "rebalancer_stream_frames_total",
        "rebalancer_stream_frame_lag_seconds_sum",
        "rebalancer_stream_frame_lag_seconds_count",
    }
)
SIGNED_PATHS = ("user/account", "new_order", "order_info", "mass_replaceV2", "all_order", "all_trade")
"""Paths of a job's own requests (signed with its key); everything else is a deployment's shared read."""
JOB = """\
version: 1
name: {name}
symbol: {symbol}
exchange: {{url: "{url}", api_key_env: {key_env}, secret_key_env: {secret_env}{stream}}}
schedule: {{every: {every}}}
reference: mid
ladder:
  buy: {{levels: {levels}, first: 0.5%, step: 0.25%, size: "1"}}
  sell: {{levels: {levels}, first: 0.5%, step: 0.25%, size: "1"}}
tolerance: {{price: 0.1%, size: 10%}}
limits: {{post_only: true}}
ownership: symbol
on_stop: keep
"""


@dataclass(frozen=True, slots=True)
class Group:
    """Jobs of one mode in one market, on a REST server of their own."""

    mode: str
    market: str
    every: float

    @property
    def name(self) -> str:
        """``market-mode``, the prefix of its jobs' names."""
        return f"{self.market}-{self.mode}"


@dataclass(frozen=True, slots=True)
class Seat:
    """One job: its name, group, symbol and account (index into ``credentials``)."""

    job: str
    group: Group
    symbol: str
    account: int


class Recorder:
    """What the sandbox saw, shared by its apps: when each ``mass_replaceV2`` of a symbol and API key arrived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._batches: dict[tuple[str, str], list[float]] = defaultdict(list)

    def batch(self, symbol: str, api_key: str, at: float) -> None:
        """A batch of ``symbol`` signed with ``api_key`` arrived at ``at`` (wall time)."""
        with self._lock:
            self._batches[symbol, api_key].append(at)

    def first_batch_after(self, symbol: str, api_key: str, since: float) -> float | None:
        """When the first batch of ``symbol`` and ``api_key`` at or after ``since`` arrived, or None."""
        with self._lock:
            return next((t for t in self._batches.get((symbol, api_key), ()) if t >= since), None)


class RecordingApp(SandboxApp):
    """The sandbox's app, noting each request's arrival: per path (this app's deployment) and, for batches, per
    symbol in the shared ``Recorder``. Everything else is the sandbox's own behaviour."""

    def __init__(self, engine: Engine, recorder: Recorder) -> None:
        super().__init__(engine, Faults(rate_limits=False))
        self.recorder = recorder
        self.arrivals: Counter[str] = Counter()
        self._arrivals_lock = threading.Lock()

    def _serve(self, request: Any, route: Any, params: dict[str, str]) -> Any:
        """Note the request as it arrives, before the sandbox handles it (a batch counts from reaching the exchange),
        then serve it as the sandbox does."""
        arrived = time.time()
        path = request.path.removeprefix("/open/api/")
        with self._arrivals_lock:
            self.arrivals[path] += 1
        if path == "mass_replaceV2":
            self.recorder.batch(params.get("symbol", ""), params.get("api_key", ""), arrived)
        return super()._serve(request, route, params)

    def counted(self) -> Counter[str]:
        """A copy of the requests received so far, per path."""
        with self._arrivals_lock:
            return Counter(self.arrivals)


@dataclass
class Sandbox:
    """The served world: its engine, the control server (with the stream) and one REST app per group."""

    engine: Engine
    control_url: str
    stream_url: str
    recorder: Recorder
    apps: dict[str, tuple[str, RecordingApp]] = field(default_factory=dict)  # group name → (url, app)


def _serve(stack: ExitStack, engine: Engine, recorder: Recorder, *, stream: bool) -> tuple[SandboxServer, RecordingApp]:
    """A sandbox server over ``engine`` whose app records arrivals; stopped when ``stack`` closes."""
    server = SandboxServer(engine, stream=stream)
    app = RecordingApp(engine, recorder)
    app.stream = server.stream
    server.app = app
    stack.enter_context(server)
    return server, app


@contextmanager
def served(
    specs: Sequence[SymbolSpec], accounts: Sequence[tuple[int, str]], groups: Sequence[str], seed: int
) -> Iterator[Sandbox]:
    """A real-clock world with ``specs`` and an account per ``(index, base coin)``, served with its stream and a
    REST server per group, for the block."""
    engine = Engine.create(seed=seed, clock="real", symbols=specs)
    for index, base in accounts:
        key, secret = credentials(index)
        engine.add_account(key, secret, {"usdt": 10**7, base: 10**5})
    recorder = Recorder()
    with ExitStack() as stack:
        control, _ = _serve(stack, engine, recorder, stream=True)
        assert control.stream_url is not None
        sandbox = Sandbox(engine, control.url, control.stream_url, recorder)
        for name in groups:
            server, app = _serve(stack, engine, recorder, stream=False)
            sandbox.apps[name] = (server.url, app)
        yield sandbox


def still_spec(symbol: str, base: str) -> SymbolSpec:
    """A symbol whose mid stays put (it walks one tick of 0.0001 at most, a millionth of the price, a second)."""
    return SymbolSpec(symbol, base, "usdt", 4, 4, Decimal("0.0001"), START_PRICE, volatility=Decimal(0))


def regime_spec(symbol: str, base: str, market: str) -> SymbolSpec:
    """A symbol walking in ``market`` (``still``, or a regime of the churn benchmark)."""
    if market == "still":
        return still_spec(symbol, base)
    regime = REGIMES[market]
    return SymbolSpec(
        symbol, base, "usdt", 4, 4, Decimal("0.0001"), START_PRICE, volatility=regime.volatility, drift=regime.drift
    )


def write_jobs(
    directory: Path, seats: Sequence[Seat], urls: dict[str, str], stream_url: str, levels: int
) -> dict[str, str]:
    """One job file per seat; returns the environment holding their credentials."""
    directory.mkdir(parents=True, exist_ok=True)
    env: dict[str, str] = {}
    for seat in seats:
        key, secret = credentials(seat.account)
        key_env, secret_env = f"BENCH_KEY_{seat.account:04d}", f"BENCH_SECRET_{seat.account:04d}"
        env[key_env], env[secret_env] = key, secret
        stream = f', stream: "{stream_url}"' if seat.group.mode == "stream" else ""
        text = JOB.format(
            name=seat.job,
            symbol=seat.symbol,
            url=urls[seat.group.name],
            key_env=key_env,
            secret_env=secret_env,
            stream=stream,
            every=f"{seat.group.every:g}s",
            levels=levels,
        )
        (directory / f"{seat.job}.yaml").write_text(text)
    return env


@contextmanager
def daemon(
    jobs: Path, state: Path, env: dict[str, str], log: IO[bytes], ready_timeout: float
) -> Iterator[tuple[subprocess.Popen[bytes], float | None, str]]:
    """``rebalancer run`` on ``jobs`` (JSON log lines) until the block ends; yields the process, the seconds until
    every job had its first pass (None if not within ``ready_timeout``) and its HTTP address."""
    http = f"127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "rebalancer", "run", str(jobs), "--log-format", "json", "--http", http]
    process = subprocess.Popen(
        command,
        env={**os.environ, **env, "REBALANCER_STATE_DIR": str(state), "NO_COLOR": "1"},
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        yield process, wait_ready(f"http://{http}", process, ready_timeout), f"http://{http}"
    finally:
        stop(process)


def move(sandbox: Sandbox, symbol: str, up: bool) -> float:
    """Put ``symbol``'s mid 0.3 % up or down through the control endpoint; the wall time just before asking."""
    price = sandbox.engine.mid(symbol) * (1 + MOVE if up else 1 - MOVE)
    started = time.time()
    answer = requests.post(
        f"{sandbox.control_url}/sandbox/price", params={"symbol": symbol, "price": f"{price:.4f}"}, timeout=30
    )
    answer.raise_for_status()
    return started


def reactions(recorder: Recorder, moved: Sequence[tuple[Seat, float]], timeout: float) -> list[float | None]:
    """For each (job, time of its symbol's move), the milliseconds to the job's first batch after the move; None if
    none came within ``timeout`` seconds of the last move."""
    deadline = max(at for _, at in moved) + timeout
    keys = [(seat.symbol, credentials(seat.account)[0]) for seat, _ in moved]
    found: list[float | None] = [None] * len(moved)
    while True:
        for index, ((symbol, api_key), (_, at)) in enumerate(zip(keys, moved, strict=True)):
            if found[index] is None:
                batch = recorder.first_batch_after(symbol, api_key, at)
                found[index] = None if batch is None else round((batch - at) * 1000, 1)
        if all(v is not None for v in found) or time.time() > deadline:
            return found
        time.sleep(0.02)


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """p50, p99 and max of ``values`` (None when empty)."""
    return {
        "p50": percentile(list(values), 50),
        "p99": percentile(list(values), 99),
        "max": max(values) if values else None,
    }


def jobs_per_key(own: float, shared: float) -> int | None:
    """How many jobs of one deployment one API key carries at 6 requests / 2 s (180 a minute).

    ``own`` is a job's own requests per minute (open orders, ``order_info``, balances, batches: they grow with every
    job), ``shared`` its share of the deployment's ticker reads per minute as measured. N jobs in one daemon spend
    ``N × own + min(60, N × shared)``: the daemon reads the ticker at most once a second for all its jobs of a
    deployment, so that part stops growing at 60 a minute. That is at most 180 when ``N × (own + shared) ≤ 180`` or
    ``N × own + 60 ≤ 180``: the answer is the larger of the two bounds (None when a job's own requests are none:
    no bound).
    """
    if own <= 0:
        return None
    return max(
        math.floor(BUDGET_PER_MINUTE / (own + shared) + 1e-9),
        math.floor((BUDGET_PER_MINUTE - SHARED_TICKER_PER_MINUTE) / own + 1e-9),
    )


def request_rates(before: Counter[str], after: Counter[str], jobs: int, minutes: float) -> dict[str, Any]:
    """Requests per job per minute of a group between two counts: own (by path), shared, and the total."""
    delta = after - before
    own = {path: n for path, n in delta.items() if path.endswith(SIGNED_PATHS)}
    shared = {path: n for path, n in delta.items() if path not in own}
    per = jobs * minutes

    def rate(counts: dict[str, int]) -> float:
        return round(sum(counts.values()) / per, 2)

    writes = sum(n for path, n in own.items() if path == "mass_replaceV2")
    return {
        "total": round(rate(own) + rate(shared), 2),
        "own": rate(own),
        "shared": rate(shared),
        "reads": round((sum(delta.values()) - writes) / per, 2),
        "writes": round(writes / per, 2),
        "by_path": {path: round(n / per, 2) for path, n in sorted(delta.items())},
    }


def passes_per_group(state_db: Path, start: float, end: float) -> Counter[str]:
    """Passes per group that started inside [start, end) (wall time), from the state store, which records every
    pass, quiet ones included."""
    with contextlib.closing(sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT job FROM passes WHERE started_at_ms >= ? AND started_at_ms < ? AND mode = 'run'",
            (int(start * 1000), int(end * 1000)),
        ).fetchall()
    return Counter(group_of(str(job)) for (job,) in rows)


def scrape(http: str) -> list[Any]:
    """Every sample the daemon's ``/metrics`` shows now (``prometheus_client``'s parser)."""
    text = requests.get(f"{http}/metrics", timeout=60).text
    return [sample for family in text_string_to_metric_families(text) for sample in family.samples]


def wakes_per_group(samples: Sequence[Any]) -> Counter[tuple[str, str]]:
    """The daemon's wake-ups so far per group and reason (``rebalancer_stream_wakes_total{job,reason}``)."""
    counts: Counter[tuple[str, str]] = Counter()
    for sample in samples:
        if sample.name == "rebalancer_stream_wakes_total":
            counts[group_of(sample.labels["job"]), sample.labels["reason"]] += int(sample.value)
    return counts


def stream_health(samples: Sequence[Any]) -> dict[str, Any]:
    """What the daemon says of its stream: wake-ups by reason, jobs polling (their book stale or the connection
    down), fall-backs and reconnects so far, frames received and their mean lag (receive time − frame time)."""
    wakes: Counter[str] = Counter()
    for (_, reason), count in wakes_per_group(samples).items():
        wakes[reason] += count
    totals: dict[str, float] = dict.fromkeys(HEALTH_SAMPLES, 0.0)
    for sample in samples:
        if sample.name in HEALTH_SAMPLES:
            totals[sample.name] += sample.value
    lag_count = totals["rebalancer_stream_frame_lag_seconds_count"]
    return {
        "wakes": dict(sorted(wakes.items())),
        "jobs_polling_now": int(totals["rebalancer_stream_polling"]),
        "fallbacks": int(totals["rebalancer_stream_fallbacks_total"]),
        "reconnects": int(totals["rebalancer_stream_reconnects_total"]),
        "frames": int(totals["rebalancer_stream_frames_total"]),
        "frame_lag_mean_ms": round(1000 * totals["rebalancer_stream_frame_lag_seconds_sum"] / lag_count, 1)
        if lag_count
        else None,
    }


def group_of(job: str) -> str:
    """The group a job's name belongs to (its name less the trailing ``-NN``)."""
    return job.rsplit("-", 1)[0]


def failures(log_path: Path) -> int:
    """Passes the daemon logged as failed or crashed, whole run (a figure taken over failing passes means little)."""
    return sum(1 for record in log_records(log_path) if record.get("msg") in ("pass failed", "pass crashed"))


def side_by_side(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """The three modes in the three markets, one daemon: latency on the still market, requests on the others."""
    groups = [
        Group(mode, market, args.fast_period if mode == "fastpoll" else args.period)
        for market in MARKETS
        for mode in MODES
    ]
    seats = [
        Seat(f"{group.name}-{i:02d}", group, f"m{n:04d}usdt", n)
        for n, (group, i) in enumerate((g, i) for g in groups for i in range(args.jobs))
    ]
    specs = [regime_spec(s.symbol, s.symbol.removesuffix("usdt"), s.group.market) for s in seats]
    accounts = [(s.account, s.symbol.removesuffix("usdt")) for s in seats]
    with served(specs, accounts, [g.name for g in groups], args.seed) as sandbox:
        urls = {name: url for name, (url, _) in sandbox.apps.items()}
        env = write_jobs(workdir / "jobs", seats, urls, sandbox.stream_url, args.levels)
        log_path = workdir / "daemon.log"
        with (
            open(log_path, "wb") as log,
            daemon(workdir / "jobs", workdir / "state", env, log, 120.0) as (proc, ready, http),
        ):
            if ready is None:
                raise SystemExit(f"the daemon was not ready within 120 s (see {log_path})")
            time.sleep(max(args.period, args.fast_period))  # the first passes' batches settle out of the window
            before = {name: app.counted() for name, (_, app) in sandbox.apps.items()}
            wakes0, window_start, cpu0 = wakes_per_group(scrape(http)), time.time(), cpu_seconds(proc.pid)
            latencies = measure_moves(sandbox, [s for s in seats if s.group.market == "still"], args)
            window_end = time.time()
            cpu = cpu_seconds(proc.pid) - cpu0
            wakes = wakes_per_group(scrape(http)) - wakes0
            after = {name: app.counted() for name, (_, app) in sandbox.apps.items()}
            rss = rss_mib(proc.pid)
    minutes = (window_end - window_start) / 60
    rates = {g.name: request_rates(before[g.name], after[g.name], args.jobs, minutes) for g in groups}
    passes = passes_per_group(workdir / "state" / "state.db", window_start, window_end)
    return {
        "window_s": round(window_end - window_start, 1),
        "daemon_ready_s": round(ready, 1),
        "daemon_cpu_percent_of_one_core": round(100 * cpu / (window_end - window_start), 1),
        "daemon_rss_mib": round(rss, 1),
        "failed_passes": failures(log_path),
        "latency_ms": {mode: latency_of(latencies, mode) for mode in MODES},
        "requests_per_job_minute": rates,
        "passes_per_job_minute": {g.name: round(passes[g.name] / args.jobs / minutes, 2) for g in groups},
        "wakes_per_job_minute": {
            g.name: {
                reason: round(wakes[g.name, reason] / args.jobs / minutes, 2)
                for reason in sorted({r for name, r in wakes if name == g.name})
            }
            for g in groups
        },
        "budget": budget(rates, latencies),
    }


def measure_moves(sandbox: Sandbox, seats: Sequence[Seat], args: argparse.Namespace) -> list[tuple[str, float | None]]:
    """``--moves`` moves of every still symbol at once, spaced by the period times the golden ratio (so they fall at
    every phase of the polling period); (mode, milliseconds to the batch or None) per job and move."""
    spacing = args.period * (1 + math.sqrt(5)) / 2
    timeout = args.period + 5.0
    samples: list[tuple[str, float | None]] = []
    next_at = time.time()
    for index in range(args.moves):
        time.sleep(max(0.0, next_at - time.time()))
        next_at += spacing
        moved = [(seat, move(sandbox, seat.symbol, up=index % 2 == 0)) for seat in seats]
        found = reactions(sandbox.recorder, moved, timeout)
        samples.extend((seat.group.mode, ms) for seat, ms in zip(seats, found, strict=True))
        next_at = max(next_at, time.time() + 1.0)
    return samples


def latency_of(samples: Sequence[tuple[str, float | None]], mode: str) -> dict[str, Any]:
    """Spread of one mode's reactions, the count of moves it missed, and whether it holds the reaction goal."""
    got = [ms for m, ms in samples if m == mode and ms is not None]
    figures: dict[str, Any] = {**spread(got), "samples": len(got), "values": sorted(got)}
    figures["missed"] = sum(1 for m, ms in samples if m == mode and ms is None)
    p50, p99 = figures["p50"], figures["p99"]
    figures["holds_goal"] = bool(got) and not figures["missed"] and p50 < GOAL_P50_MS and p99 < GOAL_P99_MS
    return figures


def budget(rates: dict[str, dict[str, Any]], samples: Sequence[tuple[str, float | None]]) -> dict[str, Any]:
    """Jobs per API key in each mode and market, and the stream's multiple of the fastest polling."""
    table: dict[str, Any] = {}
    for market in ("calm", "trending"):
        row: dict[str, Any] = {}
        for mode in MODES:
            rate = rates[f"{market}-{mode}"]
            row[mode] = {
                "requests_per_job_minute": rate["total"],
                "jobs_per_key": jobs_per_key(rate["own"], rate["shared"]),
                "holds_reaction_goal": latency_of(samples, mode)["holds_goal"],
            }
        stream, fast = row["stream"]["jobs_per_key"], row["fastpoll"]["jobs_per_key"]
        row["stream_over_fastpoll"] = None if not stream or not fast else round(stream / fast, 1)
        table[market] = row
    return table


def scale(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """``--scale-jobs`` stream jobs over ``--scale-symbols`` still symbols in one daemon, and moves one symbol at a
    time: the reaction of every job of the moved symbol."""
    group = Group("stream", "scale", SCALE_PERIOD_S)
    symbols = [f"z{n:04d}usdt" for n in range(args.scale_symbols)]
    seats = [Seat(f"scale-{n:04d}", group, symbols[n % len(symbols)], n) for n in range(args.scale_jobs)]
    specs = [still_spec(s, s.removesuffix("usdt")) for s in symbols]
    accounts = [(s.account, s.symbol.removesuffix("usdt")) for s in seats]
    with served(specs, accounts, [group.name], args.seed) as sandbox:
        urls = {group.name: sandbox.apps[group.name][0]}
        env = write_jobs(workdir / "scale-jobs", seats, urls, sandbox.stream_url, args.levels)
        log_path = workdir / "scale-daemon.log"
        ready_timeout = max(60.0, args.scale_jobs * 0.5)
        with (
            open(log_path, "wb") as log,
            daemon(workdir / "scale-jobs", workdir / "scale-state", env, log, ready_timeout) as (proc, ready, http),
        ):
            if ready is None:
                raise SystemExit(f"the scale daemon was not ready within {ready_timeout:.0f} s (see {log_path})")
            settled = settle(http, SCALE_SETTLE_S)
            cpu0, own0, t0 = cpu_seconds(proc.pid), time.process_time(), time.time()
            samples = scale_moves(sandbox, seats, symbols, args)
            window = time.time() - t0
            waits = queue_waits(log_path, t0, time.time())
            cpu, own = cpu_seconds(proc.pid) - cpu0, time.process_time() - own0
            health = stream_health(scrape(http))
            rss = rss_mib(proc.pid)
    got = [ms for ms in samples if ms is not None]
    figures: dict[str, Any] = {**spread(got), "samples": len(got), "missed": len(samples) - len(got)}
    figures["values"] = sorted(got)
    figures["holds_goal"] = bool(got) and not figures["missed"] and figures["p99"] < SCALE_GOAL_P99_MS
    return {
        "jobs": args.scale_jobs,
        "symbols": args.scale_symbols,
        "moves": args.scale_moves,
        "reaction_ms": figures,
        "daemon_ready_s": round(ready, 1),
        "backlog_cleared_after_ready_s": settled,
        "woken_pass_queue_wait_ms": spread(waits),
        "window_s": round(window, 1),
        "daemon_cpu_percent_of_one_core": round(100 * cpu / window, 1),
        "sandbox_cpu_percent_of_one_core": round(100 * own / window, 1),
        "stream": health,
        "daemon_rss_mib": round(rss, 1),
        "failed_passes": failures(log_path),
    }


def settle(http: str, timeout: float) -> float | None:
    """Wait until no pass waits in the daemon's queue (``rebalancer_passes_waiting`` 0 on three scrapes in a row):
    the first passes of every job and the ticks that came due meanwhile are behind it. The seconds it took, or None
    if the queue never emptied within ``timeout`` (the window then starts anyway: a daemon that never catches up is
    a result too)."""
    started, quiet = time.monotonic(), 0
    while time.monotonic() - started < timeout:
        waiting = sum(s.value for s in scrape(http) if s.name == "rebalancer_passes_waiting")
        quiet = quiet + 1 if waiting == 0 else 0
        if quiet == 3:
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


def queue_waits(log_path: Path, start: float, end: float) -> list[float]:
    """How long each pass woken by the stream waited in the daemon's queue (its ``late_ms``), for the passes logged
    inside [start, end) (wall time; a pass that changed something is logged at info)."""
    waits: list[float] = []
    for record in log_records(log_path):
        woken = record.get("msg") == "pass" and record.get("wake") != "timer" and "late_ms" in record
        if woken and start <= datetime.fromisoformat(record["ts"]).timestamp() < end:
            waits.append(float(record["late_ms"]))
    return waits


def log_records(log_path: Path) -> Iterator[dict[str, Any]]:
    """The daemon's JSON log lines as objects (anything else in the file is skipped)."""
    for line in log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if isinstance(record, dict):
                yield record


def scale_moves(
    sandbox: Sandbox, seats: Sequence[Seat], symbols: Sequence[str], args: argparse.Namespace
) -> list[float | None]:
    """One move every ``--scale-gap`` s, going round the symbols; every job's reaction to its symbol's moves."""
    on: dict[str, list[Seat]] = defaultdict(list)
    for seat in seats:
        on[seat.symbol].append(seat)
    moved: list[tuple[Seat, float]] = []
    for index in range(args.scale_moves):
        symbol = symbols[index % len(symbols)]
        at = move(sandbox, symbol, up=(index // len(symbols)) % 2 == 0)
        moved.extend((seat, at) for seat in on[symbol])
        time.sleep(args.scale_gap)
    return reactions(sandbox.recorder, moved, SCALE_TIMEOUT_S)


def table(doc: dict[str, Any]) -> str:
    """The main figures as Markdown tables."""
    side = doc["side_by_side"]
    lines = [
        "| mode | every | move → batch p50 / p99 / max | missed | requests / job / minute (calm / trending) "
        "| jobs per key (calm / trending) |",
        "|---|---|---|---|---|---|",
    ]
    for mode in MODES:
        lat = side["latency_ms"][mode]
        every = doc["profile"]["fast_period_s" if mode == "fastpoll" else "period_s"]
        calm, trend = side["budget"]["calm"][mode], side["budget"]["trending"][mode]
        lines.append(
            f"| {mode} | {every:g} s | {lat['p50']} / {lat['p99']} / {lat['max']} ms | {lat['missed']} "
            f"| {calm['requests_per_job_minute']} / {trend['requests_per_job_minute']} "
            f"| {calm['jobs_per_key']} / {trend['jobs_per_key']} |"
        )
    multiples = " / ".join(str(side["budget"][m]["stream_over_fastpoll"]) for m in ("calm", "trending"))
    lines.append(f"\nstream jobs per key ÷ fastpoll jobs per key (calm / trending): {multiples}")
    if "scale" in doc:
        s = doc["scale"]
        r = s["reaction_ms"]
        lines.append(
            f"\nscale: {s['jobs']} stream jobs on {s['symbols']} symbols, {s['moves']} moves: reaction p50 / p99 / max "
            f"{r['p50']} / {r['p99']} / {r['max']} ms, missed {r['missed']} of {r['samples'] + r['missed']}; "
            f"daemon {s['daemon_cpu_percent_of_one_core']} % of a core, {s['daemon_rss_mib']} MiB"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run both parts, print the tables, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="jobs per mode and market")
    parser.add_argument("--period", type=float, default=10.0, help="the reconcile period of stream and poll, s")
    parser.add_argument("--fast-period", type=float, default=1.0, help="fastpoll's period, s")
    parser.add_argument("--moves", type=int, default=20)
    parser.add_argument("--levels", type=int, default=3, help="ladder levels per side")
    parser.add_argument("--scale-jobs", type=int, default=None, help="stream jobs of the scale part (0: none) [1000]")
    parser.add_argument("--scale-symbols", type=int, default=None, help="their symbols [100]")
    parser.add_argument("--scale-moves", type=int, default=None, help="[120]")
    parser.add_argument("--scale-gap", type=float, default=None, help="seconds between two scale moves [0.5]")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--quick", action="store_true", help="CI smoke: 1 job per group, 2 s period, 3 moves, 20 scale jobs"
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep job files, logs and state in this directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.jobs, args.period, args.moves = 1, 2.0, 3
    scale_profile = QUICK_SCALE if args.quick else SCALE
    for name, value in scale_profile.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    out = args.out or RESULTS_DIR / ("stream-quick.json" if args.quick else "stream.json")
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="stream-bench-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {
            "benchmark": "stream",
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cores": os.cpu_count(),
            "profile": {
                "jobs_per_group": args.jobs,
                "period_s": args.period,
                "fast_period_s": args.fast_period,
                "moves": args.moves,
                "levels_per_side": args.levels,
                "move": f"{MOVE * 100}%",
                "budget": f"{BUDGET_REQUESTS} requests / {BUDGET_SECONDS} s",
            },
            "side_by_side": side_by_side(args, workdir),
        }
        if args.scale_jobs > 0:
            doc["scale"] = scale(args, workdir)
    doc["load_average"] = {"start": [round(v, 2) for v in load], "end": [round(v, 2) for v in os.getloadavg()]}
    print(table(doc))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()
