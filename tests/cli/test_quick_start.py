"""The README's quick start, then its next step (`init` → `apply` → `plan`), on a fresh state directory: the job
`init` writes and the quick start's job stand side by side on the sandbox, and neither plan cancels the other's
orders. Then its second block: the daemon following the sandbox's market stream wakes on a price move and stops
cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import requests
from click.testing import CliRunner, Result

from rebalancer.cli.main import main
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.share import live_address
from rebalancer.sandbox.world import WORLD_FILE, save

ROOT = Path(__file__).resolve().parents[2]


def _quick_start_commands(block: int = 0) -> list[list[str]]:
    """The `rebalancer` commands of the README's quick start's ``block``-th `sh` block, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    text = section.split("```sh")[block + 1].split("```", 1)[0]
    return [m.split() for m in re.findall(r"\.venv/bin/rebalancer ([^&\n]+?)\s*(?:&&|$)", text, re.MULTILINE)]


def test_the_quick_start_then_init_apply_plan_leaves_both_jobs_without_cancels(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the checkout
    env = {"REBALANCER_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    # The fresh world a first command would create, with its market held still: a cancel below can then only be
    # one job taking the other's orders, never the simulated price walking past the tolerance on a slow machine.
    (tmp_path / "state").mkdir()
    save(Engine.create(clock="manual"), tmp_path / "state" / WORLD_FILE)

    def run(*args: str) -> Result:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result

    commands = _quick_start_commands()
    assert [c[0] for c in commands] == ["plan", "run", "plan"], commands
    for command in commands:
        run(*command)
    mine = tmp_path / "my-job.yaml"
    assert "rebalancer init --out my-job.yaml" in (ROOT / "README.md").read_text(encoding="utf-8")
    run("init", "--out", str(mine))
    applied = run("apply", str(mine), "--yes")
    assert "0 to cancel" in applied.stdout, applied.stdout
    for job in (str(mine), "jobs/btcusdt-maker.yaml"):
        plan = json.loads(run("plan", job, "--json").stdout)
        assert plan["summary"]["cancel"] == 0, (job, [a for a in plan["actions"] if a["action"] == "cancel"])


def _line_with(lines: queue.Queue[str], text: str, seconds: float) -> str:
    """The first line read that contains ``text``, waiting at most ``seconds``; fails the test otherwise."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} within {seconds} s")


def test_the_quick_start_stream_job_wakes_on_a_price_move_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    [command] = _quick_start_commands(block=1)
    assert command == ["run", "jobs/btcusdt-stream.yaml"], command
    state = tmp_path / "state"
    env = {**os.environ, "REBALANCER_STATE_DIR": str(state), "NO_COLOR": "1"}
    with subprocess.Popen(
        [sys.executable, "-m", "rebalancer", *command],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as daemon:
        assert daemon.stderr is not None
        lines: queue.Queue[str] = queue.Queue()
        reader = threading.Thread(target=lambda: [lines.put(line) for line in daemon.stderr], daemon=True)
        reader.start()
        try:
            first = _line_with(lines, "wake=timer", 120)  # the first pass places the ladder
            assert "job=btcusdt-stream" in first and "placed=10" in first, first
            address = live_address(state)  # the daemon serves the fresh world of its state directory
            assert address is not None
            symbols = requests.get(f"{address.url}/sandbox/state", timeout=30).json()["data"]["symbols"]
            moved = Decimal(symbols["btcusdt"]["mid"]) * Decimal("1.002")  # past the 0.05 % tolerance, short of a level
            params = {"symbol": "btcusdt", "price": f"{moved:.2f}"}
            requests.post(f"{address.url}/sandbox/price", params=params, timeout=30).raise_for_status()
            woken = _line_with(lines, "wake=reference", 120)
            assert "job=btcusdt-stream" in woken and "prices=stream" in woken, woken
        finally:
            daemon.send_signal(signal.SIGINT)
            try:
                code = daemon.wait(120)
            except subprocess.TimeoutExpired:
                daemon.kill()
                raise
            reader.join(30)  # the pipe is at its end: the reader is done before the pipe closes
    assert code == 0
