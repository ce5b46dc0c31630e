"""The files of ``deploy/``: the systemd unit passes ``systemd-analyze verify`` and starts a real ``rebalancer run``;
the alert rules pass ``promtool check rules`` and their unit tests, and use only metrics a running daemon exports."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from rebalancer.cli.jobs import run
from rebalancer.jobfile.load import load_job
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.state.store import StateStore
from tests.daemonkit import running
from tests.jobtext import ladder_job

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNIT = DEPLOY / "rebalancer.service"
ALERTS = DEPLOY / "alerts.yml"


def _unit_values(key: str) -> list[str]:
    return [line.split("=", 1)[1] for line in UNIT.read_text().splitlines() if line.startswith(f"{key}=")]


def test_the_unit_reloads_with_sighup_restarts_on_failure_and_keeps_secrets_in_an_env_file():
    assert _unit_values("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert _unit_values("Restart") == ["on-failure"]
    assert _unit_values("EnvironmentFile") == ["/etc/rebalancer/env"]
    assert _unit_values("StateDirectory") == ["rebalancer"]
    assert "REBALANCER_STATE_DIR=/var/lib/rebalancer" in _unit_values("Environment")
    assert not re.search(r"(?i)(api_key|secret_key)\s*=", UNIT.read_text()), "no secret in the unit itself"


def test_the_units_command_line_is_one_rebalancer_run_accepts():
    [command] = _unit_values("ExecStart")
    program, *args = shlex.split(command)
    assert Path(program).name == "rebalancer" and args[0] == "run"
    context = run.make_context("run", args[1:])  # raises on an unknown option or a missing argument
    assert context.params["paths"] == ("/etc/rebalancer/jobs",)
    assert context.params["http"].startswith("127.0.0.1:")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit(tmp_path):
    # verify insists that ExecStart's program exists: point it at a stand-in, leave every other line as shipped.
    program = tmp_path / "rebalancer"
    program.write_text("#!/bin/sh\nexit 0\n")
    program.chmod(0o755)
    [command] = _unit_values("ExecStart")
    unit = tmp_path / "rebalancer.service"
    unit.write_text(UNIT.read_text().replace(command.split()[0], str(program)))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    complaints = [line for line in (result.stdout + result.stderr).splitlines() if "rebalancer.service" in line]
    assert result.returncode == 0 and not complaints, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is absent (Debian: apt-get install prometheus)")
def test_promtool_checks_the_rules_and_their_unit_tests_pass():
    check = subprocess.run(
        ["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 8 rules found" in check.stdout
    tested = subprocess.run(
        ["promtool", "test", "rules", "alerts.test.yml"],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _alert_metrics() -> set[str]:
    rules = yaml.safe_load(ALERTS.read_text())["groups"][0]["rules"]
    return {m for r in rules for m in re.findall(r"\b(rebalancer_[a-z_]+)\b", r["expr"])}


@pytest.fixture
def streamed() -> Iterator[SandboxServer]:
    """A second sandbox that also serves its market stream, for a job that follows one."""
    server = SandboxServer(Engine.create(seed=7, clock="manual"), Faults(rate_limits=False), stream=True).start()
    yield server
    server.stop()


def test_every_metric_the_alerts_use_is_exported_by_a_running_daemon(tmp_path, sandbox, streamed):
    jobs = []
    for name, symbol, url, stream in (
        ("live", "btcusdt", sandbox.url, None),
        ("resting", "ethusdt", sandbox.url, None),
        ("following", "btcusdt", streamed.url, streamed.stream_url),
    ):
        path = tmp_path / f"{name}.yaml"
        text = ladder_job(name, url, symbol=symbol, every="1h", levels=1, size="0.5")
        if stream is not None:
            text = text.replace("exchange: {", f'exchange: {{stream: "{stream}", ', 1)
        path.write_text(text)
        jobs.append(load_job(path))
    assert jobs[2].exchange.stream == streamed.stream_url
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        store.set_paused("resting", True)
        with running(store, jobs) as daemon:
            daemon.run_pass_now("live")
            daemon.run_pass_now("resting")
            daemon.metrics.rejected.labels("live", "-1")  # a series appears with the first rejection
            daemon.metrics.reload_failing.labels("x.yaml")  # and with the first refused reload
            deadline = time.monotonic() + 30
            while not _following(exposition := daemon.metrics.exposition().decode()):
                assert time.monotonic() < deadline, "the stream job was not followed within 30 s"
                time.sleep(0.05)
    exported = set(re.findall(r"^(rebalancer_[a-z_]+)\{", exposition, re.MULTILINE))
    used = _alert_metrics()
    assert used <= exported, used - exported
    assert 'rebalancer_job_paused{job="resting"} 1.0' in exposition
    assert 'rebalancer_job_period_seconds{job="live"} 3600.0' in exposition
    assert re.search(r'^rebalancer_last_pass_timestamp_seconds\{job="live"\} 1\.\d+e\+09$', exposition, re.MULTILINE)


def _following(exposition: str) -> bool:
    """Whether the exposition shows the stream job following its stream (connected, and a polling series of 0)."""
    connected = re.search(
        r'^rebalancer_stream_connected\{stream="ws://127\.0\.0\.1:\d+/kline-api/ws"\} 1\.0$', exposition, re.M
    )
    return bool(connected) and 'rebalancer_stream_polling{job="following"} 0.0' in exposition
