"""Kill-and-restart: ``rebalancer run DIR`` as a child process, SIGKILLed at random points and restarted, many times.

Two jobs, one per ownership (``symbol`` on btcusdt, ``tracked`` on ethusdt), against the test sandbox over HTTP. The
window between sending a batch and reading it back is widened with sandbox latency on ``mass_replaceV2`` and
``v2/new_order``, and some writes are applied and then answered 500 or dropped. Half of the kills come at a random
moment, half right after a batch was answered (so the daemon dies while reading the book back). Between runs one of
our orders is filled and the market walks, so every restart has work to do.

After every kill (once the sandbox has finished what it was handling) the true book holds no more orders than
targets, no two at one price, and balances add up. After the final restart, with faults off, both jobs converge and
every open order on the tracked job's symbol is tracked (no leftovers of ours).

A SIGKILLed daemon cannot release its job leases; the restarted one takes them over because their holder's process
is gone (``test_a_restarted_daemon_takes_over_the_lease_of_its_dead_predecessor``). Short profile: 5 kills;
``REBALANCER_LONG=1``: 50.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rebalancer.daemon.scheduler import Daemon
from rebalancer.jobfile.load import load_job
from rebalancer.state.store import StateStore
from tests.reliability.kit import (
    LONG,
    Ledger,
    drain_requests,
    fast_client,
    load,
    max_targets,
    same_price_duplicates,
    truth_plan,
    write_job,
)

KILLS = 50 if LONG else 5
WIDE = {"/open/api/mass_replaceV2", "/open/api/v2/new_order"}


def _wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def _a_write_was_answered(sandbox: object) -> bool:
    return any(str(e["path"]).endswith("mass_replaceV2") for e in sandbox.server.app.request_log())  # type: ignore[attr-defined]


def _start(folder: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rebalancer", "run", str(folder), "--no-watch"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )


def test_sigkill_at_random_points_never_doubles_and_converges(sandbox, tmp_path: Path) -> None:
    rng = random.Random(6)
    folder, state_dir, log = tmp_path / "jobs", tmp_path / "state", tmp_path / "daemon.log"
    folder.mkdir()
    paths = [
        write_job(folder, "kr-symbol", sandbox.url, symbol="btcusdt", ownership="symbol"),
        write_job(folder, "kr-tracked", sandbox.url, symbol="ethusdt", ownership="tracked", size="0.1"),
    ]
    jobs = [load_job(p) for p in paths]
    env = {
        **os.environ,
        "REBALANCER_API_KEY": sandbox.api_key,
        "REBALANCER_SECRET_KEY": sandbox.secret_key,
        "REBALANCER_STATE_DIR": str(state_dir),
        "NO_COLOR": "1",
    }
    engine, api_key = sandbox.engine, sandbox.api_key
    ledger = Ledger.start(engine, api_key)
    sandbox.faults.update({"endpoints": sorted(WIDE), "latency": 0.15, "drop_after_apply": 0.3, "seed": 3})
    problems: list[str] = []
    in_read_back = 0
    started = time.monotonic()
    for kill in range(KILLS):
        sandbox.faults.drop_mode = rng.choice(("500", "close"))
        drain_requests(sandbox)
        process = _start(folder, env, log)
        try:
            if kill % 2:
                if _wait_for(lambda: _a_write_was_answered(sandbox), timeout=20):
                    in_read_back += 1
            else:
                time.sleep(rng.uniform(0.5, 3.0))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        time.sleep(0.5)  # the sandbox finishes the requests it was serving (latency 0.15 s)
        for job in jobs:
            book = engine.open_orders(api_key, job.symbol)
            if len(book) > max_targets(job):
                problems.append(f"kill {kill} {job.name}: {len(book)} open orders, at most {max_targets(job)} targets")
            problems += [f"kill {kill} {job.name}: {d}" for d in same_price_duplicates(book)]
        problems += [f"kill {kill}: {p}" for p in ledger.check()]
        engine.advance(rng.randint(5, 40))
        book = engine.open_orders(api_key, rng.choice(jobs).symbol)
        if book:
            engine.fill(int(rng.choice(book).id))
    assert not problems, "\n".join(problems)

    sandbox.faults.update({"latency": 0.0, "drop_after_apply": 0.0})
    process = _start(folder, env, log)

    def converged() -> bool:
        return all(not truth_plan(job, engine, api_key).has_changes for job in jobs)

    try:
        assert _wait_for(converged, timeout=60, interval=0.1), log.read_text(errors="replace")[-3000:]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
    with StateStore(f"sqlite:///{state_dir / 'state.db'}") as store:
        tracked = store.tracked_ids("kr-tracked")
    for job in jobs:
        book = engine.open_orders(api_key, job.symbol)
        assert len(book) == max_targets(job) and not same_price_duplicates(book)
        if job.name == "kr-tracked":
            assert {o.id for o in book} <= tracked, "open orders of ours that the tracked job does not know"
    assert not ledger.check()
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    print(
        f"\nkill-restart: kills={KILLS} in_read_back={in_read_back} fills={ledger.fills} "
        f"{time.monotonic() - started:.1f}s"
    )


def test_a_restarted_daemon_takes_over_the_lease_of_its_dead_predecessor(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "kr-lease", sandbox.url, every="1h")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(30)
    predecessor = f"{socket.gethostname()}:{dead.pid}:0badc0de"
    with (
        StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        assert store.acquire_lease(job.name, predecessor, 600)
        daemon = Daemon(store, opener=lambda _job: contextlib.nullcontext(client), stop_wait=5)
        daemon.start([job])
        try:
            report = daemon.run_pass_now(job.name)
        finally:
            daemon.stop()
    assert report is not None, "the pass was skipped: the dead predecessor still holds the lease"
    assert len(sandbox.engine.open_orders(sandbox.api_key, "btcusdt")) == max_targets(job)
