"""Replay speed: a day of market at one book a second plus trades, for a job of 10 levels a side.

    python bench/replay_bench.py                 # a day; --vary with 4 values on 2 cores
    python bench/replay_bench.py --quick         # CI smoke: 20 minutes, 2 values

The market is the walk (``walk:seed=7,vol=0.0003``) written out as a recording in the stream's format (gzip JSON
lines: a rules line, then a ``depth_step0`` frame every second and ``trade_ticker`` frames), so the replay reads,
decompresses and parses every frame as it would a real recording. The job is ``jobs/btcusdt-maker.yaml`` (10 levels
a side, every 10 s). Measured: the wall and CPU time of one replay in this process (one core), as a ratio to the
market's length (goal ≥ 2000×); then ``--vary ladder.buy.first`` with 4 values on 2 worker processes against one
replay's wall time (goal < 2.5×), and, steadier on a shared machine, its CPU time (the parent reading the market
once, then the workers) as the wall time it would take on 2 idle cores. A cProfile of a shorter replay says where
the time goes.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import io
import json
import os
import platform
import pstats
import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a plain script: run from anywhere

from rebalancer.jobfile.load import load_job
from rebalancer.replay.driver import Options, replay
from rebalancer.replay.market import Book
from rebalancer.replay.source import open_market
from rebalancer.replay.vary import parse_vary, replay_each
from rebalancer.replay.walk import WalkSpec, walk_market

ROOT = Path(__file__).resolve().parent.parent
JOB = ROOT / "jobs" / "btcusdt-maker.yaml"
RESULTS = ROOT / "bench" / "results" / "replay.json"
VARY = "ladder.buy.first=0.3%,0.5%,0.7%,1%"
QUICK_VARY = "ladder.buy.first=0.3%,0.5%"


def write_recording(path: Path, hours: Decimal) -> tuple[int, int]:
    """The walk of ``hours`` written as a stream recording, numbers as JSON numbers as the sandbox's stream sends
    them; (books, trades) written."""
    market = walk_market(WalkSpec(hours=hours), "btcusdt")
    assert market.rules is not None
    books = trades = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=6) as out:
        rules = {"btcusdt": {"tick": str(market.rules.tick), "lot": str(market.rules.lot)}}
        out.write(json.dumps({"t": 0, "rules": rules}) + "\n")
        for event in market.events:
            t = event.t_ms
            if isinstance(event, Book):
                asks = ",".join(f"[{p},{v}]" for p, v in event.asks)
                buys = ",".join(f"[{p},{v}]" for p, v in event.bids)
                tick = f'{{"asks":[{asks}],"buys":[{buys}]}}'
                frame = f'{{"channel":"market_btcusdt_depth_step0","ts":{t},"tick":{tick}}}'
                books += 1
            else:
                trade = (
                    f'{{"id":{event.trade_id},"side":"{event.side}","price":{event.price},"vol":{event.volume},'
                    f'"amount":{event.price * event.volume},"ts":{t},"ds":""}}'
                )
                tick = f'{{"id":{event.trade_id},"ts":{t},"data":[{trade}]}}'
                frame = f'{{"channel":"market_btcusdt_trade_ticker","ts":{t},"tick":{tick}}}'
                trades += 1
            out.write(f'{{"t":{t},"frame":{frame}}}\n')
    return books, trades


def _children_cpu() -> float:
    """CPU seconds used so far by this process's finished child processes (the --vary workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_replay(recording: Path) -> tuple[float, float, dict[str, Any]]:
    """(wall seconds, CPU seconds, result JSON) of one replay of the recording."""
    job = load_job(JOB)
    wall, cpu = time.perf_counter(), time.process_time()
    with open_market(str(recording), job) as (market, rules):
        run = replay(job, market, rules, Options())
    return time.perf_counter() - wall, time.process_time() - cpu, run.result.to_json()


def profile(recording: Path, top: int = 12) -> str:
    """The top functions by cumulative time of one replay."""
    job = load_job(JOB)
    profiler = cProfile.Profile()
    with open_market(str(recording), job) as (market, rules):
        profiler.runcall(replay, job, market, rules, Options())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> None:
    """Run the benchmark and write ``bench/results/replay.json``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20 minutes of market, 2 values: a smoke test")
    parser.add_argument("--hours", type=Decimal, default=None, help="market length (default 24; quick: 1/3)")
    parser.add_argument("--out", type=Path, default=None, help=f"results JSON (default {RESULTS}; quick: none)")
    parser.add_argument("--profile", action="store_true", help="also profile a replay of the first hour")
    args = parser.parse_args()
    hours = args.hours or (Decimal(1) / 3 if args.quick else Decimal(24))
    vary_text = QUICK_VARY if args.quick else VARY
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "day.jsonl.gz"
        books, trades = write_recording(recording, hours)
        seconds = int(hours * 3600)
        warm = Path(tmp) / "warm.jsonl.gz"
        write_recording(warm, Decimal(1) / 60)
        one_replay(warm)  # imports and caches: what a replay costs, not what starting Python costs
        wall, cpu, result = one_replay(recording)
        print(f"market: {seconds} s, {books} books, {trades} trades, {recording.stat().st_size} bytes gzip")
        print(
            f"one replay: {wall:.2f} s wall, {cpu:.2f} s CPU; {seconds / wall:.0f}x real time (wall), "
            f"{seconds / cpu:.0f}x (CPU); {result['passes']} passes, {result['requests']} requests"
        )
        vary = parse_vary(vary_text)
        started, parent, children = time.perf_counter(), time.process_time(), _children_cpu()
        rows = replay_each(str(JOB), vary, str(recording), Options(), workers=2)
        vary_wall = time.perf_counter() - started
        vary_parent, vary_workers = time.process_time() - parent, _children_cpu() - children
        idle = vary_parent + vary_workers / 2  # the wall time on 2 idle cores, the workers' work split evenly
        print(
            f"--vary with {len(vary.values)} values on 2 processes: {vary_wall:.2f} s wall = "
            f"{vary_wall / wall:.2f}x one replay; CPU {vary_parent:.2f} s reading the market once + "
            f"{vary_workers:.2f} s in the workers: on 2 idle cores {idle / cpu:.2f}x one replay's CPU time"
        )
        profiled = ""
        if args.profile:
            short = Path(tmp) / "hour.jsonl.gz"
            write_recording(short, Decimal(1))
            profiled = profile(short)
            print(profiled)
    document = {
        "benchmark": "replay",
        "argv": sys.argv[1:],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": list(os.getloadavg())},
        "market": {"seconds": seconds, "books": books, "trades": trades},
        "one_replay": {
            "wall_s": round(wall, 3),
            "cpu_s": round(cpu, 3),
            "x_real_time_wall": round(seconds / wall),
            "x_real_time_cpu": round(seconds / cpu),
            "passes": result["passes"],
            "requests": result["requests"],
        },
        "vary": {
            "values": len(vary.values),
            "processes": 2,
            "wall_s": round(vary_wall, 3),
            "x_one_replay": round(vary_wall / wall, 2),
            "parent_cpu_s": round(vary_parent, 3),
            "workers_cpu_s": round(vary_workers, 3),
            "x_one_replay_cpu_on_2_idle_cores": round(idle / cpu, 2),
            "passes": [r.passes for _, r in rows],
        },
    }
    out = args.out or (None if args.quick else RESULTS)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(document))


if __name__ == "__main__":
    main()
