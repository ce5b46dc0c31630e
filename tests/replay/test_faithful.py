"""Faithful: a recording of the sandbox's stream while a daemon runs a job against it, replayed, gives the daemon's
fills and order operations within ±10 %.

The sandbox serves its REST API and its stream over loopback; its market moves one simulated second at a time (a
manual clock stepped by the test, a dozen steps a second), and every fill of an account's order prints on the
stream as a trade at the order's price and volume. The stream is recorded as ``rebalancer record`` does (its
``Recorder`` on the shared stream client, after the rules line). The daemon (``Daemon.run_pass_now``:
the daemon's whole pass) runs the job at every fire time of its own trigger (``every: 1s``, the first pass at the
start). The market only steps between passes, so a pass that starts late sees the market it would have seen on time
(as on a daemon whose passes never overrun its period). After each step the test waits until the stream has
settled, and it takes no step within ``QUIET`` of a pass's due time, so every frame is recorded on the same side of a
due time as its step is of the daemon's pass, however loaded the machine. The replay then runs the recording from
the daemon's start with ``--fill touch``: the sandbox fills an order by a trade at the order's own price, which is
exactly a touch.

One level a side: the sandbox fills each order the crowd crossed by its own random share and prints one trade per
fill, while a real market's trade at a deeper level means the better levels traded first, which is what the
replay's fill models assume (a print is shared best price first). With several levels a side the replay therefore
gives the shallower levels more of the sandbox's prints than the sandbox gave them (docs/replay.md).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from click.testing import Result

from rebalancer.daemon.scheduler import Daemon
from rebalancer.engine.connect import make_client
from rebalancer.jobfile.load import load_job
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.scheduler.timing import schedule_trigger
from rebalancer.state.store import StateStore
from rebalancer.stream.client import StreamHub
from rebalancer.stream.recording import Recorder
from rebalancer.vocab import ActionKind

# Simulated seconds: at least STEPS, then on until the run has MIN_FILLS fills (at most MAX_STEPS). On a loaded
# machine a step takes longer, the daemon passes more often between two, and 250 steps may fill fewer times.
STEPS = 250
MAX_STEPS = 1000
MIN_FILLS = 20
STEP = 0.02  # wall seconds between two steps, besides waiting for the stream to settle
SETTLE = 0.02
QUIET = 0.3  # no step this close before a pass is due: every frame a step sends is recorded before the pass
DEADLINE = 30.0

JOB = """\
version: 1
name: faithful
symbol: btcusdt
exchange: {{url: "{url}", rate_limit: {{reads: "100000/1s", writes: "100000/1s"}}}}
schedule: {{every: 1s}}
ladder:
  buy: {{levels: 1, first: 0.02%, step: 0.02%, size: "0.01"}}
  sell: {{levels: 1, first: 0.02%, step: 0.02%, size: "0.01"}}
tolerance: {{price: 0.01%, size: 10%}}
limits: {{band: 5%, max_jump: 0%}}
ownership: tracked
"""


def _wait(condition: Callable[[], Any], what: str) -> None:
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"not within {DEADLINE}s: {what}")
        time.sleep(0.01)


def _settle(recorder: Recorder) -> None:
    """Wait until the recorder has had no frame for ``SETTLE`` seconds: what the last step sent is recorded."""
    end = time.monotonic() + DEADLINE
    while time.monotonic() < end:
        seen = recorder.frames
        time.sleep(SETTLE)
        if recorder.frames == seen:
            return
    raise AssertionError(f"the stream did not settle within {DEADLINE}s")


def test_a_recorded_daemon_run_replays_to_its_fills_and_operations(
    tmp_path: Path, replay_cli: Callable[..., Result]
) -> None:
    engine = Engine.create(seed=11, clock="manual")
    server = SandboxServer(engine, Faults(rate_limits=False), stream=True, ping_every=0.5, pong_timeout=10.0)
    server.start()
    hub: StreamHub | None = None
    try:
        assert server.stream_url is not None
        path = tmp_path / "faithful.yaml"
        path.write_text(JOB.format(url=server.url), encoding="utf-8")
        job = load_job(path)
        recording = tmp_path / "run.jsonl.gz"
        recorder = Recorder(recording)
        recorder.write_rules(time.time_ns() // 1_000_000, {"btcusdt": engine.rules("btcusdt")})
        hub = StreamHub(server.stream_url)
        hub.subscribe("btcusdt", recorder)
        _wait(lambda: hub is not None and hub.stats().connected and recorder.frames >= 3, "the recorder subscribed")

        client = make_client(job.exchange, server.url, DEMO_API_KEY, DEMO_SECRET_KEY)

        class Opened:
            def __enter__(self) -> Any:
                return client

            def __exit__(self, *exc: object) -> None:
                client.close()

        store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        daemon = Daemon(store, opener=lambda j: Opened(), workers=1)
        daemon._slots[job.name] = daemon._open(job)  # the daemon's pass, run on the daemon's trigger by hand
        start = datetime.now(UTC)
        trigger = schedule_trigger(job.name, job.schedule, start)
        due: datetime | None = start
        fire: datetime | None = None
        operations = 0
        for step in range(MAX_STEPS + 1):
            while due is not None:
                ahead = (due - datetime.now(UTC)).total_seconds()
                if ahead > QUIET:
                    break  # far enough from the next pass for the market to take a step
                if ahead > 0:
                    time.sleep(ahead)
                report = daemon.run_pass_now(job.name)
                assert report is not None
                if report.execution is not None:
                    operations += sum(1 for a in report.plan.actions if a.action is not ActionKind.KEEP)
                fire = trigger.get_next_fire_time(fire, due)
                while fire is not None and fire <= due:
                    fire = trigger.get_next_fire_time(fire, due)
                due = fire  # every fire time in turn: a late pass sees the market it would have seen on time
            if step >= STEPS and (step == MAX_STEPS or len(store.fills(job.name)) >= MIN_FILLS):
                break
            engine.advance(1)
            _settle(recorder)
            time.sleep(STEP)
        _settle(recorder)
        hub.close()
        recorder.close()
        fills = store.fills(job.name)
        daemon._slots.clear()
        store.close()
    finally:
        if hub is not None:
            hub.close()
        server.stop()

    bought = sum((f.volume for f in fills if f.side.value == "BUY"), Decimal(0))
    sold = sum((f.volume for f in fills if f.side.value == "SELL"), Decimal(0))
    assert len(fills) >= MIN_FILLS, "the run must fill often enough to compare"
    result = replay_cli(
        str(path),
        "--market",
        str(recording),
        "--fill",
        "touch",
        "--from",
        start.isoformat(),
        "--balances",
        "usdt=1000000,btc=20",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    replayed = out["fills"]
    volume = Decimal(replayed["buy_volume"]) + Decimal(replayed["sell_volume"])
    ops = out["order_operations"]["place"] + out["order_operations"]["cancel"]
    report = f"live: {len(fills)} fills, {bought + sold} volume, {operations} operations; replay: {out}"
    assert abs(replayed["count"] - len(fills)) <= 0.1 * len(fills), report
    assert abs(volume - (bought + sold)) <= Decimal("0.1") * (bought + sold), report
    assert abs(ops - operations) <= 0.1 * operations, report
