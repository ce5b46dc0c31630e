"""Churn benchmark: refresh policies on the same seeded market, side by side (issues 7 and 12).

    python bench/churn.py            # full: 3 regimes x 3 seeds x 2000 passes per policy, table + JSON + plot
    python bench/churn.py --quick    # smoke: a few passes, one seed, JSON only (bench/results/churn-quick.json)

Each (regime, seed, policy) run gets its own in-process sandbox (fresh engine from the seed, manual clock, rate
limits off) served over real HTTP on a loopback port and driven by the real client; runs are spread over worker
processes. The policies are in ``policies.py``, the market and the ladder in ``market_sim.py``, the per-pass
measures in ``churn_run.py``. Printed and written per regime and policy: order operations, HTTP requests and wall
time per pass, ladder fidelity, complete share, queue time kept, and each policy's ratio to rebalancer and to the
minimum edit (the lower bound). Runs are averaged over seeds with equal weight.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from churn_run import run_one
from market_sim import LEVELS, REGIMES, STEP_SECONDS, ladder_job
from policies import POLICIES

RESULTS = Path(__file__).resolve().parent / "results"
BASELINE = "rebalancer"
SERIES_WINDOW = 20
"""Passes averaged into one point of the stored (and plotted) series."""


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Per regime and policy: the seed-averaged summary, ratios to rebalancer and to the bound, and each seed's."""
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for regime in dict.fromkeys(r["regime"] for r in runs):
        table[regime] = {}
        for policy in POLICIES:
            mine = sorted((r for r in runs if r["regime"] == regime and r["policy"] == policy), key=lambda r: r["seed"])
            if not mine:
                continue
            keys = mine[0]["summary"].keys()
            mean = {k: statistics.fmean(r["summary"][k] for r in mine) for k in keys}
            table[regime][policy] = {**mean, "per_seed": {str(r["seed"]): r["summary"] for r in mine}}
        base = table[regime].get(BASELINE)
        for row in table[regime].values():
            row["ops_vs_bound"] = _ratio(row["ops_per_pass"], row["bound_per_pass"])
            if base is not None:
                row["ops_vs_rebalancer"] = _ratio(row["ops_per_pass"], base["ops_per_pass"])
                row["requests_vs_rebalancer"] = _ratio(row["requests_per_pass"], base["requests_per_pass"])
                row["wall_vs_rebalancer"] = _ratio(row["wall_ms_per_pass"], base["wall_ms_per_pass"])
                row["ops_vs_rebalancer_bound"] = _ratio(row["ops_per_pass"], base["bound_per_pass"])
    return table


def _ratio(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


def windowed(values: list[float], window: int) -> list[float | None]:
    """Means of consecutive ``window``-pass slices (NaN passes left out; None for an all-NaN slice)."""
    out: list[float | None] = []
    for start in range(0, len(values), window):
        kept = [v for v in values[start : start + window] if v == v]  # NaN != NaN
        out.append(statistics.fmean(kept) if kept else None)
    return out


COLUMNS = (
    ("ops/pass", "ops_per_pass", "{:.2f}"),
    ("req/pass", "requests_per_pass", "{:.2f}"),
    ("writes", "writes_per_pass", "{:.2f}"),
    ("ms/pass", "wall_ms_per_pass", "{:.1f}"),
    ("dist bps", "fidelity_mean_bps", "{:.2f}"),
    ("p95 bps", "fidelity_p95_bps", "{:.2f}"),
    ("pre bps", "fidelity_before_pass_bps", "{:.2f}"),
    ("complete", "complete_share", "{:.1%}"),
    ("age s", "age_s", "{:.0f}"),
    ("ops x reb", "ops_vs_rebalancer", "{:.2f}"),
    ("req x reb", "requests_vs_rebalancer", "{:.2f}"),
    ("ops x bound", "ops_vs_bound", "{:.2f}"),
)


def render(table: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The plain-text table: one block per regime, one row per policy."""
    lines: list[str] = []
    widths = [max(len(name), 9) for name, _, _ in COLUMNS]
    for regime, rows in table.items():
        first = next(iter(rows.values()))
        bound = rows.get(BASELINE, first)["bound_per_pass"]
        lines.append(f"{regime} (minimum edit from rebalancer's book: {bound:.2f} ops/pass)")
        lines.append(f"{'policy':<15}" + " ".join(f"{n:>{w}}" for (n, _, _), w in zip(COLUMNS, widths, strict=True)))
        for policy, row in rows.items():
            cells = ["-" if row.get(key) is None else fmt.format(row[key]) for (_, key, fmt) in COLUMNS]
            lines.append(f"{policy:<15}" + " ".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
        lines.append("")
    return "\n".join(lines)


def tasks(regimes: list[str], seeds: list[int], passes: int) -> list[tuple[str, int, str, int]]:
    """Every run to do, the slowest policy (one request per order) first so the workers finish together."""
    order = sorted(POLICIES, key=lambda p: p != "per_order")
    return [(r, s, p, passes) for p in order for r in regimes for s in seeds]


def run_all(todo: list[tuple[str, int, str, int]], workers: int) -> list[dict[str, Any]]:
    """Run every task, in worker processes when ``workers`` > 1."""
    if workers <= 1:
        return [run_one(*task) for task in todo]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_one, *zip(*todo, strict=True)))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (``--quick`` sets the smoke profile's defaults)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke profile: a few passes, one seed, no plot")
    parser.add_argument("--passes", type=int, help="passes per run (full: 2000, quick: 8)")
    parser.add_argument("--seeds", help="comma-separated seeds (full: 1,2,3, quick: 1)")
    parser.add_argument("--regimes", default=",".join(REGIMES), help="comma-separated regimes")
    parser.add_argument("--workers", type=int, help="worker processes (full: min(2, CPUs), quick: 1)")
    parser.add_argument("--out", type=Path, help="JSON output (full: results/churn.json, quick: churn-quick.json)")
    parser.add_argument("--plot", type=Path, help="PNG output (full: results/churn.png; quick: none)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.passes = args.passes or (8 if quick else 2000)
    args.seeds = [int(s) for s in (args.seeds or ("1" if quick else "1,2,3")).split(",")]
    args.regimes = [r for r in args.regimes.split(",") if r]
    unknown = [r for r in args.regimes if r not in REGIMES]
    if unknown or args.passes < 1:
        parser.error(f"unknown regimes {unknown} or passes < 1")
    args.workers = args.workers or (1 if quick else min(2, os.cpu_count() or 1))
    args.out = args.out or RESULTS / ("churn-quick.json" if quick else "churn.json")
    if args.plot is None and not quick:
        args.plot = RESULTS / "churn.png"
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the profile, print the table, write the JSON (and the plot)."""
    args = parse_args(argv)
    started = time.perf_counter()
    runs = run_all(tasks(args.regimes, args.seeds, args.passes), args.workers)
    elapsed = time.perf_counter() - started
    table = aggregate(runs)
    print(render(table))
    job = ladder_job()
    first_seed = args.seeds[0]
    document = {
        "benchmark": "churn",
        "command": "python bench/churn.py" + (" --quick" if args.quick else ""),
        "argv": sys.argv[1:] if argv is None else argv,
        "passes": args.passes,
        "seeds": args.seeds,
        "step_seconds": STEP_SECONDS,
        "ladder": {
            "levels_per_side": LEVELS,
            "first": str(job.buy.first) if job.buy else None,
            "step": str(job.buy.step) if job.buy else None,
            "tolerance": {"price": str(job.tolerance.price), "size": str(job.tolerance.size)},
        },
        "regimes": {
            name: {"volatility_per_s": str(r.volatility), "drift_per_s": str(r.drift)}
            for name, r in REGIMES.items()
            if name in args.regimes
        },
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "workers": args.workers},
        "elapsed_s": round(elapsed, 1),
        "results": table,
        "series": {
            "seed": first_seed,
            "window_passes": SERIES_WINDOW,
            "runs": {
                f"{r['regime']}/{r['policy']}": {k: windowed(v, SERIES_WINDOW) for k, v in r["series"].items()}
                for r in runs
                if r["seed"] == first_seed
            },
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out} ({elapsed:.0f} s)")
    if args.plot is not None:
        from churn_plot import plot

        plot(document, args.plot)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
