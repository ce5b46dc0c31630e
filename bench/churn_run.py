"""One churn run: one policy, one regime, one seed, N passes against its own fresh sandbox; per-pass measures.

A pass is timed from reading the snapshot (ticker, balances, open orders; the symbol rules are cached after the
first pass; ``rebalancer`` reads the balances itself, when it needs them) to the policy's last request. After it,
outside the timing and without HTTP, the engine is asked what stands, and the pass is measured against the ladder
of its own snapshot:

- ``bound``: the minimum edit from the book the pass saw to a ladder within tolerance: the cancels + placements of
  ``diff.reconcile`` (a maximum matching, so no policy that ends complete can send fewer);
- fidelity: each standing order's distance from its level (paired by rank, nearest first) in bps of the reference,
  and whether the ladder is complete (every target has an order within tolerance, nothing extra stands);
- fidelity before the pass: the same distances for the book the pass found (5 s of market later), which is what
  the market sees most of the time;
- queue time kept: the mean age of the standing orders on the simulated clock.

Then the clock moves ``STEP_SECONDS`` (the mid walks, crossed orders fill). A pass that reads a crossed book (an
order of ours still above the crowd's ask or below its bid, part-filled on the last tick) acts on nothing for every
policy, as the product's ladder refuses to hang from a crossed book; it counts as not complete and is not measured.
"""

from __future__ import annotations

import math
import statistics
import time
from decimal import Decimal
from typing import Any

from market_sim import REGIMES, STEP_SECONDS, SYMBOL, World, ladder_job, serve
from policies import DEDICATED, LATE_BALANCES, POLICIES, by_rank

from rebalancer.core import diff, ladder
from rebalancer.engine.runner import read_snapshot
from rebalancer.job import Job
from rebalancer.models import MarketSnapshot, Order, Target
from rebalancer.sandbox.engine import DEMO_API_KEY

BPS = Decimal(10_000)
SERIES = ("ops", "requests", "writes", "wall_ms", "bound", "fid_mean", "fid_before", "age_s")
"""What is recorded per pass."""


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank); 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))]


def minimum_edit(job: Job, snapshot: MarketSnapshot, targets: tuple[Target, ...], ref: Decimal) -> int:
    """Cancels + placements of our diff from the book the pass saw: the least any complete outcome needs."""
    result = diff.reconcile(targets, snapshot.open_orders, job.tolerance, reference_price=ref)
    return len(result.cancel) + len(result.place)


def fidelity(
    job: Job, standing: tuple[Order, ...], targets: tuple[Target, ...], ref: Decimal
) -> tuple[list[float], bool]:
    """Distances (bps of ``ref``) of the standing orders from their levels, and whether the ladder is complete."""
    distances = [float(abs(o.price - t.price) / ref * BPS) for o, t in by_rank(standing, targets)]
    after = diff.reconcile(targets, standing, job.tolerance, reference_price=ref)
    return distances, not after.place and not after.cancel


def run_one(regime: str, seed: int, policy: str, passes: int) -> dict[str, Any]:
    """Run ``policy`` for ``passes`` passes; per-pass series and the run's summary as JSON-safe data."""
    job, act = ladder_job(), POLICIES[policy]
    series: dict[str, list[float]] = {k: [] for k in SERIES}
    complete = skipped = 0
    distances: list[float] = []
    with serve(REGIMES[regime], seed, dedicated=policy in DEDICATED) as world:
        for _ in range(passes):
            before, writes_before = world.client.requests, world.client.writes
            started = time.perf_counter()
            snapshot = read_snapshot(world.client, job.symbol, balances=policy not in LATE_BALANCES)
            crossed = snapshot.ticker.crossed
            ops = 0 if crossed else act(job, snapshot, world.client)
            series["wall_ms"].append((time.perf_counter() - started) * 1000)
            series["requests"].append(world.client.requests - before)
            series["writes"].append(world.client.writes - writes_before)
            series["ops"].append(ops)
            if crossed:
                skipped += 1
                series["bound"].append(0)
                series["fid_mean"].append(math.nan)
                series["fid_before"].append(math.nan)
                series["age_s"].append(_mean_age(world))
            elif _measure(job, world, snapshot, series, distances):
                complete += 1
            world.engine.advance(STEP_SECONDS)
        fills = world.engine.next_trade_id - 1
    return {
        "regime": regime,
        "seed": seed,
        "policy": policy,
        "passes": passes,
        "summary": summarize(series, distances, complete, passes) | {"crossed_passes": skipped, "fills": fills},
        "series": {"ops": series["ops"], "fid_mean": series["fid_mean"]},
    }


def _measure(
    job: Job, world: World, snapshot: MarketSnapshot, series: dict[str, list[float]], distances: list[float]
) -> bool:
    built = ladder.build(job, snapshot)
    ref = built.reference_price
    series["bound"].append(minimum_edit(job, snapshot, built.targets, ref))
    before = [float(abs(o.price - t.price) / ref * BPS) for o, t in by_rank(snapshot.open_orders, built.targets)]
    series["fid_before"].append(statistics.fmean(before) if before else math.nan)
    standing = world.engine.open_orders(DEMO_API_KEY, job.symbol)
    found, is_complete = fidelity(job, standing, built.targets, ref)
    distances.extend(found)
    series["fid_mean"].append(statistics.fmean(found) if found else 0.0)
    series["age_s"].append(_mean_age(world))
    return is_complete


def _mean_age(world: World) -> float:
    now = world.engine.now_ms()
    ages = [(now - o.created_at) / 1000 for o in world.engine.open_orders(DEMO_API_KEY, SYMBOL) if o.created_at]
    return statistics.fmean(ages) if ages else 0.0


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return statistics.fmean(kept) if kept else 0.0


def summarize(series: dict[str, list[float]], distances: list[float], complete: int, passes: int) -> dict[str, float]:
    """Per-pass means of a run (and p95 of the distances over every standing order of every pass)."""
    return {
        "ops_per_pass": statistics.fmean(series["ops"]),
        "requests_per_pass": statistics.fmean(series["requests"]),
        "writes_per_pass": statistics.fmean(series["writes"]),
        "wall_ms_per_pass": statistics.fmean(series["wall_ms"]),
        "wall_ms_p95": p95(series["wall_ms"]),
        "bound_per_pass": statistics.fmean(series["bound"]),
        "fidelity_mean_bps": statistics.fmean(distances) if distances else 0.0,
        "fidelity_p95_bps": p95(distances),
        "fidelity_before_pass_bps": _nanmean(series["fid_before"]),
        "complete_share": complete / passes,
        "age_s": statistics.fmean(series["age_s"]),
        "age_passes": statistics.fmean(series["age_s"]) / STEP_SECONDS,
    }
