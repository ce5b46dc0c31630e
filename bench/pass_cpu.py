"""CPU per daemon pass, quiet and replacing: what one pass of a job costs the daemon's own thread.

    python bench/pass_cpu.py                     # 5 and 100 levels a side, 300 passes of each kind
    python bench/pass_cpu.py --quick             # CI smoke: 5 levels, 20 passes of each kind

A daemon (not started: no scheduler, no workers) holds one job against the sandbox served in this process; the
job's first pass places its ladder, then ``Daemon.run_pass_now`` runs the daemon's whole pass (pause switch, lease,
``run_pass``, metrics, the JSON log line to /dev/null) again and again. A quiet pass finds the book unchanged; before
each replacing pass the sandbox's price steps by ``STEP`` (up, then back down), past the job's price tolerance, so
the pass cancels and places the ladder's outermost level on each side (2 cancels and 2 placements in one batch).
The CPU time of the calling thread (``time.thread_time``) is measured around each pass, so the sandbox's threads
(and the price moves) are not counted; a cProfile of further passes (timed by the same thread clock) names where it
goes. Also printed: requests, state-store statements and transactions, and orders changed per pass.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rebalancer import logs
from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import make_client
from rebalancer.jobfile.load import load_job
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.state.store import StateStore

RESULTS = Path(__file__).resolve().parent / "results" / "pass_cpu.json"
MID = Decimal("30000")
STEP = Decimal("30")
"""The replacing passes' price move: 0.1 %, one ladder step, past the job's 0.05 % price tolerance."""
KINDS = ("quiet", "replacing")

JOB = """\
version: 1
name: cpu{levels}
symbol: btcusdt
exchange: {{url: "{url}", rate_limit: {{reads: "100000/1s", writes: "100000/1s"}}}}
schedule: {{every: 1h}}
ladder:
  buy: {{levels: {levels}, first: 0.5%, step: 0.1%, size: "0.001"}}
  sell: {{levels: {levels}, first: 0.5%, step: 0.1%, size: "0.001"}}
tolerance: {{price: 0.05%, size: 10%}}
limits: {{max_orders: 1000, band: 20%}}
ownership: tracked
"""


def _statements(store: StateStore) -> list[int]:
    """Counters of the SQL statements the store's engine runs (an executemany is one; ``BEGIN`` is not counted) and
    of the transactions it begins: ``[statements, transactions]``.

    Counted by wrapping the dialect's ``do_begin`` and ``do_execute*`` methods on this engine, not with SQLAlchemy
    event listeners: a listener switches the engine's event dispatch on for every statement, which the daemon's
    engine does not run, and so would measure more CPU than a pass costs.
    """
    count = [0, 0]
    dialect: Any = store._db._engine.dialect

    def counted(method: Any, index: int) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            if index or not str(args[1]).startswith("BEGIN"):
                count[index] += 1
            return method(*args, **kwargs)

        return call

    for name in ("do_execute", "do_executemany", "do_execute_no_params"):
        setattr(dialect, name, counted(getattr(dialect, name), 0))
    dialect.do_begin = counted(dialect.do_begin, 1)
    return count


def measure(levels: int, passes: int, workdir: Path, profile_top: int) -> list[dict[str, Any]]:
    """Quiet, then replacing daemon passes of one ``levels``-a-side job: a row of figures for each kind."""
    server = SandboxServer(Engine.create(seed=7, clock="manual"), Faults(rate_limits=False)).start()
    server.engine.set_price("btcusdt", MID)
    path = workdir / f"cpu{levels}.yaml"
    path.write_text(JOB.format(levels=levels, url=server.url))
    job = load_job(path)
    client = make_client(job.exchange, server.url, DEMO_API_KEY, DEMO_SECRET_KEY, ticker_max_age=0.0)
    store = StateStore(f"sqlite:///{workdir / f'state{levels}.db'}")
    statements = _statements(store)

    class Opened:
        def __enter__(self) -> Any:
            return client

        def __exit__(self, *exc: object) -> None:
            client.close()

    daemon = Daemon(store, opener=lambda j: Opened(), workers=1)
    daemon._slots[job.name] = daemon._open(job)  # scheduled by hand: no scheduler, no workers
    first = daemon.run_pass_now(job.name)
    assert first is not None and first.plan.summary["place"] == 2 * levels, first.plan.summary
    rows = [_passes(daemon, job.name, server, statements, kind, levels, passes, profile_top) for kind in KINDS]
    daemon._slots.clear()
    client.close()
    store.close()
    server.stop()
    return rows


def _passes(
    daemon: Daemon,
    name: str,
    server: SandboxServer,
    statements: list[int],
    kind: str,
    levels: int,
    passes: int,
    profile_top: int,
) -> dict[str, Any]:
    """``passes`` timed passes of ``kind`` (then a profile of up to 50 more): the row of figures."""
    replacing = kind == "replacing"
    moves = [0]

    def one_pass() -> Any:
        if replacing:
            moves[0] += 1
            server.engine.set_price("btcusdt", MID + STEP * (moves[0] % 2))
        started = time.thread_time()
        report = daemon.run_pass_now(name)
        spent = (time.thread_time() - started) * 1000
        assert report is not None and report.plan.has_changes == replacing, (kind, report)
        return spent, report

    for _ in range(4):
        one_pass()  # warm caches (and, replacing, step away from the quiet book)
    app = server.app
    requests_before = sum(app.request_counts().values())
    statements_before, transactions_before = statements
    connections_before = server.connections_accepted
    cpu: list[float] = []
    changed = 0
    for _ in range(passes):
        spent, report = one_pass()
        cpu.append(spent)
        changed += report.plan.summary["place"] + report.plan.summary["cancel"]
    requests = (sum(app.request_counts().values()) - requests_before) / passes
    sql = (statements[0] - statements_before) / passes
    transactions = (statements[1] - transactions_before) / passes
    connections = server.connections_accepted - connections_before
    profiler = cProfile.Profile(time.thread_time)  # this thread's CPU, not the time spent waiting on sockets
    for _ in range(min(passes, 50)):
        profiler.enable()
        one_pass()
        profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(profile_top)
    ordered = sorted(cpu)
    return {
        "pass": kind,
        "levels_per_side": levels,
        "passes": passes,
        "cpu_ms_median": round(statistics.median(cpu), 3),
        "cpu_ms_p90": round(ordered[int(0.9 * (len(ordered) - 1))], 3),
        "requests_per_pass": requests,
        "sql_statements_per_pass": sql,
        "transactions_per_pass": transactions,
        "orders_changed_per_pass": changed / passes,
        "connections_opened": connections,
        "profile": text.getvalue(),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the profile, print the table (and the cProfile top with ``--show-profile``), write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,100", help="levels per side, comma-separated")
    parser.add_argument("--passes", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="CI smoke: 5 levels, 20 passes of each kind")
    parser.add_argument("--show-profile", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    sizes = [5] if args.quick else [int(s) for s in args.sizes.split(",")]
    passes = 20 if args.quick else args.passes
    logs.setup("json", logging.INFO, open(os.devnull, "w"))  # noqa: SIM115 - the daemon's logging, to nowhere
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for levels in sizes:
            rows.extend(measure(levels, passes, Path(tmp), 25))
    print(
        "| pass | levels a side | CPU ms per pass (median / p90) | requests per pass | SQL statements per pass "
        "| transactions per pass | orders changed per pass | connections opened |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['pass']} | {row['levels_per_side']} | {row['cpu_ms_median']:.2f} / {row['cpu_ms_p90']:.2f} "
            f"| {row['requests_per_pass']:.1f} | {row['sql_statements_per_pass']:.1f} "
            f"| {row['transactions_per_pass']:.1f} "
            f"| {row['orders_changed_per_pass']:.1f} | {row['connections_opened']} |"
        )
        if args.show_profile:
            print(row["profile"])
    document = {
        "benchmark": "pass_cpu",
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
        "rows": [{k: v for k, v in row.items() if k != "profile"} for row in rows],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
