"""The sandbox's CPU per request: a sandbox child serving many symbols and accounts, driven over keep-alive HTTP
with the mix a daemon sends (ticker, open orders, mass_replaceV2, order_info).

The sandbox child (this script with ``--serve``) holds ``--symbols`` symbols on the real clock, one funded account
each, as the daemon benchmark's sandbox does; the driver, in this process, sends ``--requests`` requests through
``--clients`` keep-alive connections and reads the child's CPU (utime+stime of /proc/PID/stat) before and after.
The figure is the child's CPU seconds per request, in microseconds; the market clock ticks meanwhile, so the
simulation's share is in it too.

``--against DIR`` serves the sandbox from another checkout too and alternates the two, ``--rounds`` times each, so
that both are measured under the same load of a shared machine.

    python bench/sandbox_cpu.py [--symbols 1000] [--requests 6000] [--clients 4] [--rounds 3]
                                [--against DIR] [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))  # the daemon benchmark's accounts; not ROOT: --against picks the package

from daemon_bench import START_PRICE, credentials, symbol_of  # noqa: E402


def serve(symbols: int) -> None:
    """``--serve``: the sandbox with one symbol and one account per index, until SIGTERM; prints its URL first."""
    from rebalancer.sandbox.engine import Engine
    from rebalancer.sandbox.faults import Faults
    from rebalancer.sandbox.market import SymbolSpec
    from rebalancer.sandbox.server import SandboxServer

    specs = [
        SymbolSpec(symbol_of(i), f"b{i:04d}", "usdt", 2, 4, Decimal("0.0001"), START_PRICE) for i in range(symbols)
    ]
    engine = Engine.create(seed=7, clock="real", symbols=specs)
    for i in range(symbols):
        key, secret = credentials(i)
        engine.add_account(key, secret, {"usdt": 10**7, f"b{i:04d}": 10**5})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with SandboxServer(engine, Faults(rate_limits=False)) as server:
        print(f"url: {server.url}", flush=True)
        stop.wait()


def start(source: Path, symbols: int) -> tuple[subprocess.Popen[str], str]:
    """A sandbox child running ``source``'s code, and its URL."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--serve", "--symbols", str(symbols)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=source,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    if not line.startswith("url: "):
        child.kill()
        raise SystemExit(f"the sandbox from {source} did not start: {line!r}")
    return child, line[5:].strip()


def cpu_seconds(pid: int) -> float:
    """utime+stime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def signed(params: dict[str, str], secret: str) -> dict[str, str]:
    """``params`` with ``time`` and the template's MD5 ``sign``."""
    params = {**params, "time": str(time.time_ns() // 1_000_000)}
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()))
    return {**params, "sign": hashlib.md5((text + secret).encode()).hexdigest()}


def drive(url: str, index: int, count: int) -> None:
    """``count`` requests on one keep-alive session for account ``index``, in the daemon's mix: per pass a ticker,
    the open orders, a mass_replaceV2 that moves one order, and an order_info of it."""
    key, secret = credentials(index)
    symbol = symbol_of(index)
    session = requests.Session()
    api = f"{url}/open/api"
    resting: list[int] = []
    sent = 0
    while sent < count:
        session.get(f"{api}/get_ticker", params={"symbol": symbol}).raise_for_status()
        session.get(
            f"{api}/v2/new_order", params=signed({"api_key": key, "symbol": symbol, "pageSize": "100"}, secret)
        ).raise_for_status()
        price = f"{90 + (sent % 50) / 10:.2f}"
        place = json.dumps([{"side": "BUY", "type": 1, "price": price, "volume": "1"}])
        params = {"api_key": key, "symbol": symbol, "mass_place": place}
        if len(resting) >= 5:
            params["mass_cancel"] = json.dumps([resting.pop(0)])
        answer = session.post(f"{api}/mass_replaceV2", data=signed(params, secret)).json()
        new = [i for group in answer["data"]["mass_place"] if group["code"] == "0" for i in group["order_id"]]
        resting.extend(new)
        order_id = str(new[0] if new else resting[0])
        session.get(
            f"{api}/order_info", params=signed({"api_key": key, "symbol": symbol, "order_id": order_id}, secret)
        ).raise_for_status()
        sent += 4
    session.close()


def measure(child: subprocess.Popen[str], url: str, requests_total: int, clients: int, offset: int) -> float:
    """Drive one round; the child's CPU microseconds per request."""
    each = max(4, requests_total // clients)
    threads = [threading.Thread(target=drive, args=(url, offset + c, each)) for c in range(clients)]
    before = cpu_seconds(child.pid)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = cpu_seconds(child.pid) - before
    return 1e6 * used / (each * clients)


def main() -> None:
    """Run the measurement (or serve with ``--serve``) and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=6000, help="requests per round")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--against", type=Path, help="another checkout, measured alternately with this one")
    parser.add_argument("--quick", action="store_true", help="the smoke profile: 20 symbols, 200 requests, 1 round")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.serve:
        serve(args.symbols)
        return
    if args.quick:
        args.symbols, args.requests, args.clients, args.rounds = 20, 200, 2, 1
    sources = {"this": ROOT} | ({"against": args.against.resolve()} if args.against else {})
    children = {name: start(path, args.symbols) for name, path in sources.items()}
    figures: dict[str, list[float]] = {name: [] for name in sources}
    try:
        for round_ in range(args.rounds):
            for name in reversed(sources) if round_ % 2 else sources:
                child, url = children[name]
                offset = (round_ * args.clients) % max(1, args.symbols - args.clients)
                figures[name].append(measure(child, url, args.requests, args.clients, offset))
    finally:
        for child, _ in children.values():
            child.terminate()
            child.wait(timeout=30)
    result: dict[str, Any] = {
        "symbols": args.symbols,
        "requests_per_round": args.requests,
        "clients": args.clients,
        "cpu_us_per_request": {name: [round(v, 1) for v in values] for name, values in figures.items()},
        "median_cpu_us_per_request": {name: round(statistics.median(v), 1) for name, v in figures.items()},
    }
    for name, values in figures.items():
        print(f"{name:8} {sources[name]}: sandbox CPU per request {statistics.median(values):.1f} us (rounds {values})")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
