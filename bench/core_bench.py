"""Benchmark of the pure core: build an n-level-per-side ladder and diff it against n open orders per side.

Realistic case: the open orders are the previous pass's placements, most still near their targets, a few moved
out of tolerance, a few partially filled, a few gone. Prints a table and writes bench/results/core.json.

    python bench/core_bench.py [--repeat N] [--sizes 100,1000,10000]

Target: median under 20 ms at n = 1000 (ladder.build + diff.reconcile), growing no faster than n log n.

Dense windows: 1000 levels a side 0.5 apart around 30 000 with ``tolerance.price: 0.1%`` (each window spans
~120 levels), against the previous pass's orders after the reference moved by 0.2, with flat sizes and with
sizes growing level by level. Target: median under 50 ms (ladder.build + diff.reconcile).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # a plain script: run from anywhere

from rebalancer.core import diff, ladder, plan
from rebalancer.job import Amount, Job, Limits, SideLadder, Tolerance
from rebalancer.models import (
    Balance,
    Balances,
    MarketSnapshot,
    Order,
    OrderStatus,
    Side,
    SymbolRules,
    Ticker,
)

RESULTS = Path(__file__).resolve().parent / "results" / "core.json"


def make_case(n: int) -> tuple[Job, MarketSnapshot]:
    """A job with n levels per side and a book of n owned orders per side, mostly near their targets."""
    rules = SymbolRules("btcusdt", "btc", "usdt", price_precision=2, amount_precision=4)
    step = Amount(Decimal(20) / n, percent=True)  # the whole ladder spans 20 % of the reference
    side = SideLadder(
        levels=n,
        first=Amount(Decimal("0.1"), percent=True),
        step=step,
        size=Decimal("0.01"),
        size_step=Decimal("0.0001"),
    )
    job = Job(
        name="bench",
        symbol="btcusdt",
        buy=side,
        sell=side,
        tolerance=Tolerance(price=Amount(step.value / 4, percent=True), size=Amount(Decimal(10), True)),
        limits=Limits(max_orders=None, band=Amount(Decimal(30), True), post_only=True),
    )
    ticker = Ticker(bid=Decimal("29999.00"), ask=Decimal("30001.00"), last=Decimal("30000.00"))
    empty = MarketSnapshot(rules, ticker, Balances({}), ())
    targets = ladder.build(job, empty).targets
    orders: list[Order] = []
    for k, t in enumerate(targets):
        if k % 50 == 7:
            continue  # filled and gone: its level must be placed again
        price, deal = t.price, Decimal(0)
        if k % 20 == 3:
            price = t.price * Decimal("1.01") if t.side is Side.SELL else t.price * Decimal("0.99")
            price = rules.round_price(price, t.side)  # drifted out of tolerance
        elif k % 10 == 1:
            price = t.price + rules.tick * (1 if t.side is Side.SELL else -1)  # within tolerance
        status = OrderStatus.NEW
        if k % 25 == 5:
            deal, status = t.volume / 2, OrderStatus.PARTIALLY_FILLED
        orders.append(Order(str(100000 + k), t.side, price, t.volume, rules.round_volume(deal), status))
    balances = Balances({"usdt": Balance(Decimal(10) ** 9), "btc": Balance(Decimal(10) ** 6)})
    return job, MarketSnapshot(rules, ticker, balances, tuple(orders))


def run_core(job: Job, snapshot: MarketSnapshot) -> diff.Diff:
    """What the target is about: ladder.build + diff.reconcile."""
    built = ladder.build(job, snapshot)
    return diff.reconcile(
        built.targets,
        snapshot.open_orders,
        job.tolerance,
        reference_price=built.reference_price,
        band=job.limits.band,
        over_limit=built.over_limit,
    )


def measure(fn: object, repeat: int) -> list[float]:
    """Wall times in milliseconds of ``repeat`` calls (after one warm-up call)."""
    assert callable(fn)
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def dense_case(n: int, repeat: int) -> dict[str, object]:
    """Stress case: a price tolerance wider than the level step, so matching components span whole sides."""
    job, snapshot = make_case(n)
    assert job.buy is not None
    wide = Tolerance(price=Amount(job.buy.step.value * 4, percent=True), size=job.tolerance.size)
    job = replace(job, tolerance=wide)
    times = measure(lambda: run_core(job, snapshot), max(3, repeat // 3))
    result = run_core(job, snapshot)
    return {
        "levels_per_side": n,
        "price_tolerance": str(wide.price),
        "core_median_ms": round(statistics.median(times), 3),
        "keep": len(result.keep),
        "cancel": len(result.cancel),
        "place": len(result.place),
    }


def dense_window_case(n: int, size_step: Decimal | None) -> tuple[Job, MarketSnapshot]:
    """n levels a side 0.5 apart, tolerance 0.1 % (~120 levels per window at 30 000); the book is the previous
    pass's placements after a 0.2 move of the reference: a few gone, partially filled or drifted 1 %."""
    rules = SymbolRules("btcusdt", "btc", "usdt", price_precision=2, amount_precision=5)
    side = SideLadder(
        levels=n, first=Amount(Decimal("0.5")), step=Amount(Decimal("0.5")), size=Decimal("0.01"), size_step=size_step
    )
    job = Job(
        name="bench-dense",
        symbol="btcusdt",
        buy=side,
        sell=side,
        tolerance=Tolerance(price=Amount(Decimal("0.1"), percent=True), size=Amount(Decimal(10), True)),
        limits=Limits(max_orders=None, band=Amount(Decimal(30), True), post_only=False),
    )
    ticker = Ticker(bid=Decimal("29999.00"), ask=Decimal("30001.00"), last=Decimal("30000.00"))
    targets = ladder.build(job, MarketSnapshot(rules, ticker, Balances({}), ())).targets
    orders: list[Order] = []
    for k, t in enumerate(targets):
        if k % 50 == 7:
            continue
        price, deal, status = t.price + Decimal("0.2"), Decimal(0), OrderStatus.NEW
        if k % 20 == 3:
            price = rules.round_price(price * (Decimal("1.01") if t.side is Side.SELL else Decimal("0.99")), t.side)
        if k % 25 == 5:
            deal, status = rules.round_volume(t.volume / 2), OrderStatus.PARTIALLY_FILLED
        orders.append(Order(str(100000 + k), t.side, price, t.volume, deal, status))
    balances = Balances({"usdt": Balance(Decimal(10) ** 9), "btc": Balance(Decimal(10) ** 6)})
    return job, MarketSnapshot(rules, ticker, balances, tuple(orders))


def dense_window_rows(repeat: int) -> list[dict[str, object]]:
    """The dense-window rows: flat sizes, and sizes growing by a step small enough for neighbouring levels to
    be within size tolerance of each other."""
    rows = []
    for label, size_step in (("flat sizes", None), ("sizes +0.00001 per level", Decimal("0.00001"))):
        job, snapshot = dense_window_case(1000, size_step)
        times = measure(lambda job=job, snapshot=snapshot: run_core(job, snapshot), repeat)
        result = run_core(job, snapshot)
        rows.append(
            {
                "case": label,
                "levels_per_side": 1000,
                "open_orders": len(snapshot.open_orders),
                "price_tolerance": "0.1% (~120 levels)",
                "core_median_ms": round(statistics.median(times), 3),
                "keep": len(result.keep),
                "cancel": len(result.cancel),
                "place": len(result.place),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON; exit 1 if the 1000-level target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--sizes", default="100,1000,10000")
    args = parser.parse_args(argv)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        job, snapshot = make_case(n)
        repeat = max(3, args.repeat if n <= 1000 else args.repeat // 3)
        core = measure(lambda job=job, snapshot=snapshot: run_core(job, snapshot), repeat)
        full = measure(lambda job=job, snapshot=snapshot: plan.compute_plan(job, snapshot, None), repeat)
        result = run_core(job, snapshot)
        rows.append(
            {
                "levels_per_side": n,
                "open_orders": len(snapshot.open_orders),
                "core_median_ms": round(statistics.median(core), 3),
                "core_min_ms": round(min(core), 3),
                "compute_plan_median_ms": round(statistics.median(full), 3),
                "keep": len(result.keep),
                "cancel": len(result.cancel),
                "place": len(result.place),
                "repeat": repeat,
            }
        )
    base = rows[0]
    print(
        f"{'levels/side':>11} {'orders':>7} {'core ms':>9} {'plan ms':>9} {'per n log n':>12} "
        f"{'keep':>6} {'cancel':>6} {'place':>6}"
    )
    for row in rows:
        n = row["levels_per_side"]
        ratio = (row["core_median_ms"] / base["core_median_ms"]) / (
            n * math.log(n) / (base["levels_per_side"] * math.log(base["levels_per_side"]))
        )
        row["growth_vs_nlogn"] = round(ratio, 3)
        print(
            f"{n:>11} {row['open_orders']:>7} {row['core_median_ms']:>9.2f} "
            f"{row['compute_plan_median_ms']:>9.2f} "
            f"{ratio:>12.2f} {row['keep']:>6} {row['cancel']:>6} {row['place']:>6}"
        )
    dense = dense_case(1000, args.repeat)
    print(
        f"stress (not the target): 1000 levels/side, price tolerance 4 steps wide, so every order fits ~8 "
        f"targets: core median {dense['core_median_ms']:.1f} ms"
    )
    windows = dense_window_rows(args.repeat)
    for row in windows:
        print(
            f"dense windows, {row['case']}: 1000 levels/side 0.5 apart, tolerance 0.1 % (~120 levels): "
            f"core median {row['core_median_ms']:.1f} ms (keep {row['keep']}, cancel {row['cancel']}, "
            f"place {row['place']})"
        )
    target = next((r for r in rows if r["levels_per_side"] == 1000), None)
    ok = (target is None or target["core_median_ms"] < 20) and all(r["core_median_ms"] < 50 for r in windows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "ladder.build + diff.reconcile, n levels per side vs n open orders per side",
                "target": "median < 20 ms at n = 1000; growth no faster than n log n (growth_vs_nlogn <= ~1)",
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "met": ok,
                "rows": rows,
                "stress_dense_tolerance": dense,
                "dense_windows": windows,
                "dense_windows_target": "median < 50 ms at 1000 levels a side, tolerance spanning ~120 levels",
            },
            indent=2,
        )
        + "\n"
    )
    print(
        f"{'targets met' if ok else 'TARGET MISSED'}: median at n=1000 under 20 ms, dense windows under 50 ms; "
        f"wrote {RESULTS}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
