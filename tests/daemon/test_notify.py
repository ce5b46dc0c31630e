"""notify: webhook events POSTed by the daemon to a local receiver (127.0.0.1:0), and failed deliveries counted."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from click.testing import CliRunner

from rebalancer.cli.main import main as cli
from rebalancer.job import Notify
from rebalancer.models import Side
from rebalancer.notify import Notifier
from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _book, _jobs, _sample
from tests.daemonkit import running
from tests.jobtext import ladder_job
from tests.webhooks import receiver as webhook_receiver


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    with webhook_receiver() as hook:
        yield hook


def test_the_loss_limit_firing_is_told_once_then_the_resume(tmp_path, sandbox, receiver, wait_for) -> None:
    url, got = receiver
    text = ladder_job("n", sandbox.url, ownership="tracked", limits='{band: 10%, max_loss: "0.1"}')
    jobs = _jobs(tmp_path, {"n": text + f'notify: {{webhook: "{url}"}}\n'})
    state = f"sqlite:///{tmp_path}/state.db"
    with StateStore(state) as store, running(store, jobs):
        assert wait_for(lambda: len(_book(sandbox)) == 6)
        sell = min((o for o in _book(sandbox) if o.side is Side.SELL), key=lambda o: o.price)
        sandbox.engine.fill(int(sell.id))
        sandbox.engine.set_price("btcusdt", sandbox.engine.mid("btcusdt") * Decimal("1.05"))
        assert wait_for(lambda: [e["kind"] for e in got] == ["max_loss"])
        assert store.paused_by("n")[0] == "max_loss" and _book(sandbox) == ()
        event = got[0]
        assert event["job"] == "n" and "past limits.max_loss" in event["message"] and event["time"]
        # The pass that paused the job told; the daemon does not tell the same pause again.
        resumed = CliRunner().invoke(cli, ["resume", str(tmp_path / "n.yaml")], env={"REBALANCER_STATE_URL": state})
        assert resumed.exit_code == 0, resumed.output
        assert [e["kind"] for e in got] == ["max_loss", "resumed"], "the command delivered before it exited"


def test_a_failed_delivery_is_counted_and_never_logs_the_webhook_token(caplog) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    failed: list[str] = []
    notifier = Notifier(on_failure=failed.append, deadline=1.0)
    notifier.send(f"http://127.0.0.1:{port}/x?token=s3cret", "j", "failing", "3 passes in a row failed")
    notifier.close(wait=5)
    assert failed == ["j"]
    assert "s3cret" not in caplog.text


def test_the_metric_counts_failed_deliveries(tmp_path, sandbox, job_text, wait_for) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    jobs = _jobs(tmp_path, {"m": job_text("m")})
    with StateStore(f"sqlite:///{tmp_path}/state.db") as store, running(store, jobs) as daemon:
        daemon.notify(replace(jobs[0], notify=Notify(f"http://127.0.0.1:{port}/", 1)), "failing", "x")
        assert wait_for(lambda: _sample(daemon, "rebalancer_notify_failures_total", job="m") == 1.0)


def test_the_daemon_tells_a_pause_by_the_job_file_and_not_a_pause_the_command_told(
    tmp_path, sandbox, job_text, receiver, wait_for
) -> None:
    url, got = receiver
    jobs = _jobs(
        tmp_path,
        {
            "f": job_text("f") + f'paused: true\nnotify: {{webhook: "{url}"}}\n',
            "c": job_text("c", symbol="ethusdt", size="0.5") + f'notify: {{webhook: "{url}"}}\n',
        },
    )
    state = f"sqlite:///{tmp_path}/state.db"
    with StateStore(state) as store, running(store, jobs) as daemon:
        assert wait_for(lambda: [(e["job"], e["kind"]) for e in got] == [("f", "paused")])
        assert "by its job file" in got[0]["message"]
        paused = CliRunner().invoke(cli, ["pause", str(tmp_path / "c.yaml")], env={"REBALANCER_STATE_URL": state})
        assert paused.exit_code == 0, paused.output
        assert [(e["job"], e["kind"]) for e in got] == [("f", "paused"), ("c", "paused")]
        skipped = lambda: daemon.run_pass_now("c") is None  # noqa: E731
        assert wait_for(lambda: skipped() and _sample(daemon, "rebalancer_job_paused", job="c") == 1)
        assert [(e["job"], e["kind"]) for e in got] == [("f", "paused"), ("c", "paused")], "told once, by the command"
