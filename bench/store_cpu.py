"""CPU per state-store transaction of a daemon pass: what each of a pass's store calls costs the calling thread.

    python bench/store_cpu.py                        # SQLite file in a temporary directory, 7 rounds of 300 calls
    python bench/store_cpu.py --tree ../other        # the same calls on another checkout's store (before/after)
    python bench/store_cpu.py --url postgresql+psycopg://postgres@127.0.0.1:5432/bench

The calls a daemon pass makes, on a store holding one job with ten tracked orders: the pause switch (``is_paused``,
one read), ``pass_inputs`` (one read of six SELECTs), a quiet pass's outcome (one INSERT), and a replacing pass's
write-ahead (fenced, two placements) with its outcome (a batch, four results, the in-flight close, ownership, the
watch list, cleared rejections, the pass row). Thread CPU time (``time.thread_time``), the minimum over rounds of
the mean per call, so another process's load shows as little as it can. ``--tree`` imports ``rebalancer`` from
another checkout: run this script against the old and the new tree in turn, several times, to compare them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

TREE = Path(__file__).resolve().parent.parent


def cases(store: Any, job: str) -> dict[str, Callable[[], object]]:
    """The store calls of a daemon pass, each a function of no arguments."""
    from rebalancer.core.fills import Seen
    from rebalancer.models import Side
    from rebalancer.state.outcome import BatchWrite, LeaseCheck, OwnershipChange, PassOutcome, PreSend
    from rebalancer.state.records import OrderResult, Placement
    from rebalancer.vocab import Mode, PassResult

    now = datetime.now(UTC)
    holder = "bench:1:store"
    epoch = store.acquire_lease(job, holder, 3600)
    store.track(job, [f"o{i}" for i in range(10)])
    placements = (
        Placement(Side.BUY, Decimal("29850"), Decimal("0.001")),
        Placement(Side.SELL, Decimal("30150"), Decimal("0.001")),
    )
    size = Decimal("0.001")
    watch = tuple(Seen(f"w{i}", Side.BUY, Decimal("29850"), Decimal(0), f"buy[{i}]", size) for i in range(10))
    counter = [0]
    standing = [f"o{i}" for i in range(2)]  # the orders the previous replacing pass placed: this one replaces them

    def outcome(pass_id: int | None, result: PassResult, **changes: Any) -> PassOutcome:
        """A pass's outcome as the runner hands it over: the pass row's columns and the ``changes`` it made."""
        changed = 2 if result is PassResult.OK else 0
        summary = {"keep": 10 - changed, "place": changed, "cancel": changed}
        return PassOutcome(
            job, Mode.RUN, now, pass_id, result, summary, reference_price="30000", fingerprint="0123456789ab", **changes
        )

    def quiet() -> object:
        return store.record_outcome(outcome(None, PassResult.NO_CHANGES, duration_ms=3))

    def replacing() -> object:
        counter[0] += 1
        n = counter[0]
        presend = PreSend(job, Mode.RUN, now, placements, fence=LeaseCheck(holder, epoch, 1.0))
        pass_id, in_flight = store.record_presend(presend)
        placed = (f"p{n}a", f"p{n}b")
        results = tuple(
            OrderResult("place", p.side.value, str(p.price), str(p.volume), order_id, "placed")
            for p, order_id in zip(placements, placed, strict=True)
        ) + tuple(OrderResult("cancel", "BUY", "29820", "0.001", order_id, "cancelled") for order_id in standing)
        recorded = store.record_outcome(
            outcome(
                pass_id,
                PassResult.OK,
                duration_ms=8,
                batches=(BatchWrite(0, {"symbol": "btcusdt", "mass_place": "[]"}, {"code": "0"}, None, now),),
                results=results,
                close=in_flight,
                placed=placed,
                ownership=OwnershipChange(untrack=tuple(standing)),
                watch=watch,
                forget=(standing[0],),
                cleared=("buy[4]", "sell[4]"),
            )
        )
        standing[:] = placed
        return recorded

    return {
        "is_paused": lambda: store.is_paused(job),
        "pass_inputs": lambda: store.pass_inputs(job, now),
        "quiet_outcome": quiet,
        "replacing_presend_and_outcome": replacing,
    }


def main(argv: list[str] | None = None) -> int:
    """Time each call, print one JSON line of microseconds per call (the minimum over rounds)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=TREE, help="the checkout whose rebalancer is measured")
    parser.add_argument("--url", help="the store's URL (default: a SQLite file in a temporary directory)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.tree.resolve()))
    from rebalancer.logs import register_secret
    from rebalancer.state.store import StateStore

    register_secret("bench-api-key-0123456789")  # a daemon always knows its keys: redaction has work to do
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore(args.url or f"sqlite:///{Path(tmp) / 'state.db'}")
        try:
            calls = cases(store, f"bench{os.getpid()}")
            best = dict.fromkeys(calls, float("inf"))
            for call in calls.values():
                for _ in range(20):
                    call()  # warm the statement caches
            for _ in range(args.rounds):
                for name, call in calls.items():
                    started = time.thread_time()
                    for _ in range(args.calls):
                        call()
                    best[name] = min(best[name], (time.thread_time() - started) / args.calls * 1e6)
        finally:
            store.close()
    row = {"tree": str(args.tree), "load": os.getloadavg()[0], **{k: round(v, 1) for k, v in best.items()}}
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
