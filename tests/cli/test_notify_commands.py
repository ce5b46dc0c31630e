"""Webhook events from every command that causes one, delivered before the command exits: ``apply`` and
``run --once`` tripping the loss limit, ``pause`` and ``resume``; and webhook URLs checked at validation."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.scheduler.timing import scheduled_job
from rebalancer.state.leases import holder_name
from rebalancer.state.store import StateStore
from tests.jobtext import ladder_job
from tests.webhooks import dripping, receiver


def _job(tmp_path: Path, sandbox: Any, webhook: str, name: str = "told") -> Path:
    text = ladder_job(name, sandbox.url, levels=1, ownership="tracked", limits='{band: 10%, max_loss: "0.1"}')
    path = tmp_path / f"{name}.yaml"
    path.write_text(text + f'notify: {{webhook: "{webhook}"}}\n', encoding="utf-8")
    return path


def _lose(sandbox: Any) -> None:
    """Fill the job's sell and move the market 5 % up: the short loses more than 0.1."""
    (sell,) = [o for o in sandbox.engine.open_orders(sandbox.api_key, "btcusdt") if o.side is Side.SELL]
    sandbox.engine.fill(int(sell.id))
    sandbox.engine.set_price("btcusdt", sandbox.engine.mid("btcusdt") * Decimal("1.05"))


@pytest.mark.parametrize("command", [("apply", "--yes"), ("run", "--once")])
def test_a_command_that_trips_the_loss_limit_tells_the_webhook_before_it_exits(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path, command: tuple[str, str]
) -> None:
    with receiver() as (url, got):
        path = _job(tmp_path, sandbox, url)
        assert cli("apply", str(path), "--yes").exit_code == 0
        _lose(sandbox)
        verb, flag = command
        result = cli(verb, str(path), flag) if verb == "apply" else cli(verb, flag, str(path))
        assert result.exit_code == 0, result.output
        assert [e["kind"] for e in got] == ["max_loss"], "delivered before the command returned"
        assert got[0]["job"] == "told" and "past limits.max_loss" in got[0]["message"]
        assert "s3cret-hook" not in result.output


def test_pause_and_resume_tell_the_webhook(cli: Callable[..., Result], sandbox: Any, tmp_path: Path) -> None:
    with receiver() as (url, got):
        path = _job(tmp_path, sandbox, url)
        assert cli("pause", str(path)).exit_code == 0
        assert [e["kind"] for e in got] == ["paused"]
        assert cli("resume", str(path)).exit_code == 0
        assert [e["kind"] for e in got] == ["paused", "resumed"]
        assert cli("resume", str(path)).exit_code == 0  # not paused: nothing happened, nothing told
        assert [e["kind"] for e in got] == ["paused", "resumed"]
        assert got[0]["message"] == "told paused by `rebalancer pause`"


def test_pause_by_name_finds_the_webhook_in_the_file_a_daemon_runs(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    with receiver() as (url, got):
        path = _job(tmp_path, sandbox, url)
        with StateStore(f"sqlite:///{tmp_path / 'state' / 'state.db'}") as store:
            store.register_jobs(holder_name("test"), [scheduled_job(load_job(path))])
        assert cli("pause", "told").exit_code == 0
        assert [e["kind"] for e in got] == ["paused"]
        unknown = cli("pause", "nowhere")  # a name no store or file knows is refused before anything is told
        assert unknown.exit_code == 1 and "no job named 'nowhere'" in unknown.output
        assert [e["kind"] for e in got] == ["paused"]


@pytest.mark.parametrize(
    "webhook",
    [
        "http://a..b/hook",
        "https://hooks.example.com:99999/hook",
        "http://[::1/hook",
        "https://hooks.example.com:0/hook",
        "https://hooks example.com/hook",
        "http://%zz/hook",
    ],
)
def test_a_malformed_webhook_is_refused_at_validation(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path, webhook: str
) -> None:
    path = _job(tmp_path, sandbox, webhook)
    result = cli("validate", str(path))
    assert result.exit_code == 1, result.output
    (line,) = [line for line in result.output.splitlines() if ": notify.webhook: " in line]
    assert line.startswith(f"{path}:")


def test_a_command_waits_for_a_stuck_webhook_no_longer_than_the_delivery_deadline(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    with dripping() as (url, arrived):
        path = _job(tmp_path, sandbox, url)
        started = time.monotonic()
        result = cli("pause", str(path))
        took = time.monotonic() - started
    assert result.exit_code == 0 and arrived, result.output
    assert took < 15, f"pause took {took:.1f}s with an endpoint that never answers (deadline 5 s)"
