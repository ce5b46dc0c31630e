"""`url: sandbox` jobs run in-process against a world that persists in the state directory."""

from __future__ import annotations

import threading
from pathlib import Path

from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.sandbox import host, share
from rebalancer.sandbox.world import WORLD_FILE

JOB = """\
version: 1
name: embedded
symbol: ethusdt
exchange: {url: sandbox}
ladder:
  buy: {levels: 3, first: 1%, step: 0.5%, size: "0.5"}
  sell: {levels: 3, first: 1%, step: 0.5%, size: "0.5"}
"""


def _run(state: Path, *args: str):
    env = {
        "REBALANCER_STATE_DIR": str(state),
        "REBALANCER_API_KEY": "",
        "REBALANCER_SECRET_KEY": "",
        "NO_COLOR": "1",
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_plan_apply_plan_needs_no_credentials_and_persists(tmp_path):
    job = tmp_path / "embedded.yaml"
    job.write_text(JOB)
    state = tmp_path / "state"
    first = _run(state, "plan", str(job))
    assert first.exit_code == 0, first.output
    assert "Plan: 6 to place" in first.stdout
    applied = _run(state, "apply", str(job), "--yes")
    assert applied.exit_code == 0, applied.output
    assert (state / WORLD_FILE).exists()
    again = _run(state, "plan", str(job))
    assert again.exit_code == 0, again.output
    assert "No changes" in again.stdout or "to place" in again.stdout  # the market may have walked a little
    assert "Plan: 6 to place" not in again.stdout


def test_a_process_holding_the_world_without_serving_it_gives_a_clear_error(tmp_path, monkeypatch):
    job = tmp_path / "embedded.yaml"
    job.write_text(JOB)
    state = tmp_path / "state"
    monkeypatch.setattr(host, "LOCK_WAIT_SECONDS", 0.2)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        import fcntl

        state.mkdir(parents=True, exist_ok=True)
        with open(state / share.LOCK_FILE, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            holding.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert holding.wait(5)
        result = _run(state, "plan", str(job))
    finally:
        release.set()
        thread.join()
    assert result.exit_code == 1
    assert "held by another rebalancer process that does not serve it" in result.stderr
