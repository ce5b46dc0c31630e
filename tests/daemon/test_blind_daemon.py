"""``limits.max_blind`` with ``on_blind: cancel`` through a real daemon: the sandbox's ticker fails, the job's orders
come down, the webhook, ``rebalancer status`` and the daemon's job page say the job is blind, and the ladder returns
with the prices."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import requests
from click.testing import CliRunner

from rebalancer.cli.main import main as cli
from rebalancer.scheduler.metrics import HealthServer
from rebalancer.scheduler.pages import StatusPages
from rebalancer.state.store import StateStore
from tests.daemon.test_daemon import _book, _jobs
from tests.daemonkit import running
from tests.jobtext import ladder_job
from tests.webhooks import receiver

TICKER_PATHS = ["/open/api/get_ticker", "/open/api/get_allticker"]
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "status.schema.json").read_text())


def _status(state: str) -> dict:
    shown = CliRunner().invoke(cli, ["status", "--json"], env={"REBALANCER_STATE_URL": state})
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.output)
    jsonschema.validate(rows, SCHEMA)
    return next(row for row in rows if row["job"] == "b")


def test_a_blind_job_cancels_its_orders_says_so_and_places_again_when_prices_return(
    tmp_path, sandbox, wait_for
) -> None:
    with receiver() as (url, got):
        limits = "{band: 10%, max_blind: 1s, on_blind: cancel}"
        text = ladder_job("b", sandbox.url, every="200ms", ownership="tracked", limits=limits)
        jobs = _jobs(tmp_path, {"b": text + f'notify: {{webhook: "{url}"}}\n'})
        state = f"sqlite:///{tmp_path}/state.db"
        with StateStore(state) as store, running(store, jobs) as daemon:
            pages = HealthServer(
                daemon.metrics, "127.0.0.1", 0, daemon.ready, StatusPages(daemon, daemon.holder).respond
            )
            pages.start()
            try:
                assert wait_for(lambda: len(_book(sandbox)) == 6, timeout=30)

                sandbox.faults.update({"error_500": 1.0, "endpoints": TICKER_PATHS})
                assert wait_for(lambda: _book(sandbox) == (), timeout=30), "blind for 1s: the orders are cancelled"
                assert wait_for(lambda: [e["kind"] for e in got] == ["blind"], timeout=30)
                assert got[0]["job"] == "b" and got[0]["message"].startswith("blind for ")
                assert wait_for(lambda: (_status(state)["blind"] or "").endswith("(on_blind: cancel)"), timeout=30)
                assert _status(state)["last_error"] is None, "a failed ticker does not fail a job with max_blind"
                table = CliRunner().invoke(cli, ["status"], env={"REBALANCER_STATE_URL": state}).output
                assert "\nBlind b: blind for " in table, table
                page = lambda: requests.get(f"{pages.url}/jobs/b", timeout=10).text  # noqa: E731
                assert wait_for(lambda: "<p class='blind'>blind for " in page(), timeout=30)

                sandbox.faults.update({"error_500": 0.0, "endpoints": []})
                assert wait_for(lambda: len(_book(sandbox)) == 6, timeout=30), "prices returned: the ladder is back"
                assert wait_for(lambda: _status(state)["blind"] is None, timeout=30)
                assert "class='blind'" not in page()
            finally:
                pages.stop()
        assert [e["kind"] for e in got] == ["blind"], "going blind is told once"
