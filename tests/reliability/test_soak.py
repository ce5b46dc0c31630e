"""The fault soak: two jobs (``symbol`` and ``tracked`` ownership) reconciled pass after pass against the sandbox
over real HTTP while 10–20 % of the requests fail on purpose and the market walks and fills.

Faults, drawn per round from a seeded RNG: HTTP 500 and 429 on any /open/api request, writes applied and then
answered 500 or dropped without an answer, rejected placements, and added latency. After every pass the true book
(read from the engine, not through the faulty HTTP) must satisfy:

- no more open orders on the job's symbol than the job's targets (the worst overshoot is reported);
- no two open orders at one price on one side (sizes are flat, so that is two orders standing for one level), and
  after a pass whose outcome was confirmed, no order the fresh plan would cancel as a ``duplicate_level``;
- every order placed in the pass lies within the band of that pass's reference, and after a confirmed pass no
  order at all lies outside it;
- the account's locked balances equal what its open orders hold, and each coin's total equals its start plus the
  fills' flows;
- for the tracked job, once faults stop: every open order on its symbol is tracked (no leftovers of ours).

Once the faults stop, two clean passes converge: the second plans no change. The short profile runs 150 rounds
(300 passes); ``REBALANCER_LONG=1`` runs 1 000 rounds (2 000 passes). The figures are printed (``-s`` shows them).
"""

from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from rebalancer.engine.runner import PassReport, run_pass
from rebalancer.errors import RebalancerError
from rebalancer.job import Job, Ownership
from rebalancer.state.store import StateStore
from tests.reliability.kit import (
    LONG,
    Ledger,
    drain_requests,
    fast_client,
    load,
    max_targets,
    outside_band,
    same_price_duplicates,
    truth_plan,
)

ROUNDS = 1000 if LONG else 150
CONFIRMED = ("ok", "rejected", "no_changes")


@dataclass
class Tally:
    """What the soak counts, for the report."""

    passes: int = 0
    requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    results: Counter[str] = field(default_factory=Counter)
    rejected_placements: int = 0
    answers_lost: int = 0
    held_at_end: int = 0
    pass_errors: int = 0
    worst_overshoot: int = 0
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One line of figures."""
        faulted = sum(self.faults.values())
        share = faulted / self.requests if self.requests else 0.0
        return (
            f"passes={self.passes} requests={self.requests} faulted={faulted} ({share:.1%}) {dict(self.faults)} "
            f"results={dict(self.results)} pass_errors={self.pass_errors} "
            f"answers_lost={self.answers_lost} rejected_placements={self.rejected_placements} "
            f"worst_overshoot={self.worst_overshoot} levels_held_at_end={self.held_at_end}"
        )


def _set_faults(sandbox: object, rng: random.Random) -> None:
    faults = sandbox.faults  # type: ignore[attr-defined]
    faults.error_500 = 0.07
    faults.rate_429 = 0.05
    faults.drop_after_apply = 0.3
    faults.drop_mode = rng.choice(("500", "close"))
    faults.reject_place = 0.08
    faults.latency = 0.02 if rng.random() < 0.1 else 0.0


def _clear_faults(sandbox: object) -> None:
    faults = sandbox.faults  # type: ignore[attr-defined]
    faults.error_500 = faults.rate_429 = faults.drop_after_apply = faults.reject_place = faults.latency = 0.0


def _drain_requests(sandbox: object, tally: Tally) -> None:
    for entry in drain_requests(sandbox):
        tally.requests += 1
        writes = entry["path"].endswith("mass_replaceV2")
        if entry["status"] == 0:
            tally.faults["drop_close"] += 1
        elif entry["status"] == 429:
            tally.faults["http_429"] += 1
        elif entry["status"] == 500:
            tally.faults["http_500_write" if writes else "http_500_read"] += 1


def _observe(
    job: Job, store: StateStore, sandbox: object, report: PassReport | None, before: set[str], tally: Tally, where: str
) -> None:
    engine, api_key = sandbox.engine, sandbox.api_key  # type: ignore[attr-defined]
    book = engine.open_orders(api_key, job.symbol)
    truth = truth_plan(job, engine, api_key, store)
    targets = truth.summary.get("keep", 0) + truth.summary.get("place", 0)
    problems: list[str] = []
    tally.worst_overshoot = max(tally.worst_overshoot, len(book) - targets)
    if len(book) > max_targets(job):
        problems.append(f"{len(book)} open orders, the job has {max_targets(job)} targets at most")
    problems += same_price_duplicates(book)
    if report is not None:
        new = [o for o in book if o.id not in before]
        problems += [f"order {o.id} placed outside the band" for o in outside_band(new, report.plan.reference_price)]
        if report.result in CONFIRMED:
            if len(book) > targets:
                problems.append(f"{len(book)} open orders after a confirmed pass, {targets} targets")
            reasons = Counter(a.reason for a in truth.actions if a.action == "cancel")
            for reason in ("duplicate_level", "outside_band"):
                if reasons[reason]:
                    problems.append(f"{reasons[reason]} orders that are {reason} after a confirmed pass")
        if job.ownership is Ownership.TRACKED and report.result in CONFIRMED:
            forgotten = {o.id for o in book} - store.tracked_ids(job.name)
            if forgotten:
                problems.append(f"open orders {sorted(forgotten)} of ours are not tracked")
    tally.problems += [f"{where} {job.name}: {p}" for p in problems]


def _one_pass(job: Job, client: object, store: StateStore, sandbox: object, tally: Tally, where: str) -> PassReport:
    before = {o.id for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}  # type: ignore[attr-defined]
    report: PassReport | None = None
    try:
        report = run_pass(job, client, store, apply=True, mode="run")  # type: ignore[arg-type]
    except RebalancerError as exc:
        tally.pass_errors += 1
        tally.results[type(exc).__name__] += 1
    tally.passes += 1
    if report is not None:
        tally.results[report.result] += 1
        if report.execution is not None:
            tally.rejected_placements += report.execution.count("rejected", "place")
            tally.answers_lost += (report.execution.error or "").startswith("answer lost")
    _drain_requests(sandbox, tally)
    _observe(job, store, sandbox, report, before, tally, where)
    return report  # type: ignore[return-value]


def _stir(sandbox: object, jobs: list[Job], rng: random.Random) -> None:
    """Walk the market a few ticks, and sometimes fill one of our orders in part or in full."""
    engine = sandbox.engine  # type: ignore[attr-defined]
    engine.advance(rng.randint(0, 30))
    if rng.random() < 0.2:
        job = rng.choice(jobs)
        book = engine.open_orders(sandbox.api_key, job.symbol)  # type: ignore[attr-defined]
        if book:
            order = rng.choice(book)
            part = None if rng.random() < 0.5 else (order.remaining / 2).quantize(Decimal("0.0001"))
            engine.fill(int(order.id), part if part else None)


def test_fault_soak_keeps_the_invariants_and_converges(sandbox, tmp_path: Path) -> None:
    rng = random.Random(20261125)
    sandbox.faults.seed = 11
    sandbox.faults.rng.seed(11)
    jobs = [
        load(tmp_path, "soak-symbol", sandbox.url, symbol="btcusdt", ownership="symbol"),
        load(tmp_path, "soak-tracked", sandbox.url, symbol="ethusdt", ownership="tracked", size="0.1"),
    ]
    ledger = Ledger.start(sandbox.engine, sandbox.api_key)
    tally = Tally()
    started = time.monotonic()
    with (
        StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        for round_no in range(ROUNDS):
            _set_faults(sandbox, rng)
            for job in jobs:
                _one_pass(job, client, store, sandbox, tally, f"round {round_no}")
            tally.problems += [f"round {round_no}: {p}" for p in ledger.check()]
            _stir(sandbox, jobs, rng)
            assert len(tally.problems) < 20, "\n".join(tally.problems)
        _clear_faults(sandbox)
        for job in jobs:
            first = _one_pass(job, client, store, sandbox, tally, "clean 1")
            second = _one_pass(job, client, store, sandbox, tally, "clean 2")
            assert first is not None and second is not None
            assert not second.plan.has_changes, f"{job.name} did not converge: {second.plan.summary}"
            book = {o.id for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}
            held = store.held_levels(job.name, datetime.now(UTC))
            assert max_targets(job) - len(held) <= len(book) <= max_targets(job), (len(book), held)
            tally.held_at_end += len(held)
            if job.ownership is Ownership.TRACKED:
                assert book <= store.tracked_ids(job.name), "orders of ours that the tracked job forgot"
        tally.problems += [f"clean: {p}" for p in ledger.check()]
    print(f"\nsoak: rounds={ROUNDS} {tally.line()} fills={ledger.fills} {time.monotonic() - started:.1f}s")
    assert not tally.problems, "\n".join(tally.problems)
    faulted = sum(tally.faults.values())
    assert tally.passes >= 2 * ROUNDS
    assert 0.08 <= faulted / tally.requests <= 0.25, tally.line()
    assert tally.results["unknown_outcome"] > 0 and tally.rejected_placements > 0 and ledger.fills > 0
